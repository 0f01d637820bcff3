"""Triton kernels for the two sweeps of the RNN-T recursion (CUDA only; import guarded).

Same diagonal layout as :mod:`gmot.transducer.recursion`: X, Y, alpha and beta are (B, D, S+1)
contiguous tensors. One program per batch element holds a whole diagonal (BLOCK >= S+1 lanes)
and walks the D diagonals in order, reading the previous diagonal back from global memory after
a block barrier. Endpoints are injected in-kernel.

UNVERIFIED in the development environment (no GPU there): ``tests/transducer`` has a
``@pytest.mark.gpu`` test comparing it to the torch path; the dispatcher falls back to the torch
path with a warning if compiling or launching fails.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gmot._triton import HAVE_TRITON as _HAVE_TRITON
from gmot._triton import tl, triton

_MAX_BLOCK = 4096


def triton_available() -> bool:
    """True when triton imports (kernels are used only for CUDA tensors)."""
    return _HAVE_TRITON


if _HAVE_TRITON:  # pragma: no cover - needs a GPU

    @triton.jit
    def _logaddexp(a, b):
        m = tl.maximum(a, b)
        m_safe = tl.where(m == float("-inf"), 0.0, m)
        return m_safe + tl.log(tl.exp(a - m_safe) + tl.exp(b - m_safe))

    @triton.jit
    def _alpha_kernel(X, Y, A, D_START, S_START, D, S1, BLOCK: tl.constexpr):
        b = tl.program_id(0).to(tl.int64)
        offs = tl.arange(0, BLOCK)
        inside = offs < S1
        has_prev = inside & (offs >= 1)
        base = b * D * S1
        d0 = tl.load(D_START + b)
        s0 = tl.load(S_START + b)
        neg = tl.full([BLOCK], float("-inf"), A.dtype.element_ty)
        zero = tl.zeros([BLOCK], A.dtype.element_ty)
        prev = tl.where((offs == s0) & (d0 == 0), zero, neg)
        tl.store(A + base + offs, prev, mask=inside)
        tl.debug_barrier()
        for d in range(1, D):
            row = base + (d - 1) * S1
            y = tl.load(Y + row + offs, mask=inside, other=float("-inf"))
            x_sh = tl.load(X + row + offs - 1, mask=has_prev, other=float("-inf"))
            p_sh = tl.load(A + row + offs - 1, mask=has_prev, other=float("-inf"))
            cur = _logaddexp(p_sh + x_sh, prev + y)
            cur = tl.where((offs == s0) & (d0 == d), zero, cur)
            tl.store(A + base + d * S1 + offs, cur, mask=inside)
            tl.debug_barrier()
            prev = cur

    @triton.jit
    def _beta_kernel(X, Y, Bt, D_END, S_END, D, S1, BLOCK: tl.constexpr):
        b = tl.program_id(0).to(tl.int64)
        offs = tl.arange(0, BLOCK)
        inside = offs < S1
        has_next = (offs + 1) < S1
        base = b * D * S1
        d1 = tl.load(D_END + b)
        s1 = tl.load(S_END + b)
        neg = tl.full([BLOCK], float("-inf"), Bt.dtype.element_ty)
        zero = tl.zeros([BLOCK], Bt.dtype.element_ty)
        nxt = tl.where((offs == s1) & (d1 == D - 1), zero, neg)
        tl.store(Bt + base + (D - 1) * S1 + offs, nxt, mask=inside)
        tl.debug_barrier()
        for i in range(1, D):
            d = D - 1 - i
            row = base + d * S1
            y = tl.load(Y + row + offs, mask=inside, other=float("-inf"))
            x = tl.load(X + row + offs, mask=has_next, other=float("-inf"))
            n_sh = tl.load(Bt + row + S1 + offs + 1, mask=has_next, other=float("-inf"))
            cur = _logaddexp(x + n_sh, y + nxt)
            cur = tl.where((offs == s1) & (d1 == d), zero, cur)
            tl.store(Bt + row + offs, cur, mask=inside)
            tl.debug_barrier()
            nxt = cur


def launch_config(S1: int) -> tuple[int, int]:
    """``(BLOCK, num_warps)`` for diagonals of ``S1 = S + 1`` cells (one lane per cell)."""
    block = max(16, triton.next_power_of_2(S1))
    if block > _MAX_BLOCK:
        raise ValueError(f"S+1={S1} exceeds the Triton kernel's limit {_MAX_BLOCK}")
    return block, 1 if block <= 64 else (2 if block <= 256 else 4)


def alpha_beta_triton(
    X: Tensor,
    Y: Tensor,
    d_start: Tensor,
    s_start: Tensor,
    d_end: Tensor,
    s_end: Tensor,
    need_beta: bool,
) -> tuple[Tensor, Tensor | None]:
    """Forward log-probs A and (optionally) backward log-probs Bt, each (B, D, S+1)."""
    if not _HAVE_TRITON:
        raise RuntimeError("triton is not importable")
    if not X.is_cuda:
        raise ValueError(f"Triton RNN-T kernels need CUDA tensors, got device {X.device}")
    return _launch(X, Y, d_start, s_start, d_end, s_end, need_beta)


def _launch(
    X: Tensor,
    Y: Tensor,
    d_start: Tensor,
    s_start: Tensor,
    d_end: Tensor,
    s_end: Tensor,
    need_beta: bool,
) -> tuple[Tensor, Tensor | None]:
    """Launch the kernels (any device the active Triton mode accepts; the interpreter runs CPU
    tensors, which is how the tests check the kernels' logic without a GPU)."""
    X = X.contiguous()
    Y = Y.contiguous()
    B, D, S1 = X.shape
    block, warps = launch_config(S1)
    A = torch.empty_like(X)
    _alpha_kernel[(B,)](
        X, Y, A, d_start.contiguous(), s_start.contiguous(), D, S1, BLOCK=block, num_warps=warps
    )
    Bt = None
    if need_beta:
        Bt = torch.empty_like(X)
        _beta_kernel[(B,)](
            X, Y, Bt, d_end.contiguous(), s_end.contiguous(), D, S1, BLOCK=block, num_warps=warps
        )
    return A, Bt
