"""Public pruned RNN-T functions: k2's names and arguments, dispatched to k2 or the builtin.

Every function forwards to ``k2.<same name>`` (or ``fast_rnnt.<same name>``) when the selected
backend is that package (:mod:`gmot.transducer.backend`) and to the builtin implementation
(``losses.py``, ``pruning.py``, ``recursion.py``) otherwise. See ``losses.py`` for shapes and
meanings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from torch import Tensor

from gmot.transducer import losses as _L
from gmot.transducer import pruning as _P
from gmot.transducer.backend import external_rnnt_module
from gmot.transducer.recursion import (
    joint_mutual_information_recursion_builtin,
    mutual_information_recursion_builtin,
)


def _external(x: Tensor) -> ModuleType | None:
    """The external package (k2 or fast_rnnt) that runs a call whose inputs are like ``x``."""
    return external_rnnt_module(x.device)


def _external_fn(x: Tensor, name: str) -> Callable[..., Any] | None:
    """``<package>.<name>`` of the external backend for inputs like ``x``; None for builtin or
    when that package lacks the function (older releases: the builtin runs instead)."""
    ext = _external(x)
    return None if ext is None else getattr(ext, name, None)


def joint_mutual_information_recursion(
    px: Sequence[Tensor], py: Sequence[Tensor], boundary: Tensor | None = None
) -> Tensor:
    """(N, B) per-term breakdown of the recursion on ``sum(px)``, ``sum(py)``, as k2's.

    px: N tensors (B, S, T+1) regular or (B, S, T) modified; py: N tensors (B, S+1, T);
    boundary (B, 4) int64. The sum over dim 0 is the score of the summed lattice; see
    :func:`gmot.transducer.recursion.joint_mutual_information_recursion_builtin`.
    """
    fn = _external_fn(px[0], "joint_mutual_information_recursion")
    if fn is not None:
        return fn(px, py, boundary=boundary)
    return joint_mutual_information_recursion_builtin(px, py, boundary)


def get_rnnt_logprobs(
    lm: Tensor,
    am: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    rnnt_type: str = "regular",
    boundary: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(px, py) of the simple joint am + lm; k2's argument order (``rnnt_type`` before
    ``boundary``). lm (B, S+1, C), am (B, T, C), symbols (B, S) -> px (B, S, T+1) regular or
    (B, S, T), py (B, S+1, T)."""
    kw = dict(rnnt_type=rnnt_type, boundary=boundary)
    fn = _external_fn(lm, "get_rnnt_logprobs")
    if fn is not None:
        return fn(lm=lm, am=am, symbols=symbols, termination_symbol=termination_symbol, **kw)
    return _L.get_rnnt_logprobs(lm, am, symbols, termination_symbol, **kw)


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
    """(px, py) of the smoothed simple joint (shapes as :func:`get_rnnt_logprobs`)."""
    kw = dict(
        lm_only_scale=lm_only_scale,
        am_only_scale=am_only_scale,
        boundary=boundary,
        rnnt_type=rnnt_type,
    )
    fn = _external_fn(lm, "get_rnnt_logprobs_smoothed")
    if fn is not None:
        return fn(lm=lm, am=am, symbols=symbols, termination_symbol=termination_symbol, **kw)
    return _L.get_rnnt_logprobs_smoothed(lm, am, symbols, termination_symbol, **kw)


def get_rnnt_logprobs_joint(
    logits: Tensor,
    symbols: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
) -> tuple[Tensor, Tensor]:
    """(px, py) from full joint logits (B, T, S+1, C) (before log-softmax)."""
    kw = dict(boundary=boundary, rnnt_type=rnnt_type)
    fn = _external_fn(logits, "get_rnnt_logprobs_joint")
    if fn is not None:
        return fn(logits=logits, symbols=symbols, termination_symbol=termination_symbol, **kw)
    return _L.get_rnnt_logprobs_joint(logits, symbols, termination_symbol, **kw)


def get_rnnt_logprobs_pruned(
    logits: Tensor,
    symbols: Tensor,
    ranges: Tensor,
    termination_symbol: int,
    boundary: Tensor | None = None,
    rnnt_type: str = "regular",
) -> tuple[Tensor, Tensor]:
    """(px, py) from pruned logits (B, T, s_range, C) and ranges (B, T, s_range)."""
    kw = dict(boundary=boundary, rnnt_type=rnnt_type)
    fn = _external_fn(logits, "get_rnnt_logprobs_pruned")
    if fn is not None:
        return fn(
            logits=logits,
            symbols=symbols,
            ranges=ranges,
            termination_symbol=termination_symbol,
            **kw,
        )
    return _L.get_rnnt_logprobs_pruned(logits, symbols, ranges, termination_symbol, **kw)


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
    """ranges (B, T, s_range) int64 from the simple loss's occupation grads.

    ``s_range``: an integer >= 1 (int, numpy integer or one-element integer tensor); regular
    RNN-T raises it to its minimum with a warning, as k2 does.
    """
    s_range = _P.as_s_range(s_range)
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
