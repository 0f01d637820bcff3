"""N-best rescoring of CTC or transducer hypotheses with an attention decoder or the CTC head.

The attention decoder is any object implementing :class:`AttentionScorer`::

    score(encoder_out (N, T, D), encoder_out_lens (N,), token_ids: list[list[int]]) -> (N,)

returning, for row n, ``log p(token_ids[n] + [eos] | encoder_out[n, :encoder_out_lens[n]])``
summed over the output positions (teacher forcing from ``[sos] + token_ids[n]``; sos/eos id 1,
no blank inside ``token_ids``). Row n of ``encoder_out`` belongs to hypothesis n, so the
rescorer repeats an utterance's encoder output once per hypothesis. ``AsrModel.attention_decoder``
is expected to provide this method; :class:`CtcScorer` provides it for a CTC head (the
log-likelihood of the whole sequence, summed over every CTC alignment).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


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


class CtcScorer:
    """An :class:`AttentionScorer` for a CTC head: ``score`` is ``log p_ctc(tokens | x)``, the
    log of the sum over every CTC alignment of ``tokens`` to the valid frames (``-inf`` when
    the frames are too few for the tokens and their repeats).

    Args:
      ctc_output: maps encoder output (N, T, D) to CTC log-probabilities (N, T, V)
        (``AsrModel.ctc_output``).
      blank_id: the CTC blank.
    """

    def __init__(self, ctc_output: nn.Module, blank_id: int = 0) -> None:
        self.ctc_output = ctc_output
        self.blank_id = blank_id

    @torch.no_grad()
    def score(
        self,
        encoder_out: torch.Tensor,
        encoder_out_lens: torch.Tensor,
        token_ids: list[list[int]],
    ) -> torch.Tensor:
        """(N,) float64 log-likelihoods; see the class docstring."""
        log_probs = self.ctc_output(encoder_out)  # (N, T, V)
        return ctc_sequence_log_probs(log_probs, encoder_out_lens, token_ids, self.blank_id)


def ctc_sequence_log_probs(
    log_probs: torch.Tensor,
    lens: torch.Tensor,
    token_ids: list[list[int]],
    blank_id: int = 0,
) -> torch.Tensor:
    """``log p_ctc(token_ids[n] | frames)`` for each row n.

    Args:
      log_probs: (N, T, V) per-frame log-probabilities.
      lens: (N,) valid frames per row.
      token_ids: N token-id lists (no blank inside; may be empty).
      blank_id: the CTC blank.
    Returns:
      (N,) float64; ``-inf`` where ``lens[n]`` frames cannot hold ``token_ids[n]``.
    """
    n, _, v = log_probs.shape
    assert lens.shape == (n,), f"lens must be ({n},), got {tuple(lens.shape)}"
    assert len(token_ids) == n, f"{len(token_ids)} token lists for {n} rows"
    for row, toks in enumerate(token_ids):
        bad = [t for t in toks if not 0 <= t < v or t == blank_id]
        if bad:
            raise ValueError(
                f"row {row}: tokens {bad} are blank ({blank_id}) or outside 0..{v - 1}"
            )
    targets = torch.tensor([t for toks in token_ids for t in toks], dtype=torch.int64)
    target_lens = torch.tensor([len(toks) for toks in token_ids], dtype=torch.int64)
    nll = torch.nn.functional.ctc_loss(
        log_probs.double().transpose(0, 1).cpu(),  # (T, N, V)
        targets,
        lens.cpu().to(torch.int64),
        target_lens,
        blank=blank_id,
        reduction="none",
        zero_infinity=False,
    )
    return -nll


class WeightedScorers:
    """An :class:`AttentionScorer` whose score is ``sum_k weight_k * scorer_k.score(...)``
    (weights of 0 are left out, so a ``-inf`` from their scorer does not become nan).

    Args:
      scorers: ``(scorer, weight)`` pairs, e.g. a :class:`CtcScorer` and an n-gram LM scorer
        (:class:`gmot.decoding.ngram_lm.NgramLmScorer`).
    """

    def __init__(self, scorers: list[tuple[AttentionScorer, float]]) -> None:
        self.scorers = [(s, float(w)) for s, w in scorers if w]

    @torch.no_grad()
    def score(
        self,
        encoder_out: torch.Tensor,
        encoder_out_lens: torch.Tensor,
        token_ids: list[list[int]],
    ) -> torch.Tensor:
        """(N,) float64 weighted sums; see the class docstring."""
        total = torch.zeros(len(token_ids), dtype=torch.float64)
        for scorer, w in self.scorers:
            s = scorer.score(encoder_out, encoder_out_lens, token_ids)
            total = total + w * torch.as_tensor(s, dtype=torch.float64).reshape(-1).cpu()
        return total


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
    first_t = first_pass_scale * torch.tensor(first, dtype=torch.float64)
    # a weight of 0 ignores the second score, also where it is -inf (0 * -inf would be nan)
    total = first_t + attention_scale * att if attention_scale else first_t
    results, start = [], 0
    for lst in nbest:
        seg = total[start : start + len(lst)]
        if not bool(torch.isfinite(seg).any()):  # no hypothesis the scorer allows: first pass
            seg = first_t[start : start + len(lst)]
        results.append(hyps[start + int(seg.argmax())])
        start += len(lst)
    return results
