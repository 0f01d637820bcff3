"""Transducer (RNN-T) search: greedy, beam, modified beam and (with k2) fast beam search.

Every function takes a transducer ``model`` exposing

* ``model.decoder``: stateless prediction network, ``decoder(y (N, U) int64, need_pad: bool)
  -> (N, U', decoder_dim)`` with attributes ``.blank_id`` and ``.context_size``; called with
  ``need_pad=False`` on the last ``context_size`` tokens, its last output row is the prediction
  for the next symbol;
* ``model.joiner``: ``.encoder_proj`` / ``.decoder_proj`` (Linear to joiner_dim) and
  ``joiner(enc, dec, project_input=False) -> logits (..., vocab_size)``;

plus ``encoder_out`` (B, T, C) (encoder output, before the joiner's projection) and
``encoder_out_lens`` (B,) int64 (valid frames per utterance). Each returns one token-id list per
utterance (blank and context padding removed), in the order of the batch.

Joint CTC / transducer scoring: greedy and modified beam search take ``ctc_scores`` (B, T, V),
the CTC head's log-probabilities on the same encoder frames times a weight. On frame t each
decision (a symbol or blank) is scored by the transducer's log-probability plus
``ctc_scores[b, t]`` of the same symbol: a per-frame product of the two heads' distributions.
The CTC head spikes on one frame per character and is blank elsewhere, so the sum keeps the
transducer from deleting a character whose frames resemble the one it just emitted (a repeated
or similar-sounding character), the transducer's most frequent error on a small model.
Where the two heads put a character on different frames, though, the product emits it twice.
Greedy and modified beam search therefore also take the CTC head's log-probabilities with a
weight (``ctc_log_probs``, ``ctc_prefix_weight``) and score each decision by the change of the
CTC probability of the whole hypothesis so far (CTC prefix scores,
:mod:`gmot.decoding.ctc_prefix`; ``decode.py --ctc-joint prefix``), which counts a later CTC
spike for a character already emitted as the same character.

LM fusion: greedy and modified beam search take ``lm``, a :class:`TokenLm` (an n-gram LM over
the token table, :class:`gmot.decoding.ngram_lm.NgramLmScorer`), and ``lm_scale``. On every
decision the non-blank scores of a hypothesis get ``lm_scale`` times the LM's log-probability of
the token after the hypothesis's tokens, and are then shifted by one constant so that their
log-sum-exp is what it was before (:func:`fuse_lm`). The LM thus only redistributes the mass the
acoustic model gives to "emit a character" among the characters; blank and the total emission
probability are untouched, so hypotheses of different lengths stay comparable and no length
bonus or blank penalty has to be tuned alongside the LM scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from gmot.decoding.ctc_prefix import (
    CtcPrefixLattice,
    decision_scores,
    initial_lattice,
    push_labels,
)


class TokenLm(Protocol):
    """A token LM for fusion: ``next_log_probs(histories)`` -> (N, V) natural-log
    probabilities of each next token id after each history (the emitted token ids, no
    blanks); the blank column is ignored."""

    def next_log_probs(self, histories: Sequence[Sequence[int]]) -> torch.Tensor: ...


def fuse_lm(
    scores: torch.Tensor, lm_log_probs: torch.Tensor, lm_scale: float, blank_id: int
) -> torch.Tensor:
    """LM fusion that keeps blank and the total emission score (module docstring).

    Args:
      scores: (N, V) log-domain scores of one decision per row (blank included).
      lm_log_probs: (N, V) the LM's natural-log probabilities of the next token per row.
      lm_scale: weight of the LM (0: ``scores`` unchanged).
      blank_id: the blank's column, left as it is.

    Returns:
      (N, V): non-blank columns ``scores + lm_scale * lm_log_probs + c`` with the per-row
      constant ``c`` that keeps their log-sum-exp equal to that of ``scores``; blank unchanged.
    """
    assert scores.shape == lm_log_probs.shape and scores.dim() == 2, (
        f"scores {tuple(scores.shape)} and lm_log_probs {tuple(lm_log_probs.shape)} must be "
        "the same (N, V)"
    )
    if not lm_scale:
        return scores
    keep = torch.ones(scores.shape[1], dtype=torch.bool, device=scores.device)
    keep[blank_id] = False
    s = scores[:, keep]
    fused = s + lm_scale * lm_log_probs[:, keep].to(s.dtype)
    fused = fused + (s.logsumexp(dim=1, keepdim=True) - fused.logsumexp(dim=1, keepdim=True))
    out = scores.clone()
    out[:, keep] = fused
    return out


def _lm_bias(
    lm: TokenLm | None, lm_scale: float, histories: list[list[int]], context_size: int
) -> torch.Tensor | None:
    """The LM's (N, V) next-token log-probabilities for hypotheses ``histories`` (token lists
    starting with ``context_size`` blanks), or None when there is no LM or its scale is 0."""
    if lm is None or not lm_scale:
        return None
    return lm.next_log_probs([h[context_size:] for h in histories])


def _check_inputs(encoder_out: torch.Tensor, encoder_out_lens: torch.Tensor) -> None:
    if encoder_out.ndim != 3:
        raise ValueError(f"encoder_out must be (B, T, C); got shape {tuple(encoder_out.shape)}")
    if encoder_out_lens.ndim != 1 or encoder_out_lens.shape[0] != encoder_out.shape[0]:
        raise ValueError(
            f"encoder_out_lens must be (B,) with B={encoder_out.shape[0]}; "
            f"got shape {tuple(encoder_out_lens.shape)}"
        )
    if encoder_out_lens.numel() and int(encoder_out_lens.max()) > encoder_out.shape[1]:
        raise ValueError(
            f"encoder_out_lens max {int(encoder_out_lens.max())} exceeds T={encoder_out.shape[1]}"
        )


def _decoder_proj(model: nn.Module, contexts: torch.Tensor) -> torch.Tensor:
    """Projected prediction-network output for contexts (N, context_size) -> (N, joiner_dim)."""
    out = model.decoder(contexts, need_pad=False)
    return model.joiner.decoder_proj(out[:, -1])


def _check_ctc_scores(ctc_scores: torch.Tensor | None, B: int, T: int, name: str) -> None:
    if ctc_scores is None:
        return
    if ctc_scores.ndim != 3 or ctc_scores.shape[0] != B or ctc_scores.shape[1] < T:
        raise ValueError(
            f"{name}: ctc_scores must be (B={B}, T>={T}, V); got {tuple(ctc_scores.shape)}"
        )


def _joint(
    model: nn.Module, enc: torch.Tensor, dec: torch.Tensor, blank_penalty: float = 0.0
) -> torch.Tensor:
    """Joiner on projected inputs enc (N, J), dec (N, J) -> logits (N, V); ``blank_penalty``
    is subtracted from the blank's logit (icefall's ``--blank-penalty``: > 0 emits more)."""
    logits = model.joiner(enc, dec, project_input=False)
    if blank_penalty:
        logits[:, model.decoder.blank_id] -= blank_penalty
    return logits


@torch.no_grad()
def init_greedy_state(
    model: nn.Module, batch_size: int, device: torch.device | str
) -> tuple[list[list[int]], torch.Tensor]:
    """Greedy-search state before the first frame: ``batch_size`` hypotheses of
    ``context_size`` blanks and their projected decoder outputs (batch_size, J)."""
    blank_id, context_size = model.decoder.blank_id, model.decoder.context_size
    hyps = [[blank_id] * context_size for _ in range(batch_size)]
    contexts = torch.full((batch_size, context_size), blank_id, dtype=torch.int64, device=device)
    return hyps, _decoder_proj(model, contexts)


@torch.no_grad()
def greedy_search_advance(
    model: nn.Module,
    enc: torch.Tensor,
    lens: list[int],
    hyps: list[list[int]],
    dec: torch.Tensor,
    max_sym_per_frame: int = 1,
    blank_penalty: float = 0.0,
    ctc_scores: torch.Tensor | None = None,
    lm: TokenLm | None = None,
    lm_scale: float = 0.0,
    ctc_prefix: CtcPrefixLattice | None = None,
) -> torch.Tensor:
    """Advance batched greedy search over a block of frames (whole utterances or one chunk).

    Args:
      model: transducer (see the module docstring).
      enc: (B, T, J) encoder frames already projected by ``model.joiner.encoder_proj``.
      lens: B valid frame counts, non-increasing (the utterances active at frame t are a prefix).
      hyps: B token lists starting with ``context_size`` blanks; emitted tokens are appended.
      dec: (B, J) projected decoder outputs for the current contexts of ``hyps``.
      max_sym_per_frame: most non-blank symbols emitted on one frame (>= 1).
      blank_penalty: subtracted from the blank logit on every frame (0 = plain greedy search).
      ctc_scores: None, or (B, T, V) weighted CTC log-probabilities in the order of ``enc``:
        the decision on frame t maximises the transducer's log-probability plus
        ``ctc_scores[b, t]`` (see the module docstring).
      lm, lm_scale: LM fusion (:func:`fuse_lm`; None or 0: none).
      ctc_prefix: None, or the CTC prefix lattices of the rows (in the order of ``enc``, at
        the first frame of this block): joint scoring by CTC prefix scores
        (:mod:`gmot.decoding.ctc_prefix`) instead of the per-frame product.

    Returns:
      the new (B, J) decoder outputs (the state for the next block).
    """
    B, T, _ = enc.shape
    _check_ctc_scores(ctc_scores, B, T, "greedy_search")
    assert dec.dim() == 2 and dec.shape[0] == B, f"dec must be ({B}, J); got {tuple(dec.shape)}"
    assert len(lens) == len(hyps) == B, f"{len(lens)} lens, {len(hyps)} hyps for B={B}"
    assert all(a >= b for a, b in zip(lens, lens[1:])), f"lens must not increase: {lens}"
    blank_id, context_size = model.decoder.blank_id, model.decoder.context_size
    for t in range(T):
        n = sum(1 for length in lens if length > t)
        if n == 0:
            break
        for k in range(max_sym_per_frame):
            logits = _joint(model, enc[:n, t], dec[:n], blank_penalty)  # (n, V)
            if ctc_scores is not None:
                logits = logits.log_softmax(dim=-1) + ctc_scores[:n, t]
            if ctc_prefix is not None:
                logits = logits.log_softmax(dim=-1) + ctc_prefix.scores(n, t)
            bias = _lm_bias(lm, lm_scale, hyps[:n], context_size)
            if bias is not None:
                logits = fuse_lm(logits, bias, lm_scale, blank_id)  # shift-invariant
            y = logits.argmax(dim=-1)
            emitted = (y != blank_id).nonzero(as_tuple=True)[0]
            if ctc_prefix is not None and k == 0:  # the frame's one CTC decision
                ctc_prefix.commit(n, t, {i: int(y[i]) for i in emitted.tolist()})
            if emitted.numel() == 0:
                break
            for i in emitted.tolist():
                hyps[i].append(int(y[i]))
            ctx = torch.tensor(
                [hyps[i][-context_size:] for i in emitted.tolist()],
                dtype=torch.int64,
                device=enc.device,
            )
            dec = dec.clone()
            dec[emitted] = _decoder_proj(model, ctx)
    return dec


@torch.no_grad()
def greedy_search_batch(
    model: nn.Module,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    max_sym_per_frame: int = 1,
    blank_penalty: float = 0.0,
    ctc_scores: torch.Tensor | None = None,
    lm: TokenLm | None = None,
    lm_scale: float = 0.0,
    ctc_log_probs: torch.Tensor | None = None,
    ctc_prefix_weight: float = 0.0,
) -> list[list[int]]:
    """Batched greedy search.

    Args:
      model: transducer (see the module docstring).
      encoder_out: (B, T, C) encoder output.
      encoder_out_lens: (B,) valid frames per utterance.
      max_sym_per_frame: most non-blank symbols emitted on one frame (>= 1).
      blank_penalty: subtracted from the blank logit (see :func:`greedy_search_advance`).
      ctc_scores: None, or (B, T, V) weighted CTC log-probabilities added to the transducer's
        on every frame (joint scoring, see the module docstring).
      lm, lm_scale: LM fusion (:func:`fuse_lm`; None or 0: none).
      ctc_log_probs, ctc_prefix_weight: (B, T, V) the CTC head's log-probabilities and a
        weight > 0: joint scoring by CTC prefix scores (:mod:`gmot.decoding.ctc_prefix`; use
        instead of ``ctc_scores``); weight 0: not used.

    Returns:
      B token-id lists.
    """
    _check_inputs(encoder_out, encoder_out_lens)
    if max_sym_per_frame < 1:
        raise ValueError(f"max_sym_per_frame must be >= 1; got {max_sym_per_frame}")
    context_size = model.decoder.context_size
    device = encoder_out.device
    B = encoder_out.shape[0]

    # Sort by length (descending) so the utterances still active at frame t are a prefix.
    lens = encoder_out_lens.to("cpu")
    order = torch.argsort(lens, descending=True, stable=True)
    enc = model.joiner.encoder_proj(encoder_out[order.to(device)])  # (B, T, J)
    hyps, dec = init_greedy_state(model, B, device)
    _check_ctc_scores(ctc_scores, B, encoder_out.shape[1], "greedy_search")
    if ctc_scores is not None:
        ctc_scores = ctc_scores[order.to(ctc_scores.device)]
    prefix = None
    if ctc_prefix_weight:
        if ctc_log_probs is None:
            raise ValueError("greedy_search: ctc_prefix_weight is not 0 but no ctc_log_probs")
        _check_ctc_scores(ctc_log_probs, B, encoder_out.shape[1], "greedy_search")
        prefix = CtcPrefixLattice(
            ctc_log_probs[order.to(ctc_log_probs.device)],
            ctc_prefix_weight,
            model.decoder.blank_id,
            max_labels=encoder_out.shape[1] * max_sym_per_frame,
        )
    greedy_search_advance(
        model,
        enc,
        lens[order].tolist(),
        hyps,
        dec,
        max_sym_per_frame,
        blank_penalty,
        ctc_scores,
        lm,
        lm_scale,
        prefix,
    )

    result: list[list[int]] = [[] for _ in range(B)]
    for pos, idx in enumerate(order.tolist()):
        result[idx] = hyps[pos][context_size:]
    return result


@torch.no_grad()
def greedy_search(
    model: nn.Module,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    max_sym_per_frame: int = 1,
    blank_penalty: float = 0.0,
    ctc_scores: torch.Tensor | None = None,
    lm: TokenLm | None = None,
    lm_scale: float = 0.0,
) -> list[list[int]]:
    """Greedy search one utterance at a time (reference for :func:`greedy_search_batch`).

    Shapes as in :func:`greedy_search_batch`.
    """
    _check_inputs(encoder_out, encoder_out_lens)
    _check_ctc_scores(ctc_scores, encoder_out.shape[0], encoder_out.shape[1], "greedy_search")
    if max_sym_per_frame < 1:
        raise ValueError(f"max_sym_per_frame must be >= 1; got {max_sym_per_frame}")
    blank_id = model.decoder.blank_id
    context_size = model.decoder.context_size
    device = encoder_out.device
    results = []
    for b in range(encoder_out.shape[0]):
        enc = model.joiner.encoder_proj(encoder_out[b, : int(encoder_out_lens[b])])  # (T, J)
        hyp = [blank_id] * context_size
        dec = _decoder_proj(model, torch.tensor([hyp], dtype=torch.int64, device=device))
        for t in range(enc.shape[0]):
            for _ in range(max_sym_per_frame):
                logits = _joint(model, enc[t : t + 1], dec, blank_penalty)[0]
                if ctc_scores is not None:
                    logits = logits.log_softmax(dim=-1) + ctc_scores[b, t]
                bias = _lm_bias(lm, lm_scale, [hyp], context_size)
                if bias is not None:
                    logits = fuse_lm(logits[None], bias, lm_scale, blank_id)[0]
                y = int(logits.argmax(dim=-1))
                if y == blank_id:
                    break
                hyp.append(y)
                ctx = torch.tensor([hyp[-context_size:]], dtype=torch.int64, device=device)
                dec = _decoder_proj(model, ctx)
        results.append(hyp[context_size:])
    return results


def _cached_decoder(
    model: nn.Module,
    cache: dict[tuple[int, ...], torch.Tensor],
    ys: list[int],
    device: torch.device,
) -> torch.Tensor:
    """Projected decoder output (1, J) for the context of ``ys``, memoised in ``cache``."""
    ctx = tuple(ys[-model.decoder.context_size :])
    if ctx not in cache:
        cache[ctx] = _decoder_proj(model, torch.tensor([ctx], dtype=torch.int64, device=device))
    return cache[ctx]


@dataclass
class _Hyp:
    ys: list[int]  # includes the context_size leading blanks
    log_prob: float
    sym_this_frame: int = 0
    # CTC prefix lattice (alpha (S,), state symbols (S,), label count) when joint scoring
    # uses prefix scores (modified beam search with ctc_prefix)
    ctc: tuple[torch.Tensor, torch.Tensor, int] | None = None

    @property
    def key(self) -> tuple[int, ...]:
        return tuple(self.ys)


def log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) for floats, exact for -inf inputs."""
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def _add_logadd(pool: dict[tuple[int, ...], _Hyp], hyp: _Hyp) -> None:
    """Insert ``hyp`` into ``pool``, merging an existing equal token sequence by log-add."""
    old = pool.get(hyp.key)
    if old is None:
        pool[hyp.key] = hyp
    else:
        if hyp.log_prob > old.log_prob:  # a merged hypothesis keeps the better one's lattice
            old.ctc = hyp.ctc
        old.log_prob = log_add(old.log_prob, hyp.log_prob)
        old.sym_this_frame = min(old.sym_this_frame, hyp.sym_this_frame)


@torch.no_grad()
def beam_search(
    model: nn.Module,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: int = 4,
    max_sym_per_frame: int = 3,
) -> list[list[int]]:
    """The RNN-T beam search of Graves (2012, arXiv 1211.3711, Algorithm 1), per utterance.

    On each frame, the most probable hypothesis of set A is expanded: its blank extension goes
    to set B (frame finished), its ``beam`` best non-blank extensions back to A. This repeats
    until B holds ``beam`` hypotheses all more probable than the best left in A (or A is empty:
    no hypothesis may emit more than ``max_sym_per_frame`` symbols per frame). Hypotheses with
    equal token sequences are merged by log-add. Returns the most probable hypothesis.

    Shapes as in :func:`greedy_search_batch`; ``beam`` >= 1.
    """
    _check_inputs(encoder_out, encoder_out_lens)
    if beam < 1:
        raise ValueError(f"beam must be >= 1; got {beam}")
    if max_sym_per_frame < 1:
        raise ValueError(f"max_sym_per_frame must be >= 1; got {max_sym_per_frame}")
    blank_id = model.decoder.blank_id
    context_size = model.decoder.context_size
    device = encoder_out.device
    results = []
    for b in range(encoder_out.shape[0]):
        enc = model.joiner.encoder_proj(encoder_out[b, : int(encoder_out_lens[b])])
        dec_cache: dict[tuple[int, ...], torch.Tensor] = {}
        start = _Hyp(ys=[blank_id] * context_size, log_prob=0.0)
        B_set: dict[tuple[int, ...], _Hyp] = {start.key: start}
        for t in range(enc.shape[0]):
            A_set = {k: _Hyp(h.ys, h.log_prob, 0) for k, h in B_set.items()}
            B_set = {}
            while A_set:
                y_star = max(A_set.values(), key=lambda h: h.log_prob)
                del A_set[y_star.key]
                log_probs = _joint(
                    model, enc[t : t + 1], _cached_decoder(model, dec_cache, y_star.ys, device)
                ).log_softmax(-1)[0]
                log_probs = log_probs.float().cpu()
                _add_logadd(B_set, _Hyp(y_star.ys, y_star.log_prob + float(log_probs[blank_id]), 0))
                if y_star.sym_this_frame < max_sym_per_frame:
                    log_probs[blank_id] = -math.inf
                    k = min(beam, log_probs.numel() - 1)
                    values, tokens = log_probs.topk(k)
                    for v, tok in zip(values.tolist(), tokens.tolist()):
                        new = _Hyp(
                            y_star.ys + [tok], y_star.log_prob + v, y_star.sym_this_frame + 1
                        )
                        _add_logadd(A_set, new)
                best_a = max((h.log_prob for h in A_set.values()), default=-math.inf)
                n_better = sum(1 for h in B_set.values() if h.log_prob > best_a)
                if n_better >= beam:
                    break
            kept = sorted(B_set.values(), key=lambda h: h.log_prob, reverse=True)[:beam]
            B_set = {h.key: h for h in kept}
        best = max(B_set.values(), key=lambda h: h.log_prob)
        results.append(best.ys[context_size:])
    return results


#: One utterance's modified-beam-search hypotheses, keyed by token sequence.
Beam = dict[tuple[int, ...], _Hyp]


def init_beam(model: nn.Module) -> Beam:
    """A modified-beam-search beam before the first frame: one empty hypothesis."""
    h = _Hyp(ys=[model.decoder.blank_id] * model.decoder.context_size, log_prob=0.0)
    return {h.key: h}


@torch.no_grad()
def modified_beam_search_advance(
    model: nn.Module,
    enc: torch.Tensor,
    lens: list[int],
    beams: list[Beam],
    beam: int = 4,
    blank_penalty: float = 0.0,
    ctc_scores: torch.Tensor | None = None,
    lm: TokenLm | None = None,
    lm_scale: float = 0.0,
    ctc_prefix: tuple[torch.Tensor, float] | None = None,
) -> None:
    """Advance modified beam search over a block of frames (whole utterances or one chunk).

    Args:
      model: transducer (see the module docstring).
      enc: (B, T, J) encoder frames already projected by ``model.joiner.encoder_proj``.
      lens: B valid frame counts (any order).
      beams: B beams (from :func:`init_beam` or an earlier call); ``beams[b]`` is replaced by
        the beam after its ``lens[b]`` frames.
      beam: hypotheses kept per utterance (>= 1).
      blank_penalty: subtracted from the blank logit before the log-softmax.
      ctc_scores: None, or (B, T, V) weighted CTC log-probabilities added to every
        hypothesis' log-probabilities on frame t (joint scoring, see the module docstring).
      lm, lm_scale: LM fusion (:func:`fuse_lm`; None or 0: none).
      ctc_prefix: None, or (``log_probs`` (B, T, V) the CTC head's log-probabilities in the
        order of ``enc``, weight > 0): joint scoring by CTC prefix scores, one lattice per
        hypothesis (:mod:`gmot.decoding.ctc_prefix`; use instead of ``ctc_scores``).
    """
    B, T, _ = enc.shape
    _check_ctc_scores(ctc_scores, B, T, "modified_beam_search")
    assert len(lens) == len(beams) == B, f"{len(lens)} lens, {len(beams)} beams for B={B}"
    blank_id, context_size = model.decoder.blank_id, model.decoder.context_size
    device = enc.device
    if ctc_prefix is not None:
        ctc_lp, ctc_w = ctc_prefix
        _check_ctc_scores(ctc_lp, B, T, "modified_beam_search")
        e_alpha, e_sym, _ = initial_lattice(1, ctc_lp.shape[1], blank_id, device)
        empty = (e_alpha[0], e_sym[0], 0)  # the lattice of a hypothesis with no characters
    dec_cache: dict[tuple[int, ...], torch.Tensor] = {}
    for t in range(T):
        active = [b for b in range(B) if lens[b] > t]
        if not active:
            break
        flat: list[tuple[int, _Hyp]] = [(b, h) for b in active for h in beams[b].values()]
        ctxs = [tuple(h.ys[-context_size:]) for _, h in flat]
        missing = sorted({c for c in ctxs if c not in dec_cache})
        if missing:
            outs = _decoder_proj(model, torch.tensor(missing, dtype=torch.int64, device=device))
            for c, o in zip(missing, outs):
                dec_cache[c] = o
        dec = torch.stack([dec_cache[c] for c in ctxs])  # (N, J)
        rows = torch.tensor([b for b, _ in flat], dtype=torch.int64, device=device)
        logits = _joint(model, enc[rows, t], dec, blank_penalty)
        log_probs = logits.log_softmax(dim=-1).float()  # (N, V)
        if ctc_scores is not None:
            log_probs = log_probs + ctc_scores[rows, t].float()
        if ctc_prefix is not None:
            states = [h.ctc or empty for _, h in flat]
            c_alpha = torch.stack([st[0] for st in states])
            c_sym = torch.stack([st[1] for st in states])
            c_n = torch.tensor([st[2] for st in states], dtype=torch.int64, device=device)
            c_lp = ctc_lp[rows, t].float()
            c_scores, c_alpha_t = decision_scores(c_alpha, c_sym, c_n, c_lp, blank_id)
            log_probs = log_probs + ctc_w * c_scores
        bias = _lm_bias(lm, lm_scale, [h.ys for _, h in flat], context_size)
        if bias is not None:
            log_probs = fuse_lm(log_probs, bias, lm_scale, blank_id)
        prev = torch.tensor([h.log_prob for _, h in flat], dtype=torch.float32, device=device)
        log_probs = (log_probs + prev.unsqueeze(1)).cpu()
        V = log_probs.shape[1]
        start = 0
        for b in active:
            n_h = len(beams[b])
            scores = log_probs[start : start + n_h].reshape(-1)
            hyps_b = [h for _, h in flat[start : start + n_h]]
            start += n_h
            values, idx = scores.topk(min(beam, scores.numel()))
            new_beam: Beam = {}
            for v, i in zip(values.tolist(), idx.tolist()):
                h, tok = hyps_b[i // V], i % V
                ys = h.ys if tok == blank_id else h.ys + [tok]
                ctc = None
                if ctc_prefix is not None:
                    g = start - n_h + i // V  # the hypothesis' row in flat
                    a, sy, nl = c_alpha_t[g], c_sym[g], c_n[g : g + 1]
                    if tok != blank_id:
                        a, sy, nl = a.clone(), sy.clone(), nl.clone()
                        push_labels(
                            a[None], c_alpha[g][None], sy[None], nl, c_lp[g][None], [0], [tok]
                        )
                    ctc = (a, sy, int(nl[0]))
                _add_logadd(new_beam, _Hyp(ys, v, ctc=ctc))
            beams[b] = new_beam


def beam_nbest(bm: Beam, context_size: int) -> list[tuple[list[int], float]]:
    """A beam's hypotheses as ``(token ids, log_prob)``, best first (context blanks removed)."""
    hyps = sorted(bm.values(), key=lambda h: h.log_prob, reverse=True)
    return [(h.ys[context_size:], h.log_prob) for h in hyps]


def beam_best(bm: Beam, context_size: int) -> list[int]:
    """The token ids of a beam's most probable hypothesis (context blanks removed)."""
    return max(bm.values(), key=lambda h: h.log_prob).ys[context_size:]


@torch.no_grad()
def modified_beam_search(
    model: nn.Module,
    encoder_out: torch.Tensor,
    encoder_out_lens: torch.Tensor,
    beam: int = 4,
    return_nbest: bool = False,
    blank_penalty: float = 0.0,
    ctc_scores: torch.Tensor | None = None,
    lm: TokenLm | None = None,
    lm_scale: float = 0.0,
    ctc_log_probs: torch.Tensor | None = None,
    ctc_prefix_weight: float = 0.0,
) -> list[list[int]] | list[list[tuple[list[int], float]]]:
    """Batched beam search with at most one symbol per frame (the "modified" transducer search).

    On each frame every hypothesis of every active utterance is scored by the joiner in one
    batch; per utterance the ``beam`` best (hypothesis, token) extensions over all hypotheses
    are kept (token = blank keeps the sequence), and extensions with equal token sequences are
    merged by log-add.

    Args:
      model, encoder_out (B, T, C), encoder_out_lens (B,): as in :func:`greedy_search_batch`.
      beam: hypotheses kept per utterance (>= 1). With beam 1 this equals greedy search with
        ``max_sym_per_frame=1``.
      return_nbest: if True return, per utterance, the final hypotheses as
        ``(tokens, log_prob)`` sorted best first (for rescoring).
      blank_penalty: subtracted from the blank logit before the log-softmax.
      ctc_scores: None, or (B, T, V) weighted CTC log-probabilities (joint scoring, see the
        module docstring).
      lm, lm_scale: LM fusion (:func:`fuse_lm`; None or 0: none).
      ctc_log_probs, ctc_prefix_weight: joint scoring by CTC prefix scores, as in
        :func:`greedy_search_batch` (one lattice per hypothesis; a merged hypothesis keeps the
        lattice of its more probable part).

    Returns:
      B token-id lists (best hypothesis by total log-probability), or the n-best lists.
    """
    _check_inputs(encoder_out, encoder_out_lens)
    if beam < 1:
        raise ValueError(f"beam must be >= 1; got {beam}")
    prefix = None
    if ctc_prefix_weight:
        if ctc_log_probs is None:
            raise ValueError(
                "modified_beam_search: ctc_prefix_weight is not 0 but no ctc_log_probs"
            )
        prefix = (ctc_log_probs, float(ctc_prefix_weight))
    beams = [init_beam(model) for _ in range(encoder_out.shape[0])]
    enc = model.joiner.encoder_proj(encoder_out)  # (B, T, J)
    modified_beam_search_advance(
        model,
        enc,
        encoder_out_lens.tolist(),
        beams,
        beam,
        blank_penalty,
        ctc_scores,
        lm,
        lm_scale,
        prefix,
    )
    c = model.decoder.context_size
    if return_nbest:
        return [beam_nbest(bm, c) for bm in beams]
    return [beam_best(bm, c) for bm in beams]
