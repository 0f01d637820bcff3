"""RNN-T losses with k2's names and semantics (builtin implementations).

Shapes: ``lm`` (B, S+1, C) prediction-network output, ``am`` (B, T, C) encoder output,
``logits`` (B, T, S+1, C) full joint or (B, T, R, C) pruned joint, ``symbols`` (B, S) integer
(int64, or int32 etc., converted to int64),
``termination_symbol`` the blank id, ``boundary`` (B, 4) int64 rows
``[s_begin, t_begin, s_end, t_end]`` (default ``[0, 0, S, T]``).

Arc log-probs: ``px`` (B, S, T+1) for rnnt_type "regular" (emitting does not advance t;
px[:, :, T] = -inf and px[b, :, t_end_b] = -inf) or (B, S, T) for "modified" / "constrained"
(at most one symbol per frame; "constrained" adds py[:, 1:, :] to px); ``py`` (B, S+1, T).
Losses are negated lattice scores (nats), reduced over the batch by ``reduction``
("none" -> (B,), "mean", "sum"). ``delay_penalty > 0`` adds
``delay_penalty * ((T_b - 1) / 2 - t)`` to px.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gmot.transducer.recursion import mutual_information_recursion_builtin

NEG_INF = float("-inf")
RNNT_TYPES = ("regular", "modified", "constrained")
REDUCTIONS = ("none", "mean", "sum")
_INT_TYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def _long(symbols: Tensor) -> Tensor:
    """Integer ``symbols`` (validated by :func:`_check_common`) as int64 for indexing."""
    return symbols if symbols.dtype == torch.int64 else symbols.long()


# --------------------------------------------------------------------------- validation
def _check_common(
    symbols: Tensor,
    termination_symbol: int,
    C: int,
    B: int,
    T: int,
    boundary: Tensor | None,
    rnnt_type: str,
    reduction: str | None,
) -> None:
    if rnnt_type not in RNNT_TYPES:
        raise ValueError(f"rnnt_type must be one of {RNNT_TYPES}, got {rnnt_type!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if not isinstance(symbols, Tensor) or symbols.ndim != 2 or symbols.shape[0] != B:
        shape = tuple(symbols.shape) if isinstance(symbols, Tensor) else type(symbols).__name__
        raise ValueError(f"symbols must have shape (B, S) with B={B}, got {shape}")
    if symbols.dtype not in _INT_TYPES:
        raise TypeError(
            f"symbols must be an integer tensor (int64, int32, ...), got {symbols.dtype}"
        )
    if not 0 <= int(termination_symbol) < C:
        raise ValueError(f"termination_symbol={termination_symbol} out of range [0, {C})")
    S = symbols.shape[1]
    if symbols.numel() > 0:
        lo, hi = torch.stack(torch.aminmax(symbols)).tolist()  # one host sync
        if lo < 0 or hi >= C:
            raise ValueError(f"symbols must lie in [0, C={C}), got values in [{lo}, {hi}]")
    if boundary is not None:
        if not isinstance(boundary, Tensor) or tuple(boundary.shape) != (B, 4):
            shape = tuple(boundary.shape) if isinstance(boundary, Tensor) else boundary
            raise ValueError(f"boundary must have shape (B, 4) = ({B}, 4), got {shape}")
        if boundary.dtype != torch.int64:
            raise TypeError(f"boundary must be int64, got dtype {boundary.dtype}")
    if rnnt_type != "regular":
        if boundary is None:
            s_len = torch.full((B,), S)
            t_len = torch.full((B,), T)
        else:
            s_len = boundary[:, 2] - boundary[:, 0]
            t_len = boundary[:, 3] - boundary[:, 1]
        bad = (s_len > t_len).nonzero().flatten().tolist()
        if bad:
            b = bad[0]
            raise ValueError(
                f"symbols: rnnt_type={rnnt_type!r} emits at most one symbol per frame but "
                f"sequence {b} has {int(s_len[b])} labels for {int(t_len[b])} frames "
                f"(labels longer than frames)"
            )


def _check_reduction(reduction: str | None) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_float(name: str, x: Tensor, ndim: int, shape_doc: str) -> None:
    if not isinstance(x, Tensor) or x.ndim != ndim:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{name} must have shape {shape_doc}, got {shape}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"{name} must be float32 or float64 (disable autocast and call .float()), "
            f"got dtype {x.dtype}"
        )


# --------------------------------------------------------------------------- helpers
def fix_for_boundary(px: Tensor, boundary: Tensor | None = None) -> Tensor:
    """Regular RNN-T: no symbol may be emitted at the last frame t_end; px (B, S, T+1)."""
    if boundary is None:
        return px
    B, S, T1 = px.shape
    idx = boundary[:, 3].reshape(B, 1, 1).expand(B, S, 1).clamp(max=T1 - 1)
    return px.scatter(2, idx, NEG_INF)


def _finish_px_py(
    px: Tensor, py: Tensor, boundary: Tensor | None, rnnt_type: str
) -> tuple[Tensor, Tensor]:
    """px (B, S, T) -> regular (B, S, T+1) with -inf column / constrained adds py[:, 1:]."""
    if rnnt_type == "regular":
        B, S, T = px.shape
        px = torch.cat([px, px.new_full((B, S, 1), NEG_INF)], dim=2)
        px = fix_for_boundary(px, boundary)
    elif rnnt_type == "constrained":
        px = px + py[:, 1:, :]
    return px, py


def _apply_delay_penalty(
    px: Tensor, boundary: Tensor | None, rnnt_type: str, delay_penalty: float
) -> Tensor:
    if delay_penalty <= 0.0:
        return px
    B, S, T1 = px.shape
    T = T1 - 1 if rnnt_type == "regular" else T1
    if boundary is None:
        offset = torch.full((B,), (T - 1) / 2, dtype=px.dtype, device=px.device)
    else:
        offset = (boundary[:, 3].to(px.dtype) - 1) / 2
    t = torch.arange(T1, device=px.device, dtype=px.dtype)
    penalty = (offset.view(B, 1, 1) - t.view(1, 1, T1)) * delay_penalty
    return px + penalty


def _reduce(scores: Tensor, reduction: str | None) -> Tensor:
    if reduction == "none":
        return -scores
    if reduction == "mean":
        return -scores.mean()
    return -scores.sum()


def _run(
    px: Tensor,
    py: Tensor,
    boundary: Tensor | None,
    reduction: str | None,
    return_grad: bool,
) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
    out = mutual_information_recursion_builtin(px, py, boundary, return_grad=return_grad)
    if return_grad:
        scores, grads = out
        return _reduce(scores, reduction), grads
    return _reduce(out, reduction)


# --------------------------------------------------------------------------- simple
def _check_lm_am(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None,
    rnnt_type: str,
) -> None:
    _check_float("lm", lm, 3, "(B, S+1, C)")
    _check_float("am", am, 3, "(B, T, C)")
    B, T, C = am.shape
    if lm.shape[0] != B or lm.shape[2] != C:
        raise ValueError(f"lm must have shape (B={B}, S+1, C={C}), got {tuple(lm.shape)}")
    if lm.dtype != am.dtype:
        raise TypeError(f"lm dtype {lm.dtype} differs from am dtype {am.dtype}")
    S = lm.shape[1] - 1
    _check_common(symbols, termination_symbol, C, B, T, boundary, rnnt_type, "none")
    if symbols.shape[1] != S:
        raise ValueError(
            f"symbols must have shape (B, S={S}) for lm {tuple(lm.shape)}, "
            f"got {tuple(symbols.shape)}"
        )


def _simple_raw(lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int):
    """px (B, S, T), py (B, S+1, T) of the simple joint, inputs already validated."""
    B, T, C = am.shape
    S = lm.shape[1] - 1
    lm_max = lm.max(dim=2, keepdim=True)[0]  # (B, S+1, 1)
    am_max = am.max(dim=2, keepdim=True)[0]  # (B, T, 1)
    lm_e = (lm - lm_max).exp()
    am_e = (am - am_max).exp()
    norm = torch.matmul(lm_e, am_e.transpose(1, 2)) + torch.finfo(am.dtype).tiny
    norm = norm.log() + lm_max + am_max.transpose(1, 2)  # (B, S+1, T)
    # px[b, s, t] = am[b, t, symbols[b, s]] + lm[b, s, symbols[b, s]] - norm[b, s, t]
    px_am = torch.gather(am.transpose(1, 2), 1, symbols.unsqueeze(2).expand(B, S, T))  # (B,S,T)
    px_lm = torch.gather(lm[:, :S], 2, symbols.unsqueeze(2))  # (B, S, 1)
    px = px_am + px_lm - norm[:, :S]
    py = am[:, :, termination_symbol].unsqueeze(1) + lm[:, :, termination_symbol].unsqueeze(2)
    py = py - norm  # (B, S+1, T)
    return px, py


def get_rnnt_logprobs(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    rnnt_type: str = "regular",
    boundary: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """px, py of the "simple" joint logits[b,t,s,c] = am[b,t,c] + lm[b,s,c].

    Argument order as k2's ``get_rnnt_logprobs``: ``rnnt_type`` comes before ``boundary`` here
    (the other ``get_rnnt_logprobs_*`` functions take ``boundary`` first, also as in k2).
    lm (B, S+1, C), am (B, T, C), symbols (B, S) integer; returns px (B, S, T+1) regular or
    (B, S, T) modified/constrained and py (B, S+1, T).

    Never materialises (B, T, S+1, C): the normaliser is
    ``log(exp(lm - lm_max) @ exp(am - am_max)^T) + lm_max + am_max``, (B, S+1, T).
    """
    _check_lm_am(lm, am, symbols, termination_symbol, boundary, rnnt_type)
    px, py = _simple_raw(lm, am, _long(symbols), termination_symbol)
    return _finish_px_py(px, py, boundary, rnnt_type)


def rnnt_loss_simple(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
    return_grad: bool = False,
) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
    """RNN-T loss of the simple joint am + lm; with ``return_grad`` also (px_grad, py_grad)."""
    _check_reduction(reduction)
    px, py = get_rnnt_logprobs(
        lm, am, symbols, termination_symbol, rnnt_type=rnnt_type, boundary=boundary
    )
    px = _apply_delay_penalty(px, boundary, rnnt_type, delay_penalty)
    return _run(px, py, boundary, reduction, return_grad)


def get_rnnt_logprobs_smoothed(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    lm_only_scale: float = 0.1,
    am_only_scale: float = 0.1,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
) -> tuple[Tensor, Tensor]:
    """px, py interpolating the simple joint with lm-only and am-only (+ unigram) versions."""
    _check_lm_am(lm, am, symbols, termination_symbol, boundary, rnnt_type)
    symbols = _long(symbols)
    px, py = _simple_raw(lm, am, symbols, termination_symbol)
    B, T, C = am.shape
    S = lm.shape[1] - 1
    # lm-only: lm normalised over C.
    lm_logp = lm.log_softmax(dim=2)  # (B, S+1, C)
    px_lm = torch.gather(lm_logp[:, :S], 2, symbols.unsqueeze(2)).expand(B, S, T)
    py_lm = lm_logp[:, :, termination_symbol].unsqueeze(2).expand(B, S + 1, T)
    # am-only: am plus the log unigram of lm's softmax averaged over (B, S+1), normalised.
    unigram = lm.softmax(dim=2).mean(dim=(0, 1))  # (C,)
    am_u = (am + (unigram + torch.finfo(am.dtype).tiny).log()).log_softmax(dim=2)  # (B, T, C)
    px_am = torch.gather(am_u.transpose(1, 2), 1, symbols.unsqueeze(2).expand(B, S, T))
    py_am = am_u[:, :, termination_symbol].unsqueeze(1).expand(B, S + 1, T)
    lm_s = lm_only_scale if lm_only_scale != 0.0 else 1e-20
    am_s = am_only_scale if am_only_scale != 0.0 else 1e-20
    joint_s = 1.0 - lm_s - am_s
    px = joint_s * px + lm_s * px_lm + am_s * px_am
    py = joint_s * py + lm_s * py_lm + am_s * py_am
    return _finish_px_py(px, py, boundary, rnnt_type)


def rnnt_loss_smoothed(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    lm_only_scale: float = 0.1,
    am_only_scale: float = 0.1,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
    return_grad: bool = False,
) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
    """Smoothed simple loss (icefall: lm_only_scale=0.25, am_only_scale=0.0)."""
    _check_reduction(reduction)
    px, py = get_rnnt_logprobs_smoothed(
        lm, am, symbols, termination_symbol, lm_only_scale, am_only_scale, boundary, rnnt_type
    )
    px = _apply_delay_penalty(px, boundary, rnnt_type, delay_penalty)
    return _run(px, py, boundary, reduction, return_grad)


# --------------------------------------------------------------------------- full joint
def get_rnnt_logprobs_joint(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
) -> tuple[Tensor, Tensor]:
    """px, py from full joint logits (B, T, S+1, C) (before log-softmax)."""
    _check_float("logits", logits, 4, "(B, T, S+1, C)")
    B, T, S1, C = logits.shape
    _check_common(symbols, termination_symbol, C, B, T, boundary, rnnt_type, "none")
    symbols = _long(symbols)
    S = symbols.shape[1]
    if S1 != S + 1:
        raise ValueError(
            f"logits must have shape (B, T, S+1={S + 1}, C), got {tuple(logits.shape)}"
        )
    norm = torch.logsumexp(logits, dim=3)  # (B, T, S+1)
    px = torch.gather(logits[:, :, :S], 3, symbols.view(B, 1, S, 1).expand(B, T, S, 1))
    px = (px.squeeze(3) - norm[:, :, :S]).transpose(1, 2)  # (B, S, T)
    py = (logits[:, :, :, termination_symbol] - norm).transpose(1, 2)  # (B, S+1, T)
    return _finish_px_py(px, py, boundary, rnnt_type)


def rnnt_loss(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
) -> Tensor:
    """Full RNN-T loss on joint logits (B, T, S+1, C)."""
    _check_float("logits", logits, 4, "(B, T, S+1, C)")
    _check_reduction(reduction)
    px, py = get_rnnt_logprobs_joint(logits, symbols, termination_symbol, boundary, rnnt_type)
    px = _apply_delay_penalty(px, boundary, rnnt_type, delay_penalty)
    return _run(px, py, boundary, reduction, False)


# --------------------------------------------------------------------------- pruned joint
def get_rnnt_logprobs_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
) -> tuple[Tensor, Tensor]:
    """px, py from pruned logits (B, T, R, C); -inf outside each frame's window of symbols."""
    _check_float("logits", logits, 4, "(B, T, s_range, C)")
    B, T, R, C = logits.shape
    _check_common(symbols, termination_symbol, C, B, T, boundary, rnnt_type, "none")
    symbols = _long(symbols)
    S = symbols.shape[1]
    if not isinstance(ranges, Tensor) or tuple(ranges.shape) != (B, T, R):
        shape = tuple(ranges.shape) if isinstance(ranges, Tensor) else type(ranges).__name__
        raise ValueError(f"ranges must have shape (B, T, s_range) = ({B}, {T}, {R}), got {shape}")
    if ranges.dtype != torch.int64:
        raise TypeError(f"ranges must be int64, got dtype {ranges.dtype}")
    if ranges.numel():
        lo, hi = torch.stack(torch.aminmax(ranges)).tolist()
        if lo < 0 or hi > S:
            raise ValueError(f"ranges values must lie in [0, S={S}], got [{lo}, {hi}]")
    norm = torch.logsumexp(logits, dim=3)  # (B, T, R)
    sym_ext = torch.cat([symbols, symbols.new_full((B, 1), termination_symbol)], dim=1)
    pruned_sym = torch.gather(sym_ext.unsqueeze(1).expand(B, T, S + 1), 2, ranges)  # (B, T, R)
    px_r = torch.gather(logits, 3, pruned_sym.unsqueeze(3)).squeeze(3) - norm
    py_r = logits[:, :, :, termination_symbol] - norm
    px_full = logits.new_full((B, T, S + 1), NEG_INF).scatter(2, ranges, px_r)
    py_full = logits.new_full((B, T, S + 1), NEG_INF).scatter(2, ranges, py_r)
    px = px_full[:, :, :S].transpose(1, 2)  # (B, S, T)
    py = py_full.transpose(1, 2)  # (B, S+1, T)
    return _finish_px_py(px, py, boundary, rnnt_type)


def rnnt_loss_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
) -> Tensor:
    """RNN-T loss on the pruned lattice: logits (B, T, s_range, C), ranges (B, T, s_range)."""
    _check_float("logits", logits, 4, "(B, T, s_range, C)")
    _check_reduction(reduction)
    px, py = get_rnnt_logprobs_pruned(
        logits, symbols, ranges, termination_symbol, boundary, rnnt_type
    )
    px = _apply_delay_penalty(px, boundary, rnnt_type, delay_penalty)
    return _run(px, py, boundary, reduction, False)
