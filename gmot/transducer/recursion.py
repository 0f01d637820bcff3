"""The mutual-information (RNN-T lattice) recursion with an explicit backward.

Lattice p[b, s, t], shape (B, S+1, T+1), log-prob of having emitted s symbols after t frames::

    p[b, s_begin, t_begin] = 0
    regular  (px (B, S, T+1)): p[s,t] = logaddexp(p[s-1,t] + px[s-1,t],     p[s,t-1] + py[s,t-1])
    modified (px (B, S, T)):   p[s,t] = logaddexp(p[s-1,t-1] + px[s-1,t-1], p[s,t-1] + py[s,t-1])
    scores[b] = p[b, s_end, t_end]

``boundary`` (B, 4) int64 rows ``[s_begin, t_begin, s_end, t_end]`` (default ``[0, 0, S, T]``).

Implementation. Both variants are written as one recurrence over "diagonals" d of length S+1
(index s): for regular RNN-T diagonal d holds the cells with s + t = d (anti-diagonals), for
modified RNN-T it is the column t = d. With X[b, d, s] / Y[b, d, s] the px / py arc leaving cell
(s, t(d, s)), every diagonal depends only on the previous one::

    A[d, s] = logaddexp(A[d-1, s-1] + X[d-1, s-1], A[d-1, s] + Y[d-1, s])
    Bt[d, s] = logaddexp(X[d, s] + Bt[d+1, s+1], Y[d, s] + Bt[d+1, s])   (backward log-probs)

so the loop runs over the S+T+1 (or T+1) diagonals with whole-diagonal tensor ops. The
occupation grads are ``exp(alpha + px + beta_next - total)`` computed in one vectorised pass,
never by autograd through the loop. Arcs outside the boundary box are masked to -inf first.
On CUDA the two sweeps run as Triton kernels (see ``triton_kernels.py``) when triton imports.

Elsewhere (the CPU) a row scan does fewer, larger steps: S+1 rows instead of S+T+1 diagonals
(for small B * (S+1), where the diagonal loop is all per-step overhead; see
``ROW_SCAN_MAX_BATCH_ROWS``).
Within row s only py arcs move along t, so with the prefix sums ``C[s, t] = sum_{k<t} py[s, k]``
and ``e[t]`` the log-mass entering row s at frame t (from row s-1 through px, or the start)::

    p[s, t] = logsumexp_{t' <= t} (e[t'] + C[s, t] - C[s, t'])
            = C[s, t] + logcumsumexp_t(e - C[s])[t]

in float64 whatever the input dtype. The backward log-probs are the same scan on the lattice
reversed in s and t (``beta = alpha(flip(px), flip(py)).flip()``). Subtracting prefix sums is
exact only while they stay small, so when py has a non-finite arc inside the box or
``|C| > ROW_SCAN_MAX_PREFIX`` the diagonal loop above runs instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

NEG_INF = float("-inf")
_FLOAT_TYPES = (torch.float32, torch.float64)
# Largest |prefix sum of py| (nats) the row scan accepts: float64 keeps C[t] - C[t'] to about
# 1e7 * 2.2e-16 = 2e-9 nats. Real log-probs stay far below (|log p| * T ~ 1e4 to 1e5).
ROW_SCAN_MAX_PREFIX = 1e7
# On the CPU the row scan runs when B * (S+1) is at most this. Each step of the diagonal loop
# works on B * (S+1) cells; with enough of them its S+T+1 steps cost less than the row scan's
# scalar logcumsumexp. Crossover measured on the 2-core CPU machine (T = 58-250, S = 11-60,
# regular and modified): 750-1000 with 1 thread, about 600 with 2. Below it the row scan is up
# to 7x faster (B=1), 1.5-2x at B * (S+1) = 250-500.
ROW_SCAN_MAX_BATCH_ROWS = 512


def check_recursion_inputs(px: Tensor, py: Tensor, boundary: Tensor | None) -> tuple[bool, Tensor]:
    """Validate shapes/dtypes; return (is_modified, boundary (B, 4) int64 on px's device)."""
    if not isinstance(px, Tensor) or px.ndim != 3:
        raise ValueError(f"px must be a 3-D tensor (B, S, T+1) or (B, S, T), got {_desc(px)}")
    if not isinstance(py, Tensor) or py.ndim != 3:
        raise ValueError(f"py must be a 3-D tensor (B, S+1, T), got {_desc(py)}")
    if px.dtype not in _FLOAT_TYPES:
        raise TypeError(f"px must be float32 or float64, got dtype {px.dtype}")
    if py.dtype != px.dtype:
        raise TypeError(f"py dtype {py.dtype} differs from px dtype {px.dtype}")
    if py.device != px.device:
        raise ValueError(f"py is on {py.device} but px is on {px.device}")
    B, S, T1 = px.shape
    if py.shape[0] != B or py.shape[1] != S + 1:
        raise ValueError(
            f"py must have shape (B, S+1, T) = ({B}, {S + 1}, T), got {tuple(py.shape)}"
        )
    T = py.shape[2]
    if T1 not in (T, T + 1):
        raise ValueError(
            f"px last dim must be T+1={T + 1} (regular) or T={T} (modified), got px shape "
            f"{tuple(px.shape)} with py shape {tuple(py.shape)}"
        )
    modified = T1 == T
    if boundary is None:
        boundary = torch.tensor([[0, 0, S, T]], dtype=torch.int64, device=px.device).expand(B, 4)
    else:
        if not isinstance(boundary, Tensor) or boundary.shape != (B, 4):
            raise ValueError(f"boundary must have shape (B, 4) = ({B}, 4), got {_desc(boundary)}")
        if boundary.dtype != torch.int64:
            raise TypeError(f"boundary must be int64, got dtype {boundary.dtype}")
        boundary = boundary.to(px.device)
        bl = boundary.tolist()
        for b, (s0, t0, s1, t1) in enumerate(bl):
            if not (0 <= s0 <= s1 <= S and 0 <= t0 <= t1 <= T):
                raise ValueError(
                    f"boundary[{b}] = {[s0, t0, s1, t1]} must satisfy 0 <= s_begin <= s_end <= "
                    f"S={S} and 0 <= t_begin <= t_end <= T={T}"
                )
    return modified, boundary


def _desc(x: object) -> str:
    if isinstance(x, Tensor):
        return f"tensor of shape {tuple(x.shape)} dtype {x.dtype}"
    return f"{type(x).__name__}"


def _diag_index(S: int, T: int, modified: bool, device: torch.device) -> tuple[Tensor, int]:
    """t index of (diagonal d, position s), shape (D, S+1), and D (number of diagonals)."""
    s = torch.arange(S + 1, device=device)
    if modified:
        D = T + 1
        t = torch.arange(D, device=device).unsqueeze(1).expand(D, S + 1)
    else:
        D = S + T + 1
        t = torch.arange(D, device=device).unsqueeze(1) - s.unsqueeze(0)
    return t, D


def _arcs_in_box(
    sg: Tensor, tg: Tensor, bounds: tuple[Tensor, Tensor, Tensor, Tensor], modified: bool
) -> tuple[Tensor, Tensor]:
    """(x_ok, y_ok): which px / py arcs leaving cell (sg, tg) stay inside the boundary box.

    ``sg``, ``tg`` are symbol / frame indices and ``bounds`` the columns
    ``(s_begin, t_begin, s_end, t_end)``, all broadcastable to the result's shape.
    """
    s0, t0, s1, t1 = bounds
    # py arc leaves (s, t) -> (s, t+1): needs s_begin <= s <= s_end, t_begin <= t < t_end.
    y_ok = (sg >= s0) & (sg <= s1) & (tg >= t0) & (tg < t1)
    # px arc leaves (s, t) -> (s+1, t) (regular, t <= t_end) or (s+1, t+1) (modified, t < t_end).
    x_ok = (sg >= s0) & (sg < s1) & (tg >= t0) & ((tg < t1) if modified else (tg <= t1))
    return x_ok, y_ok


def skew_inputs(
    px: Tensor, py: Tensor, boundary: Tensor, modified: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Arcs re-laid per diagonal: X, Y (B, D, S+1) with -inf outside the boundary box.

    Also returns ``tgrid`` (D, S+1): the frame index of each (diagonal, position).
    """
    B, S, _ = px.shape
    T = py.shape[2]
    tgrid, D = _diag_index(S, T, modified, px.device)
    sgrid = torch.arange(S + 1, device=px.device).unsqueeze(0).expand(D, S + 1)
    bounds = tuple(boundary[:, i].view(B, 1, 1) for i in range(4))
    x_ok, y_ok = _arcs_in_box(sgrid.unsqueeze(0), tgrid.unsqueeze(0), bounds, modified)
    tx = tgrid.clamp(0, px.shape[2] - 1)
    ty = tgrid.clamp(0, T - 1) if T > 0 else tgrid.clamp(0, 0)
    s_px = sgrid.clamp(max=max(S - 1, 0))
    if S > 0:
        X = px[:, s_px, tx]
    else:
        X = px.new_full((B, D, S + 1), NEG_INF)
    if T > 0:
        Y = py[:, sgrid, ty]
    else:
        Y = py.new_full((B, D, S + 1), NEG_INF)
    X = X.masked_fill(~x_ok, NEG_INF)
    Y = Y.masked_fill(~y_ok, NEG_INF)
    return X, Y, tgrid


def _endpoints(boundary: Tensor, modified: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(d_start, s_start, d_end, s_end), each (B,) int64."""
    s0, t0, s1, t1 = boundary.unbind(1)
    if modified:
        return t0, s0, t1, s1
    return s0 + t0, s0, s1 + t1, s1


def _alpha_torch(X: Tensor, Y: Tensor, d_start: Tensor, s_start: Tensor) -> Tensor:
    B, D, S1 = X.shape
    A = X.new_full((B, D, S1), NEG_INF)
    starts = d_start.tolist()
    start_diags = sorted(set(starts))
    start_onehot = torch.nn.functional.one_hot(s_start, S1).bool()  # (B, S1)

    def inject(d: int) -> None:
        sel = (d_start == d).unsqueeze(1) & start_onehot
        A[:, d] = torch.where(sel, torch.zeros((), dtype=A.dtype, device=A.device), A[:, d])

    if 0 in start_diags:
        inject(0)
    for d in range(1, D):
        prev = A[:, d - 1]
        stay = prev + Y[:, d - 1]
        move = prev[:, :-1] + X[:, d - 1, :-1]
        cur = A[:, d]
        cur[:, 0] = stay[:, 0]
        cur[:, 1:] = torch.logaddexp(move, stay[:, 1:])
        if d in start_diags:
            inject(d)
    return A


def _beta_torch(X: Tensor, Y: Tensor, d_end: Tensor, s_end: Tensor) -> Tensor:
    B, D, S1 = X.shape
    Bt = X.new_full((B, D, S1), NEG_INF)
    end_diags = set(d_end.tolist())
    end_onehot = torch.nn.functional.one_hot(s_end, S1).bool()

    def inject(d: int) -> None:
        sel = (d_end == d).unsqueeze(1) & end_onehot
        Bt[:, d] = torch.where(sel, torch.zeros((), dtype=Bt.dtype, device=Bt.device), Bt[:, d])

    if D - 1 in end_diags:
        inject(D - 1)
    for d in range(D - 2, -1, -1):
        nxt = Bt[:, d + 1]
        cur = Bt[:, d]
        stay = Y[:, d] + nxt
        cur[:, :-1] = torch.logaddexp(X[:, d, :-1] + nxt[:, 1:], stay[:, :-1])
        cur[:, -1] = stay[:, -1]
        if d in end_diags:
            inject(d)
    return Bt


_TRITON_FAILED = False


def _uses_triton(x: Tensor) -> bool:
    """Whether the sweeps for ``x`` run as Triton kernels: CUDA, triton importable, no failure."""
    if not x.is_cuda or _TRITON_FAILED:
        return False
    from gmot.transducer import triton_kernels

    return triton_kernels.triton_available()


def _sweeps(
    X: Tensor, Y: Tensor, boundary: Tensor, modified: bool, need_beta: bool
) -> tuple[Tensor, Tensor | None]:
    """Run the forward (and optionally backward) sweep; Triton on CUDA when available."""
    global _TRITON_FAILED
    d_start, s_start, d_end, s_end = _endpoints(boundary, modified)
    if _uses_triton(X):
        from gmot.transducer import triton_kernels

        try:
            return triton_kernels.alpha_beta_triton(X, Y, d_start, s_start, d_end, s_end, need_beta)
        except Exception as exc:  # compile/launch failure: fall back, once, loudly
            _TRITON_FAILED = True
            warnings.warn(
                f"Triton RNN-T kernel failed ({exc!r}); using the torch implementation",
                stacklevel=2,
            )
    A = _alpha_torch(X, Y, d_start, s_start)
    Bt = _beta_torch(X, Y, d_end, s_end) if need_beta else None
    return A, Bt


def _scores_from_alpha(A: Tensor, boundary: Tensor, modified: bool) -> Tensor:
    _, _, d_end, s_end = _endpoints(boundary, modified)
    b = torch.arange(A.shape[0], device=A.device)
    return A[b, d_end, s_end]


def _occupation(log_mass: Tensor, total: Tensor) -> Tensor:
    """``exp(log_mass - total)``: the share of all paths through each arc; 0 for an utterance
    whose ``total`` (its score, broadcastable to ``log_mass``) is not finite."""
    finite = torch.isfinite(total)
    return torch.where(finite, (log_mass - torch.where(finite, total, 0.0)).exp(), 0.0)


def _occupation_grads(
    A: Tensor,
    Bt: Tensor,
    X: Tensor,
    Y: Tensor,
    scores: Tensor,
    tgrid: Tensor,
    px_shape: torch.Size,
    T: int,
) -> tuple[Tensor, Tensor]:
    """px_grad (B, S, T1) and py_grad (B, S+1, T) from alpha/beta in diagonal layout."""
    B, D, S1 = A.shape
    S = S1 - 1
    total = scores.view(B, 1, 1)
    nxt = torch.cat([Bt[:, 1:], Bt.new_full((B, 1, S1), NEG_INF)], dim=1)
    gx = _occupation(A[:, :, :-1] + X[:, :, :-1] + nxt[:, :, 1:], total)
    gy = _occupation(A + Y + nxt, total)
    # Un-skew: cell (s, t) lives on diagonal d = t (modified) or s + t (regular).
    T1 = px_shape[2]
    modified = T1 == T
    s_idx = torch.arange(S1, device=A.device).view(S1, 1)
    if modified:
        d_x = torch.arange(T1, device=A.device).view(1, T1).expand(S, T1)
        d_y = torch.arange(T, device=A.device).view(1, T).expand(S1, T)
    else:
        d_x = s_idx[:S] + torch.arange(T1, device=A.device).view(1, T1)
        d_y = s_idx + torch.arange(T, device=A.device).view(1, T)
    px_grad = gx[:, d_x, s_idx[:S].expand(S, T1)]
    py_grad = gy[:, d_y, s_idx.expand(S1, T)]
    del tgrid
    return px_grad, py_grad


def _row_alpha(px: Tensor, C: Tensor, cell_bad: Tensor, boundary: Tensor, modified: bool) -> Tensor:
    """Forward log-probs by the row scan (module docstring), float64, rows first.

    Layout (rows, batch, frames): ``px`` (S, B, T+1) or (S, B, T) with -inf outside the box,
    ``C`` (S+1, B, T+1) the prefix sums along t of py with 0 outside the box, ``cell_bad``
    (S+1, B, T+1) True outside the box. Returns alpha (S+1, B, T+1), -inf outside the box.
    """
    S1, B, T1 = C.shape
    t = torch.arange(T1, device=C.device)
    s_begin = boundary[:, 0]
    start_col = t.unsqueeze(0) == boundary[:, 1:2]  # (B, T+1)
    start_rows = set(s_begin.tolist())
    A = torch.empty_like(C)
    head = C.new_full((B, 1), NEG_INF)
    zero = C.new_zeros(())
    for s in range(S1):
        if s == 0:
            e = C.new_full((B, T1), NEG_INF)
        elif modified:  # px (S, B, T): the arc from (s-1, t-1) lands on (s, t)
            e = torch.cat([head, A[s - 1, :, :-1] + px[s - 1]], dim=1)
        else:  # px (S, B, T+1): the arc from (s-1, t) lands on (s, t)
            e = A[s - 1] + px[s - 1]
        if s in start_rows:
            e = torch.where(start_col & (s_begin == s).unsqueeze(1), zero, e)
        c = C[s]
        torch.logcumsumexp(e.sub_(c), dim=1, out=A[s])
        A[s].add_(c).masked_fill_(cell_bad[s], NEG_INF)
    return A


def recursion_rows(
    px: Tensor, py: Tensor, boundary: Tensor, modified: bool, need_grad: bool
) -> tuple[Tensor, Tensor | None, Tensor | None] | None:
    """:func:`recursion_builtin` by the row scan; None when the scan would lose precision.

    Shapes as in the module docstring; results in ``px.dtype``. None (caller falls back to the
    diagonal loop) when py has a non-finite arc inside the boundary box or a prefix sum of py
    exceeds ``ROW_SCAN_MAX_PREFIX`` nats.
    """
    B, S, T1 = px.shape
    T = py.shape[2]
    dev = px.device
    # Rows-first layout (S, B, T): each row of the scan is one contiguous (B, T) block.
    s_idx = torch.arange(S + 1, device=dev).view(S + 1, 1, 1)
    t_idx = torch.arange(T + 1, device=dev).view(1, 1, T + 1)
    bounds = tuple(boundary[:, i].view(1, B, 1) for i in range(4))
    s0, t0, s1, t1 = bounds
    cell_bad = ~((s_idx >= s0) & (s_idx <= s1) & (t_idx >= t0) & (t_idx <= t1))  # (S+1, B, T+1)
    x_ok, y_ok = _arcs_in_box(s_idx, t_idx, bounds, modified)  # on the (S+1, B, T+1) grid
    x_ok, y_ok = x_ok[:S, :, :T1], y_ok[:, :, :T]
    pxm = px.permute(1, 0, 2).to(torch.float64).masked_fill(~x_ok, NEG_INF).contiguous()
    py0 = py.permute(1, 0, 2).to(torch.float64).masked_fill(~y_ok, 0.0).contiguous()
    C = torch.nn.functional.pad(py0.cumsum(dim=2), (1, 0))  # (S+1, B, T+1)
    if C.numel():
        lo, hi = torch.aminmax(C)
        if not (max(-float(lo), float(hi)) <= ROW_SCAN_MAX_PREFIX):  # also catches inf / nan
            return None
    A = _row_alpha(pxm, C, cell_bad, boundary, modified)
    b = torch.arange(B, device=dev)
    scores = A[boundary[:, 2], b, boundary[:, 3]]
    if not need_grad:
        return scores.to(px.dtype), None, None
    # Backward log-probs: the forward scan on the lattice reversed in s and t.
    rev = torch.stack(
        [S - boundary[:, 2], T - boundary[:, 3], S - boundary[:, 0], T - boundary[:, 1]], dim=1
    )
    py0_r = py0.flip(0, 2)
    C_r = torch.nn.functional.pad(py0_r.cumsum(dim=2), (1, 0))
    Bt = _row_alpha(pxm.flip(0, 2), C_r, cell_bad.flip(0, 2), rev, modified).flip(0, 2)
    total = scores.view(1, B, 1)
    if modified:
        gx = _occupation(A[:S, :, :T] + pxm + Bt[1:, :, 1:], total)
    else:
        gx = _occupation(A[:S] + pxm + Bt[1:], total)
    gy = _occupation((A[:, :, :T] + Bt[:, :, 1:]).add_(py0.masked_fill_(~y_ok, NEG_INF)), total)
    px_grad = gx.permute(1, 0, 2).to(px.dtype, memory_format=torch.contiguous_format)
    py_grad = gy.permute(1, 0, 2).to(py.dtype, memory_format=torch.contiguous_format)
    return scores.to(px.dtype), px_grad, py_grad


def recursion_builtin(
    px: Tensor, py: Tensor, boundary: Tensor, modified: bool, need_grad: bool
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """scores (B,) and, if ``need_grad``, (px_grad, py_grad) = d scores / d (px, py).

    Triton's diagonal sweeps on CUDA. Elsewhere the row scan (on the CPU while
    ``B * (S+1) <= ROW_SCAN_MAX_BATCH_ROWS``), else or where it declines the torch diagonal loop.
    """
    px = px.detach()
    py = py.detach()
    B, S = px.shape[:2]
    small = px.device.type != "cpu" or B * (S + 1) <= ROW_SCAN_MAX_BATCH_ROWS
    if small and not _uses_triton(px):
        out = recursion_rows(px, py, boundary, modified, need_grad)
        if out is not None:
            return out
    return recursion_diagonals(px, py, boundary, modified, need_grad)


def recursion_diagonals(
    px: Tensor, py: Tensor, boundary: Tensor, modified: bool, need_grad: bool
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """:func:`recursion_builtin` by the diagonal sweeps (Triton on CUDA, else a torch loop)."""
    X, Y, tgrid = skew_inputs(px, py, boundary, modified)
    A, Bt = _sweeps(X, Y, boundary, modified, need_grad)
    scores = _scores_from_alpha(A, boundary, modified)
    if not need_grad:
        return scores, None, None
    assert Bt is not None
    px_grad, py_grad = _occupation_grads(A, Bt, X, Y, scores, tgrid, px.shape, py.shape[2])
    return scores, px_grad, py_grad


class MutualInformationFunction(torch.autograd.Function):
    """Autograd wrapper: forward computes scores and occupation grads; backward scales them."""

    @staticmethod
    def forward(ctx, px: Tensor, py: Tensor, boundary: Tensor, modified: bool, return_grad: bool):  # type: ignore[override]
        need = return_grad or ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        scores, px_grad, py_grad = recursion_builtin(px, py, boundary, modified, need)
        if px_grad is None:
            px_grad = px.new_zeros(())
            py_grad = py.new_zeros(())
        ctx.save_for_backward(px_grad, py_grad)
        ctx.mark_non_differentiable(px_grad, py_grad)
        return scores, px_grad, py_grad

    @staticmethod
    def backward(ctx, grad_scores: Tensor, _gx: Tensor | None, _gy: Tensor | None):  # type: ignore[override]
        px_grad, py_grad = ctx.saved_tensors
        g = grad_scores.view(-1, 1, 1)
        return px_grad * g, py_grad * g, None, None, None


def mutual_information_recursion_builtin(
    px: Tensor, py: Tensor, boundary: Tensor | None = None, return_grad: bool = False
) -> Tensor | tuple[Tensor, tuple[Tensor, Tensor]]:
    """Builtin :func:`gmot.transducer.mutual_information_recursion` (see module docstring)."""
    modified, boundary = check_recursion_inputs(px, py, boundary)
    scores, px_grad, py_grad = MutualInformationFunction.apply(
        px, py, boundary, modified, return_grad
    )
    if return_grad:
        return scores, (px_grad, py_grad)
    return scores


def joint_mutual_information_recursion_builtin(
    px: Sequence[Tensor], py: Sequence[Tensor], boundary: Tensor | None = None
) -> Tensor:
    """Per-term breakdown of the recursion on ``sum(px)``, ``sum(py)`` (k2's semantics).

    Args:
      px: N >= 1 tensors, each (B, S, T+1) regular or (B, S, T) modified.
      py: N tensors, each (B, S+1, T).
      boundary: (B, 4) int64 ``[s_begin, t_begin, s_end, t_end]`` (default ``[0, 0, S, T]``).
    Returns:
      (N, B): term n is ``<occ_x, px[n]> + <occ_y, py[n]>`` with ``occ_x``, ``occ_y`` the arc
      occupation probabilities of the summed lattice (constants for autograd); row 0 also holds
      the offset ``score - sum_n term_n`` (no gradient), so the sum over dim 0 is the score of
      :func:`mutual_information_recursion_builtin` on the sums and the gradient of any row
      w.r.t. ``px[n]`` / ``py[n]`` is the occupation (the same for every term). Arcs with zero
      occupation contribute exactly 0, also where a term is -inf.
    """
    N = len(px)
    if N == 0 or len(py) != N:
        raise ValueError(
            f"px and py must be non-empty sequences of equal length, got {N}, {len(py)}"
        )
    shapes = {tuple(x.shape) for x in px}, {tuple(y.shape) for y in py}
    if len(shapes[0]) != 1 or len(shapes[1]) != 1:
        raise ValueError(f"all px must share one shape and all py another, got {shapes}")
    px_cat = torch.stack(tuple(px))  # (N, B, S, T1)
    py_cat = torch.stack(tuple(py))  # (N, B, S+1, T)
    px_tot = px_cat.detach().sum(0)
    py_tot = py_cat.detach().sum(0)
    modified, boundary = check_recursion_inputs(px_tot, py_tot, boundary)
    scores, px_occ, py_occ = recursion_builtin(px_tot, py_tot, boundary, modified, True)
    # Where an arc carries no occupation its term may be -inf (or anything): count it as 0.
    x_terms = torch.where(px_occ > 0, px_cat, 0.0) * px_occ
    y_terms = torch.where(py_occ > 0, py_cat, 0.0) * py_occ
    prods = x_terms.flatten(2).sum(2) + y_terms.flatten(2).sum(2)  # (N, B)
    with torch.no_grad():
        offset = scores - prods.sum(0)
    first = prods[0] + offset
    return torch.cat([first.unsqueeze(0), prods[1:]], dim=0)
