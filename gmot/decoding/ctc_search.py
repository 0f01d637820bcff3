"""CTC search: greedy (best path) and prefix beam search.

Both take ``ctc_log_probs`` (B, T, V): per-frame log-probabilities of the CTC head (e.g.
``model.ctc_output(encoder_out)``), and ``lens`` (B,) int64 valid frames per utterance.
"""

from __future__ import annotations

import math

import torch

from gmot.decoding.transducer_search import log_add


def _check(ctc_log_probs: torch.Tensor, lens: torch.Tensor, blank_id: int) -> None:
    if ctc_log_probs.ndim != 3:
        raise ValueError(f"ctc_log_probs must be (B, T, V); got shape {tuple(ctc_log_probs.shape)}")
    if lens.ndim != 1 or lens.shape[0] != ctc_log_probs.shape[0]:
        raise ValueError(
            f"lens must be (B,) with B={ctc_log_probs.shape[0]}; got shape {tuple(lens.shape)}"
        )
    if lens.numel() and int(lens.max()) > ctc_log_probs.shape[1]:
        raise ValueError(f"lens max {int(lens.max())} exceeds T={ctc_log_probs.shape[1]}")
    if not 0 <= blank_id < ctc_log_probs.shape[2]:
        raise ValueError(f"blank_id {blank_id} out of range for V={ctc_log_probs.shape[2]}")


def _acc(pool: dict, prefix: tuple[int, ...], which: int, value: float) -> None:
    """Log-add ``value`` into ``pool[prefix][which]`` (0: ends in blank, 1: in a label)."""
    entry = pool.setdefault(prefix, [-math.inf, -math.inf])
    entry[which] = log_add(entry[which], value)


@torch.no_grad()
def ctc_greedy_search(
    ctc_log_probs: torch.Tensor, lens: torch.Tensor, blank_id: int = 0
) -> list[list[int]]:
    """Best-path CTC decoding: per-frame argmax, repeats collapsed, blanks dropped.

    Args:
      ctc_log_probs: (B, T, V) log-probabilities (or logits: only the argmax matters).
      lens: (B,) valid frames.
      blank_id: the blank symbol.

    Returns:
      B token-id lists.
    """
    _check(ctc_log_probs, lens, blank_id)
    best = ctc_log_probs.argmax(dim=-1).cpu()  # (B, T)
    results = []
    for b, n in enumerate(lens.tolist()):
        path = best[b, :n].tolist()
        hyp, prev = [], None
        for tok in path:
            if tok != prev and tok != blank_id:
                hyp.append(tok)
            prev = tok
        results.append(hyp)
    return results


@torch.no_grad()
def ctc_prefix_beam_search(
    ctc_log_probs: torch.Tensor,
    lens: torch.Tensor,
    beam: int = 4,
    blank_id: int = 0,
    return_nbest: bool = False,
) -> list[list[int]] | list[list[tuple[list[int], float]]]:
    """CTC prefix beam search (Graves 2006 / Hannun et al. 2014), per utterance.

    Each prefix keeps two log-probabilities: of all alignments of the frames so far that
    produce the prefix and end in blank (``pb``) or in its last label (``pnb``). A repeated
    label extends the prefix only after a blank; otherwise it collapses into the last label.
    On each frame only the ``beam`` most probable labels (plus blank) are tried, and the
    ``beam`` prefixes with the highest ``logaddexp(pb, pnb)`` are kept. With a beam at least
    the vocabulary size and the number of prefixes, the result is the exact most probable
    label sequence.

    Args:
      ctc_log_probs: (B, T, V) log-probabilities (log-softmax output).
      lens: (B,) valid frames.
      beam: prefixes kept per frame (>= 1).
      blank_id: the blank symbol.
      return_nbest: return per utterance all kept ``(tokens, log_prob)``, best first.

    Returns:
      B token-id lists (most probable prefix), or the n-best lists.
    """
    _check(ctc_log_probs, lens, blank_id)
    if beam < 1:
        raise ValueError(f"beam must be >= 1; got {beam}")
    neg_inf = -math.inf
    lp_all = ctc_log_probs.float().cpu()
    V = lp_all.shape[2]
    k = min(beam, V)
    results: list = []
    for b, n in enumerate(lens.tolist()):
        beams: dict[tuple[int, ...], list[float]] = {(): [0.0, neg_inf]}
        for t in range(n):
            lp = lp_all[b, t]
            cands = set(lp.topk(k).indices.tolist())
            cands.add(blank_id)
            lp_list = lp.tolist()
            new: dict[tuple[int, ...], list[float]] = {}

            for prefix, (pb, pnb) in beams.items():
                total = log_add(pb, pnb)
                last = prefix[-1] if prefix else None
                for c in cands:
                    p = lp_list[c]
                    if c == blank_id:
                        _acc(new, prefix, 0, total + p)
                    elif c == last:
                        _acc(new, prefix, 1, pnb + p)  # repeated label collapses
                        _acc(new, prefix + (c,), 1, pb + p)  # a new label after a blank
                    else:
                        _acc(new, prefix + (c,), 1, total + p)
            # drop impossible prefixes (e.g. a repeat reached only from a -inf blank state)
            alive = [kv for kv in new.items() if log_add(*kv[1]) > neg_inf]
            ranked = sorted(alive, key=lambda kv: log_add(*kv[1]), reverse=True)
            beams = dict(ranked[:beam]) or {(): [0.0, neg_inf]}
        ranked = sorted(beams.items(), key=lambda kv: log_add(*kv[1]), reverse=True)
        if return_nbest:
            results.append([(list(p), log_add(*s)) for p, s in ranked])
        else:
            results.append(list(ranked[0][0]))
    return results
