"""Public pruned RNN-T functions: k2's names and arguments, dispatched to k2 or the builtin.

Every function forwards to ``k2.<same name>`` (or ``fast_rnnt.<same name>``) when the selected
backend is that package (:mod:`gmot.transducer.backend`) and to the builtin implementation
(``losses.py``, ``pruning.py``, ``recursion.py``) otherwise. See ``losses.py`` for shapes and
meanings.
"""

from __future__ import annotations

from types import ModuleType

from torch import Tensor

from gmot.transducer import losses as _L
from gmot.transducer import pruning as _P
from gmot.transducer.backend import external_rnnt_module
from gmot.transducer.recursion import mutual_information_recursion_builtin


def _external(x: Tensor) -> ModuleType | None:
    """The external package (k2 or fast_rnnt) that runs a call whose inputs are like ``x``."""
    return external_rnnt_module(x.device)


def mutual_information_recursion(
    px: Tensor, py: Tensor, boundary: Tensor | None = None, return_grad: bool = False
) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
    """scores (B,) of the lattice recursion; with ``return_grad`` also (px_grad, py_grad).

    px (B, S, T+1) regular or (B, S, T) modified; py (B, S+1, T); boundary (B, 4) int64.
    """
    ext = _external(px)
    if ext is not None:
        return ext.mutual_information_recursion(px, py, boundary=boundary, return_grad=return_grad)
    return mutual_information_recursion_builtin(px, py, boundary, return_grad)


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
    """Simple (am + lm) RNN-T loss; lm (B, S+1, C), am (B, T, C), symbols (B, S)."""
    kw = dict(
        boundary=boundary,
        rnnt_type=rnnt_type,
        delay_penalty=delay_penalty,
        reduction=reduction,
        return_grad=return_grad,
    )
    ext = _external(lm)
    if ext is not None:
        return ext.rnnt_loss_simple(
            lm=lm, am=am, symbols=symbols, termination_symbol=termination_symbol, **kw
        )
    return _L.rnnt_loss_simple(lm, am, symbols, termination_symbol, **kw)


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
    """Smoothed simple loss (icefall uses lm_only_scale=0.25, am_only_scale=0.0)."""
    kw = dict(
        lm_only_scale=lm_only_scale,
        am_only_scale=am_only_scale,
        boundary=boundary,
        rnnt_type=rnnt_type,
        delay_penalty=delay_penalty,
        reduction=reduction,
        return_grad=return_grad,
    )
    ext = _external(lm)
    if ext is not None:
        return ext.rnnt_loss_smoothed(
            lm=lm, am=am, symbols=symbols, termination_symbol=termination_symbol, **kw
        )
    return _L.rnnt_loss_smoothed(lm, am, symbols, termination_symbol, **kw)


def get_rnnt_prune_ranges(
    px_grad: Tensor, py_grad: Tensor, boundary: Tensor, s_range: int
) -> Tensor:
    """ranges (B, T, s_range) int64 from the simple loss's occupation grads."""
    if not isinstance(s_range, int) or isinstance(s_range, bool) or s_range < 2:
        raise ValueError(f"s_range must be an int >= 2, got {s_range!r}")
    ext = _external(px_grad)
    if ext is not None:
        return ext.get_rnnt_prune_ranges(
            px_grad=px_grad, py_grad=py_grad, boundary=boundary, s_range=s_range
        )
    return _P.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)


def do_rnnt_pruning(am: Tensor, lm: Tensor, ranges: Tensor) -> tuple[Tensor, Tensor]:
    """(am_pruned, lm_pruned), each (B, T, s_range, D), from am (B, T, D), lm (B, S+1, D)."""
    ext = _external(am)
    if ext is not None:
        return ext.do_rnnt_pruning(am=am, lm=lm, ranges=ranges)
    return _P.do_rnnt_pruning(am, lm, ranges)


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
    """Pruned RNN-T loss; logits (B, T, s_range, C), ranges (B, T, s_range)."""
    kw = dict(
        boundary=boundary, rnnt_type=rnnt_type, delay_penalty=delay_penalty, reduction=reduction
    )
    ext = _external(logits)
    if ext is not None:
        return ext.rnnt_loss_pruned(
            logits=logits,
            symbols=symbols,
            ranges=ranges,
            termination_symbol=termination_symbol,
            **kw,
        )
    return _L.rnnt_loss_pruned(logits, symbols, ranges, termination_symbol, **kw)


def rnnt_loss(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
    delay_penalty: float = 0.0,
    reduction: str | None = "mean",
) -> Tensor:
    """Full RNN-T loss on joint logits (B, T, S+1, C) (before log-softmax)."""
    kw = dict(
        boundary=boundary, rnnt_type=rnnt_type, delay_penalty=delay_penalty, reduction=reduction
    )
    ext = _external(logits)
    if ext is not None:
        return ext.rnnt_loss(
            logits=logits, symbols=symbols, termination_symbol=termination_symbol, **kw
        )
    return _L.rnnt_loss(logits, symbols, termination_symbol, **kw)
