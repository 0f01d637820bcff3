"""Fused Sinkhorn (Triton, CUDA): every inner sweep of one entropic OT problem in one program.

The torch path of :func:`gmot.ot.sinkhorn.log_sinkhorn` launches several small kernels per sweep
(plus a device synchronisation per stopping test); on a GPU the GM-OT inner loop is then bound by
launch latency, not arithmetic (B=32 problems of 250 x 30 are 240 k numbers). This kernel runs
one program per batch entry that keeps the problem's log kernel tile and potentials in registers and
performs the whole inner loop on-chip, with the *same iterates* as ``mode="hybrid"`` of the
torch path:

- per block of ``check_every`` sweeps: one log-domain sweep
  ``u = log a - LSE_k(log_K + v)``, ``v = log b - LSE_i(log_K + u)``, then the stabilised kernel
  ``K~ = exp(log_K + u + v)`` and ``check_every - 1`` multiplicative sweeps
  ``alpha = a / (K~ beta)``, ``beta = b / (K~^T alpha)``, absorbed as ``u += log alpha``,
  ``v += log beta`` (entries whose scaling is not finite keep their potential, as in the torch
  path);
- ``tol > 0``: after each block the row-marginal L1 error of *this* problem is tested and the
  program stops on its own (no host synchronisation, no iterations wasted on problems that have
  converged while others have not). ``tol <= 0`` runs exactly ``max_iter`` sweeps, so the
  iterates equal the torch path's up to rounding;
- the plan ``T = exp(log_K + u + v)`` (subnormals flushed to 0) and ``log T`` (``NEG_LARGE`` at
  padding) are written by the same program, saving the launches that would form them.

Limits: balanced problems (hard marginals) only, no autograd through the iterations, and the
padded tile ``next_pow2(n) x next_pow2(m)`` at most :data:`MAX_TILE` elements (32768 in float32,
e.g. 1024 frames x 32 tokens or 512 x 64; 16384 in float64). :func:`fused_supported` says whether
a problem qualifies; callers fall back to the torch path otherwise.

Without a GPU the kernel's logic is checked under Triton's interpreter (``TRITON_INTERPRET=1``,
CPU tensors) and its compilation for sm_90 by an ahead-of-time compile; see
``tests/ot/test_triton_sinkhorn.py``.
"""

from __future__ import annotations

import math
import os

import torch

from gmot._triton import HAVE_TRITON as _HAVE_TRITON
from gmot._triton import interpreter_active, tl, triton
from gmot.ot.sinkhorn import SinkhornPlan

__all__ = [
    "MAX_TILE",
    "fused_sinkhorn",
    "fused_supported",
    "interpreter_active",
    "launch_config",
    "unsupported_reason",
]

#: Largest padded tile ``next_pow2(n) * next_pow2(m)`` a program holds, per dtype.
MAX_TILE = {torch.float32: 32768, torch.float64: 16384}


def _next_pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


def launch_config(n: int, m: int) -> tuple[int, int, int]:
    """``(BLOCK_N, BLOCK_M, num_warps)`` for an ``n x m`` problem.

    About 32 tile entries per thread up to 8192 entries (8 warps), 16 warps above; the
    environment variable ``GMOT_SINKHORN_NUM_WARPS`` overrides the warp count (benchmarking).
    sm_90 compile (ptxas, float32): 256 x 32 with 8 warps uses 255 registers and spills 8 bytes
    per thread, 512 x 32 and 1024 x 32 with 16 warps spill 344 bytes and about 3 KB. The
    pressure comes mostly from the per-frame vectors, which Triton's layout (one warp across the
    token columns) replicates in every lane; bench/README.md has the figures and the variants
    tried.
    """
    bn, bm = max(16, _next_pow2(n)), max(16, _next_pow2(m))
    tile = bn * bm
    warps = 4 if tile <= 2048 else (8 if tile <= 8192 else 16)
    env = os.environ.get("GMOT_SINKHORN_NUM_WARPS")
    if env:
        warps = int(env)
        if warps not in (1, 2, 4, 8, 16, 32):
            raise ValueError(f"GMOT_SINKHORN_NUM_WARPS must be a power of two <= 32, got {env}")
    return bn, bm, warps


def unsupported_reason(log_K: torch.Tensor, fa: float = 1.0, fb: float = 1.0) -> str | None:
    """Why :func:`fused_sinkhorn` cannot solve this problem, or ``None`` when it can.

    Checks Triton, shape, device (CUDA, or CPU under the interpreter), dtype, balance
    (``fa = fb = 1``), autograd (none may be recorded through the kernel) and the tile size.
    """
    if not _HAVE_TRITON:
        return "triton is not importable"
    if log_K.dim() != 3:
        return f"log_K must be (B, n, m), got shape {tuple(log_K.shape)}"
    if not (log_K.is_cuda or interpreter_active()):
        return f"the fused Sinkhorn kernel needs CUDA tensors, got {log_K.device}"
    if log_K.dtype not in MAX_TILE:
        return f"log_K must be float32 or float64, got {log_K.dtype}"
    if fa != 1.0 or fb != 1.0:
        return "the fused Sinkhorn kernel solves balanced problems only"
    if torch.is_grad_enabled() and log_K.requires_grad:
        return "the fused Sinkhorn kernel has no autograd (use the torch path for grad='autodiff')"
    n, m = log_K.shape[1], log_K.shape[2]
    bn, bm, _ = launch_config(n, m)
    if bn * bm > MAX_TILE[log_K.dtype]:
        return (
            f"problem {n} x {m} (tile {bn} x {bm}) exceeds the fused kernel's limit "
            f"{MAX_TILE[log_K.dtype]} for {log_K.dtype}"
        )
    return None


def fused_supported(log_K: torch.Tensor, fa: float = 1.0, fb: float = 1.0) -> bool:
    """Whether :func:`fused_sinkhorn` can solve this problem (see :func:`unsupported_reason`)."""
    return unsupported_reason(log_K, fa, fb) is None


if _HAVE_TRITON:  # pragma: no cover - compiled for CUDA; the CPU tests use the interpreter
    # Integer arguments equal to 1 would otherwise be specialised into compile-time constants,
    # which breaks the loop-carried counters derived from them (and recompiles per value).
    @triton.jit(do_not_specialize=["n", "m", "max_iter", "check_every"])
    def _sinkhorn_kernel(
        LOGK,
        A,
        Bw,
        U,
        V,
        PLAN,
        LOGPLAN,
        NITER,
        n,
        m,
        max_iter,
        check_every,
        tol,
        FLUSH: tl.constexpr,
        HAS_INIT: tl.constexpr,
        CHECK: tl.constexpr,
        WRITE_PLAN: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_M: tl.constexpr,
    ):
        pid = tl.program_id(0).to(tl.int64)
        rn = tl.arange(0, BLOCK_N)
        rm = tl.arange(0, BLOCK_M)
        in_n = rn < n
        in_m = rm < m
        a = tl.load(A + pid * n + rn, mask=in_n, other=0.0)
        b = tl.load(Bw + pid * m + rm, mask=in_m, other=0.0)
        row = a > 0
        col = b > 0
        log_a = tl.where(row, tl.log(tl.where(row, a, 1.0)), 0.0)
        log_b = tl.where(col, tl.log(tl.where(col, b, 1.0)), 0.0)
        if HAS_INIT:
            u = tl.where(row, tl.load(U + pid * n + rn, mask=in_n, other=0.0), 0.0)
            v = tl.where(col, tl.load(V + pid * m + rm, mask=in_m, other=0.0), 0.0)
        else:
            u = tl.zeros([BLOCK_N], dtype=a.dtype)
            v = tl.zeros([BLOCK_M], dtype=b.dtype)
        kmask = in_n[:, None] & in_m[None, :]
        koffs = rn[:, None] * m + rm[None, :]  # int32 tile; the batch offset is in the base
        LOGK += pid * n * m
        logk = tl.load(LOGK + koffs, mask=kmask, other=-1.0e30)  # stays in registers
        it = max_iter * 0
        done = max_iter * 0
        while (it < max_iter) & (done == 0):
            k = tl.minimum(check_every, max_iter - it)
            # Log-domain sweep (stabilised log-sum-exp); padded entries hold -1e30 (finite).
            x = logk + v[None, :]
            mx = tl.max(x, axis=1)
            u = tl.where(row, log_a - mx - tl.log(tl.sum(tl.exp(x - mx[:, None]), axis=1)), 0.0)
            x = logk + u[:, None]
            mx = tl.max(x, axis=0)
            v = tl.where(col, log_b - mx - tl.log(tl.sum(tl.exp(x - mx[None, :]), axis=0)), 0.0)
            # Multiplicative sweeps on the stabilised kernel (no exponentials).
            x = logk + u[:, None] + v[None, :]
            kt = tl.where(x < FLUSH, 0.0, tl.exp(x))
            alpha = tl.full([BLOCK_N], 1.0, a.dtype)
            beta = tl.full([BLOCK_M], 1.0, b.dtype)
            for _ in range(1, k):
                alpha = a / tl.where(row, tl.sum(kt * beta[None, :], axis=1), 1.0)
                beta = b / tl.where(col, tl.sum(kt * alpha[:, None], axis=0), 1.0)
            if CHECK:
                marg = alpha * tl.sum(kt * beta[None, :], axis=1)
                err = tl.sum(tl.abs(marg - a), axis=0)
                done = tl.where(err >= tol, 0, 1)  # nan also stops (cannot improve further)
            u_new = u + tl.log(alpha)
            v_new = v + tl.log(beta)
            u = tl.where(row & (tl.abs(u_new) < float("inf")), u_new, u)
            v = tl.where(col & (tl.abs(v_new) < float("inf")), v_new, v)
            it += k
        tl.store(U + pid * n + rn, u, mask=in_n)
        tl.store(V + pid * m + rm, v, mask=in_m)
        tl.store(NITER + pid, it)
        if WRITE_PLAN:
            valid = row[:, None] & col[None, :]
            logt = tl.where(valid, logk + u[:, None] + v[None, :], -1.0e30)
            tl.store(LOGPLAN + pid * n * m + koffs, logt, mask=kmask)
            tl.store(
                PLAN + pid * n * m + koffs, tl.where(logt < FLUSH, 0.0, tl.exp(logt)), mask=kmask
            )


def fused_sinkhorn(
    log_K: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    max_iter: int,
    tol: float,
    check_every: int,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    write_plan: bool = True,
) -> SinkhornPlan:
    """Solve ``B`` balanced entropic OT problems with one Triton program each.

    Args:
        log_K: ``(B, n, m)`` log kernel, padded entries :data:`gmot.ot.sinkhorn.NEG_LARGE`.
        a: ``(B, n)``, b: ``(B, m)`` weights ``>= 0`` (0 = padding), equal mass per problem.
        max_iter, tol, check_every: as :func:`gmot.ot.sinkhorn.log_sinkhorn` (``tol`` is tested
            per problem after each block of ``check_every`` sweeps).
        init: optional warm-start log-potentials ``(u (B, n), v (B, m))``.
        write_plan: also return the plan and its log.

    Returns:
        :class:`gmot.ot.sinkhorn.SinkhornPlan` ``(u (B, n), v (B, m), n_iter (B,) int32,
        log_plan (B, n, m) | None, plan (B, n, m) | None)``: the sweeps run per problem; the
        plan and its log are ``None`` with ``write_plan=False``.
    """
    reason = unsupported_reason(log_K)
    if reason is not None:
        raise ValueError(reason)
    B, n, m = log_K.shape
    if tuple(a.shape) != (B, n) or tuple(b.shape) != (B, m):
        raise ValueError(
            f"a, b must have shapes ({B}, {n}), ({B}, {m}); got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    if check_every < 1:
        raise ValueError(f"check_every must be >= 1, got {check_every}")
    bn, bm, warps = launch_config(n, m)
    dtype = log_K.dtype
    log_K = log_K.contiguous()
    a = a.to(dtype).contiguous()
    b = b.to(dtype).contiguous()
    if init is None:
        u = torch.empty((B, n), dtype=dtype, device=log_K.device)
        v = torch.empty((B, m), dtype=dtype, device=log_K.device)
    else:
        u = init[0].to(dtype).contiguous().clone()
        v = init[1].to(dtype).contiguous().clone()
    n_iter = torch.empty((B,), dtype=torch.int32, device=log_K.device)
    plan = torch.empty_like(log_K) if write_plan else log_K
    log_plan = torch.empty_like(log_K) if write_plan else log_K
    _sinkhorn_kernel[(B,)](
        log_K, a, b, u, v, plan, log_plan, n_iter, n, m, int(max_iter), int(check_every),
        float(tol), FLUSH=math.log(torch.finfo(dtype).tiny), HAS_INIT=init is not None,
        CHECK=tol > 0, WRITE_PLAN=write_plan, BLOCK_N=bn, BLOCK_M=bm, num_warps=warps,
    )  # fmt: skip
    if not write_plan:
        return SinkhornPlan(u=u, v=v, n_iter=n_iter, log_plan=None, plan=None)
    return SinkhornPlan(u=u, v=v, n_iter=n_iter, log_plan=log_plan, plan=plan)
