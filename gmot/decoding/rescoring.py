"""N-best rescoring of CTC or transducer hypotheses with an attention decoder.

The attention decoder is any object implementing :class:`AttentionScorer`::

    score(encoder_out (N, T, D), encoder_out_lens (N,), token_ids: list[list[int]]) -> (N,)

returning, for row n, ``log p(token_ids[n] + [eos] | encoder_out[n, :encoder_out_lens[n]])``
summed over the output positions (teacher forcing from ``[sos] + token_ids[n]``; sos/eos id 1,
no blank inside ``token_ids``). Row n of ``encoder_out`` belongs to hypothesis n, so the
rescorer repeats an utterance's encoder output once per hypothesis. ``AsrModel.attention_decoder``
is expected to provide this method.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class AttentionScorer(Protocol):
    """What the rescorer needs from an attention decoder (see the module docstring)."""

    def score(
        self,
        encoder_out: torch.Tensor,
        encoder_out_lens: torch.Tensor,
        token_ids: list[list[int]],
    ) -> torch.Tensor:  # (N,) log-likelihood per hypothesis
        ...


@torch.no_grad()
def rescore_nbest(
    attention_decoder: AttentionScorer,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    nbest: list[list[tuple[list[int], float]]],
    attention_scale: float = 1.0,
    first_pass_scale: float = 1.0,
) -> list[list[int]]:
    """Pick, per utterance, the hypothesis maximising
    ``first_pass_scale * first_pass_log_prob + attention_scale * attention_log_prob``.

    Args:
      attention_decoder: an :class:`AttentionScorer`.
      encoder_out: (B, T, D) encoder output (what the attention decoder attends to).
      encoder_out_lens: (B,) valid frames.
      nbest: per utterance a non-empty list of ``(tokens, first_pass_log_prob)`` (e.g. from
        ``ctc_prefix_beam_search(..., return_nbest=True)`` or
        ``modified_beam_search(..., return_nbest=True)``).
      attention_scale, first_pass_scale: weights of the two scores.

    Returns:
      B token-id lists.
    """
    if not hasattr(attention_decoder, "score"):
        raise TypeError(
            f"attention_decoder of type {type(attention_decoder).__name__} has no .score(); "
            "see gmot.decoding.rescoring.AttentionScorer"
        )
    if len(nbest) != encoder_out.shape[0]:
        raise ValueError(
            f"nbest has {len(nbest)} utterances; encoder_out has {encoder_out.shape[0]}"
        )
    rows, hyps, first = [], [], []
    for b, lst in enumerate(nbest):
        if not lst:
            raise ValueError(f"empty n-best list for utterance {b}")
        for tokens, s in lst:
            rows.append(b)
            hyps.append(list(tokens))
            first.append(float(s))
    idx = torch.tensor(rows, dtype=torch.int64, device=encoder_out.device)
    att = attention_decoder.score(encoder_out[idx], encoder_out_lens[idx], hyps)
    att = torch.as_tensor(att, dtype=torch.float64).reshape(-1).cpu()
    if att.numel() != len(hyps):
        raise ValueError(f"attention_decoder.score returned {att.numel()} scores for {len(hyps)}")
    total = first_pass_scale * torch.tensor(first, dtype=torch.float64) + attention_scale * att
    results, start = [], 0
    for lst in nbest:
        seg = total[start : start + len(lst)]
        results.append(hyps[start + int(seg.argmax())])
        start += len(lst)
    return results
