"""Prune ranges for the pruned RNN-T loss (arXiv 2206.13236, section 3.2), k2 semantics.

``get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)`` -> ranges (B, T, s_range) int64:
for each frame t, the window ``[s_begin, s_begin + s_range)`` of symbol positions that holds
the most occupation mass (py_grad summed over the window minus the px_grad entering it from
below). Frames t >= t_end - 1 are pinned to ``max(S_b - s_range + 1, 0)`` so the last frame
reaches the last symbol. Then s_begin is made non-decreasing, starts at 0 and grows by less than
s_range per frame (less than 2 for modified / constrained RNN-T), so no symbol is skipped.
For regular RNN-T s_range is raised to at least ``max_b((S_b - 1) // T_b + 2)``; an s_range
above S becomes S + 1.

``do_rnnt_pruning(am (B, T, D), lm (B, S+1, D), ranges)`` -> (am_pruned, lm_pruned), both
(B, T, s_range, D): am broadcast over the window, lm gathered at the window's positions.
"""

from __future__ import annotations

import operator
import warnings

import torch
from torch import Tensor


def _adjust_lower_bound(s_begin: Tensor, max_step: int) -> Tensor:
    """Make s_begin (B, T) non-decreasing, 0 at t=0 and s_begin[t+1] - s_begin[t] <= max_step.

    Steps: reverse running minimum (monotone), clamp to ``t * max_step`` (start at 0, bounded
    growth), then raise earlier frames by a reverse running maximum of
    ``s_begin[t] - t * max_step`` (no step larger than max_step). The last step keeps the first two
    properties (shown in the docstring of the test).
    """
    B, T = s_begin.shape
    s_begin = s_begin.clamp(min=0)
    s_begin = torch.flip(torch.cummin(torch.flip(s_begin, [1]), dim=1)[0], [1])
    steps = torch.arange(T, device=s_begin.device) * max_step
    s_begin = torch.minimum(s_begin, steps.unsqueeze(0))
    u = s_begin - steps
    u = torch.flip(torch.cummax(torch.flip(u, [1]), dim=1)[0], [1])
    return u + steps


def as_s_range(s_range: object) -> int:
    """``s_range`` as a Python int: accepts int, numpy integers and one-element integer tensors.

    Raises TypeError for bools, floats and anything else without an integer value, ValueError
    for values below 1 (no window at all).
    """
    if isinstance(s_range, bool) or (isinstance(s_range, Tensor) and s_range.dtype == torch.bool):
        raise TypeError(f"s_range must be an integer, got {s_range!r}")
    try:
        value = operator.index(s_range)
    except TypeError:
        raise TypeError(
            f"s_range must be an integer (int, numpy integer or integer tensor of one element), "
            f"got {s_range!r}"
        ) from None
    if value < 1:
        raise ValueError(f"s_range must be >= 1, got {value}")
    return value


def get_rnnt_prune_ranges(
    px_grad: Tensor, py_grad: Tensor, boundary: Tensor, s_range: int
) -> Tensor:
    """Window of symbol positions per frame from the simple loss's occupation grads.

    Args:
      px_grad: (B, S, T+1) regular or (B, S, T) modified/constrained.
      py_grad: (B, S+1, T).
      boundary: (B, 4) int64 ``[s_begin, t_begin, s_end, t_end]``.
      s_range: window size, an integer >= 1 (see :func:`as_s_range`); regular RNN-T raises it to
        its minimum (at least 2) with a warning.
    Returns:
      ranges (B, T, s_range') int64 with s_range' the adjusted window size.
    """
    s_range = as_s_range(s_range)
    if px_grad.ndim != 3 or py_grad.ndim != 3:
        raise ValueError(
            f"px_grad / py_grad must be 3-D, got {tuple(px_grad.shape)} / {tuple(py_grad.shape)}"
        )
    B, S, T1 = px_grad.shape
    T = py_grad.shape[2]
    if tuple(py_grad.shape) != (B, S + 1, T) or T1 not in (T, T + 1):
        raise ValueError(
            f"py_grad must be (B, S+1, T) and px_grad (B, S, T+1) or (B, S, T); got px_grad "
            f"{tuple(px_grad.shape)}, py_grad {tuple(py_grad.shape)}"
        )
    if not isinstance(boundary, Tensor) or tuple(boundary.shape) != (B, 4):
        shape = tuple(boundary.shape) if isinstance(boundary, Tensor) else boundary
        raise ValueError(f"boundary must have shape (B, 4) = ({B}, 4), got {shape}")
    if boundary.dtype != torch.int64:
        raise TypeError(f"boundary must be int64, got dtype {boundary.dtype}")
    regular = T1 == T + 1
    boundary = boundary.to(px_grad.device)
    s_end = boundary[:, 2]
    t_end = boundary[:, 3]
    if regular:
        need = 2
        if B > 0:
            need = int(((s_end - 1).clamp(min=0) // t_end.clamp(min=1) + 2).max())
        if s_range < need:
            warnings.warn(
                f"s_range={s_range} too small for {int(s_end.max())} symbols; using {need}",
                stacklevel=2,
            )
            s_range = need
    if s_range > S:
        s_range = S + 1
    S1 = S + 1
    nwin = S1 - s_range + 1
    # Mass of each window: cumulative sums over s of py_grad.
    csum = torch.cat([py_grad.new_zeros(B, 1, T), py_grad.cumsum(dim=1)], dim=1)  # (B, S+2, T)
    win = csum[:, s_range : s_range + nwin] - csum[:, :nwin]  # (B, nwin, T)
    px_in = torch.cat([px_grad.new_zeros(B, 1, T1), px_grad], dim=1)[:, :nwin, :T]
    s_begin = torch.argmax(win - px_in, dim=1)  # (B, T)
    t = torch.arange(T, device=px_grad.device).unsqueeze(0)
    pinned = (s_end - s_range + 1).clamp(min=0).unsqueeze(1).expand(B, T)
    s_begin = torch.where(t < (t_end - 1).unsqueeze(1), s_begin, pinned)
    s_begin = _adjust_lower_bound(s_begin, s_range - 1 if regular else 1)
    return s_begin.unsqueeze(2) + torch.arange(s_range, device=px_grad.device)


def do_rnnt_pruning(am: Tensor, lm: Tensor, ranges: Tensor) -> tuple[Tensor, Tensor]:
    """Prune the joiner inputs: am (B, T, D), lm (B, S+1, D), ranges (B, T, R).

    Returns (am_pruned, lm_pruned), each (B, T, R, D); am_pruned is a broadcast view.
    """
    if am.ndim != 3 or lm.ndim != 3:
        raise ValueError(
            f"am must be (B, T, D) and lm (B, S+1, D); got {tuple(am.shape)}, {tuple(lm.shape)}"
        )
    B, T, D = am.shape
    if lm.shape[0] != B or lm.shape[2] != D:
        raise ValueError(f"lm must have shape (B={B}, S+1, D={D}), got {tuple(lm.shape)}")
    if ranges.ndim != 3 or ranges.shape[:2] != (B, T):
        raise ValueError(
            f"ranges must have shape (B={B}, T={T}, s_range), got {tuple(ranges.shape)}"
        )
    if ranges.dtype != torch.int64:
        raise TypeError(f"ranges must be int64, got dtype {ranges.dtype}")
    R = ranges.shape[2]
    am_pruned = am.unsqueeze(2).expand(B, T, R, D)
    b = torch.arange(B, device=lm.device).view(B, 1, 1)
    lm_pruned = lm[b, ranges]  # (B, T, R, D)
    return am_pruned, lm_pruned
