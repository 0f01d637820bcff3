"""Batched log-domain Sinkhorn (entropic OT) with zero-mass padding.

The kernel is given in log form ``log_K`` ``(B, n, m)``; the scaled plan is
``T = exp(log_K + u[:, :, None] + v[:, None, :])`` with log-potentials ``u`` ``(B, n)``,
``v`` ``(B, m)`` updated alternately (``u`` first, then ``v``)::

    u = log a - logsumexp_k(log_K + v)        v = log b - logsumexp_i(log_K + u)

Entries whose row or column weight is zero (padding) are excluded: their kernel entries are set
to a large finite negative number and their potentials are pinned to 0, so the plan is exactly 0
there and no ``-inf - -inf`` NaN can arise (also not in backward when unrolled).

After each ``v`` update the column marginals are exact; the stopping test measures the row
marginal error ``max_b sum_i |T 1 - a|`` every ``check_every`` iterations (each test costs one
device synchronisation, so ``check_every`` trades syncs against wasted iterations).
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import torch

__all__ = [
    "NEG_LARGE",
    "autocast_off",
    "check_marginals",
    "SinkhornPlan",
    "SinkhornResult",
    "exp_flush",
    "log_sinkhorn",
    "marginal_penalty",
    "sinkhorn",
    "sinkhorn_plan",
    "unbalanced_exponents",
]

# Finite stand-in for log(0) at padded entries (representable in float32 and float64).
NEG_LARGE = -1.0e30


def autocast_off(fn):
    """Decorator: run ``fn`` with autocast disabled on the device of its first tensor argument.

    Log-domain OT needs at least float32 throughout; under a caller's ``torch.autocast`` the
    ``bmm`` products of the costs and of the GW gradient would otherwise run in bf16/fp16 and
    shift the kernel ``-G / epsilon`` by far more than the solver's tolerance.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tensors = (x for x in (*args, *kwargs.values()) if isinstance(x, torch.Tensor))
        device_type = next(tensors, torch.empty(0)).device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return fn(*args, **kwargs)

    return wrapper


def exp_flush(x: torch.Tensor) -> torch.Tensor:
    """``exp(x)`` with results below the smallest normal number set to exactly 0.

    Subnormal floats make CPU arithmetic (bmm, mul, div) many times slower; entries that small
    (``< 1.2e-38`` in float32) carry no mass worth keeping.
    """
    return torch.where(x < math.log(torch.finfo(x.dtype).tiny), 0.0, torch.exp(x))


def check_marginals(
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    B: int,
    n: int,
    m: int,
    ref: torch.Tensor,
    values: bool = True,
    balanced: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate/complete marginals ``a`` ``(B, n)`` and ``b`` ``(B, m)`` (``None`` = uniform).

    Shapes are always checked; ``values=True`` also checks finiteness, signs and masses (these
    need a device synchronisation).
    """
    if a is None:
        a = torch.full((B, n), 1.0 / n, dtype=ref.dtype, device=ref.device)
    if b is None:
        b = torch.full((B, m), 1.0 / m, dtype=ref.dtype, device=ref.device)
    for name, w, size in (("a", a, n), ("b", b, m)):
        if w.dim() != 2 or w.shape[0] != B or w.shape[1] != size:
            raise ValueError(f"{name} must have shape ({B}, {size}), got {tuple(w.shape)}")
    if not values:
        return a.to(ref.dtype), b.to(ref.dtype)
    for name, w in (("a", a), ("b", b)):
        if not bool(torch.isfinite(w).all()):
            raise ValueError(f"{name} contains non-finite weights")
        if bool((w < 0).any()):
            raise ValueError(f"{name} contains negative weights")
        mass = w.sum(1)
        empty = (mass <= 0).nonzero().flatten().tolist()
        if empty:
            raise ValueError(
                f"{name} has zero total mass (zero-length sequence) for batch entries {empty}"
            )
    if not balanced:
        return a.to(ref.dtype), b.to(ref.dtype)
    ma, mb = a.sum(1), b.sum(1)
    bad = ((ma - mb).abs() > 1e-4 * torch.maximum(ma, mb)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(
            f"a and b must have equal total mass per problem (balanced OT); "
            f"they differ for batch entries {bad}: a {ma[bad].tolist()} vs b {mb[bad].tolist()}"
        )
    return a.to(ref.dtype), b.to(ref.dtype)


def unbalanced_exponents(
    reg_marginals: float | tuple[float | None, float | None] | None, epsilon: float
) -> tuple[float, float, float | None, float | None]:
    """Parse ``reg_marginals`` into exponents ``(fa, fb)`` and penalties ``(rho_a, rho_b)``.

    ``None``: balanced (hard constraints). A number ``rho``: KL mass penalty ``rho`` on both
    marginals. A pair ``(rho_a, rho_b)``: per side, ``None`` keeping that side hard (e.g.
    ``(rho, None)`` lets silence frames go unmatched while every token is matched).
    """
    if reg_marginals is None:
        return 1.0, 1.0, None, None
    if isinstance(reg_marginals, (int, float)):
        reg_marginals = (float(reg_marginals), float(reg_marginals))
    if not isinstance(reg_marginals, (tuple, list)) or len(reg_marginals) != 2:
        raise ValueError(f"reg_marginals must be None, a number or a pair, got {reg_marginals!r}")
    out = []
    for rho in reg_marginals:
        if rho is not None and not (isinstance(rho, (int, float)) and rho > 0):
            raise ValueError(f"reg_marginals entries must be > 0 or None, got {reg_marginals!r}")
        out.append(1.0 if rho is None else float(rho) / (float(rho) + epsilon))
    rho_a, rho_b = (None if r is None else float(r) for r in reg_marginals)
    return out[0], out[1], rho_a, rho_b


def marginal_penalty(
    T: torch.Tensor, a: torch.Tensor, b: torch.Tensor, rho_a: float | None, rho_b: float | None
) -> torch.Tensor:
    """``rho_a KL(T 1 | a) + rho_b KL(T^T 1 | b)`` (generalised KL, ``(B,)``; None side = 0)."""

    def kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return (torch.xlogy(p, p) - torch.xlogy(p, q) - p + q).sum(1)

    out = torch.zeros(T.shape[0], dtype=T.dtype, device=T.device)
    if rho_a is not None:
        out = out + rho_a * kl(T.sum(2), a)
    if rho_b is not None:
        out = out + rho_b * kl(T.sum(1), b)
    return out


def _row_dot(K: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``(K @ x[..., None])[..., 0]`` for ``K`` ``(B, n, m)``, ``x`` ``(B, m)``."""
    if K.is_cuda:
        return torch.bmm(K, x[:, :, None]).squeeze(2)
    return (K * x[:, None, :]).sum(2)  # faster than batched gemv on CPU


def _col_dot(K: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``(K^T @ y[..., None])[..., 0]`` for ``K`` ``(B, n, m)``, ``y`` ``(B, n)``."""
    if K.is_cuda:
        return torch.bmm(K.transpose(1, 2), y[:, :, None]).squeeze(2)
    return (K * y[:, :, None]).sum(1)


def _scaling_block(
    Kt: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    row: torch.Tensor,
    col: torch.Tensor,
    n_sweeps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_sweeps`` multiplicative Sinkhorn sweeps on a stabilised kernel; returns the scalings."""
    alpha = torch.ones_like(a)
    beta = torch.ones_like(b)
    for _ in range(n_sweeps):
        alpha = a / torch.where(row, _row_dot(Kt, beta), 1.0)
        beta = b / torch.where(col, _col_dot(Kt, alpha), 1.0)
    return alpha, beta


@functools.cache
def _compiled_block():
    """``torch.compile``d :func:`_scaling_block` (fuses the sweeps; built on first use)."""
    return torch.compile(_scaling_block, dynamic=True)


def log_sinkhorn(
    log_K: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    check_every: int = 10,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    mode: str = "hybrid",
    compile: bool = False,
    fa: float = 1.0,
    fb: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Scale ``exp(log_K)`` to the marginals ``a``, ``b`` (KL projection onto ``Pi(a, b)``).

    Sweeps run in blocks of ``check_every``. ``mode="log"`` does every sweep with log-sum-exp.
    ``mode="hybrid"`` (default, same iterates up to rounding, several times faster) does the
    first sweep of a block in the log domain, then forms the stabilised kernel
    ``K~ = exp(log_K + u + v)`` (already close to a plan, so no under/overflow) and runs the
    remaining sweeps of the block as multiplicative scalings ``alpha = a / (K~ beta)``,
    ``beta = b / (K~^T alpha)`` (matrix-vector products instead of exponentials), absorbing
    ``log alpha``, ``log beta`` into ``u``, ``v`` at the end of the block. Should a scaling become
    non-finite (pathologically tiny ``epsilon``), the block's absorption is dropped for that
    entry and the next log-domain sweep repairs it.

    Args:
        log_K: ``(B, n, m)`` log kernel (e.g. ``-M / epsilon``); finite, padded entries set to
            :data:`NEG_LARGE` (see :func:`mask_log_kernel`).
        a: ``(B, n)`` row weights, ``b``: ``(B, m)`` column weights, ``>= 0`` (0 = padding).
        max_iter: maximum number of (u, v) sweeps.
        tol: stop when the row-marginal L1 error of every problem is ``< tol`` (``tol <= 0``:
            always run ``max_iter`` sweeps, no synchronisation).
        check_every: sweeps per block; the stopping rule is tested after each block.
        init: optional warm-start log-potentials ``(u (B, n), v (B, m))``.
        mode: ``"hybrid"`` or ``"log"``.
        compile: run the multiplicative sweeps of ``mode="hybrid"`` through ``torch.compile``
            (kernel fusion; mainly for GPU; first call per shape pays the compilation).
        fa, fb: unbalanced exponents ``rho / (rho + epsilon)`` for a KL mass penalty ``rho`` on
            the row/column marginal (1 = hard constraint). With ``fa < 1`` or ``fb < 1`` all
            sweeps run in the log domain and the stopping test is the largest change of the
            log-potentials over a block.

    Returns:
        ``(u, v, n_iter)``; the plan is ``exp(log_K + u[:, :, None] + v[:, None, :])``.
    """
    if mode not in ("hybrid", "log"):
        raise ValueError(f"mode must be 'hybrid' or 'log', got {mode!r}")
    if check_every < 1:
        raise ValueError(f"check_every must be >= 1, got {check_every}")
    row = a > 0
    col = b > 0
    log_a = torch.where(row, torch.log(torch.where(row, a, torch.ones_like(a))), 0.0)
    log_b = torch.where(col, torch.log(torch.where(col, b, torch.ones_like(b))), 0.0)
    if init is None:
        u = torch.zeros_like(a)
        v = torch.zeros_like(b)
    else:
        u, v = init
    balanced = fa == 1.0 and fb == 1.0
    n_iter = 0
    while n_iter < max_iter:
        k = min(check_every, max_iter - n_iter)
        u_prev, v_prev = u, v
        u = torch.where(row, fa * (log_a - torch.logsumexp(log_K + v[:, None, :], dim=2)), 0.0)
        v = torch.where(col, fb * (log_b - torch.logsumexp(log_K + u[:, :, None], dim=1)), 0.0)
        row_marg = None
        if mode == "log" or not balanced:  # unbalanced sweeps always run in the log domain
            for _ in range(k - 1):
                u = torch.where(
                    row, fa * (log_a - torch.logsumexp(log_K + v[:, None, :], dim=2)), 0.0
                )
                v = torch.where(
                    col, fb * (log_b - torch.logsumexp(log_K + u[:, :, None], dim=1)), 0.0
                )
        elif k > 1 or tol > 0:
            Kt = exp_flush(log_K + u[:, :, None] + v[:, None, :])
            block = _compiled_block() if compile else _scaling_block
            alpha, beta = block(Kt, a, b, row, col, k - 1)
            if tol > 0:
                row_marg = alpha * _row_dot(Kt, beta)
            if k > 1:
                u_new = u + torch.log(alpha)
                v_new = v + torch.log(beta)
                u = torch.where(row & torch.isfinite(u_new), u_new, u)
                v = torch.where(col & torch.isfinite(v_new), v_new, v)
        n_iter += k
        if tol > 0 and not balanced:
            du = torch.where(row, (u - u_prev).abs(), 0.0).amax(1)
            dv = torch.where(col, (v - v_prev).abs(), 0.0).amax(1)
            if not float(torch.maximum(du, dv).max()) >= tol:
                break
        elif tol > 0:
            if row_marg is None:
                row_marg = torch.exp(u + torch.logsumexp(log_K + v[:, None, :], dim=2))
            err = (row_marg - a).abs().sum(1).max()
            if not float(err) >= tol:  # also stops on nan (cannot improve further)
                break
    return u, v, n_iter


KERNELS = ("auto", "torch", "triton")
_FUSED_FAILED = False


class SinkhornPlan(NamedTuple):
    """Result of :func:`sinkhorn_plan` and :func:`gmot.ot.triton_sinkhorn.fused_sinkhorn`.

    Attributes:
        u: ``(B, n)`` row log-potentials (0 at padded rows).
        v: ``(B, m)`` column log-potentials (0 at padded columns).
        n_iter: sweeps run. From :func:`sinkhorn_plan` the most of any problem: an ``int``, or,
            from the fused kernel with ``tol > 0``, a 0-d device tensor (reading it is the
            caller's choice of synchronisation). From ``fused_sinkhorn``: ``(B,)`` int32, per
            problem.
        log_plan: ``(B, n, m)`` ``log_K + u + v``, :data:`NEG_LARGE` at padding (``None`` from
            ``fused_sinkhorn(write_plan=False)``).
        plan: ``(B, n, m)`` ``exp(log_plan)``, subnormals flushed to 0 (``None`` as
            ``log_plan``); its row sums approach ``a``, its column sums equal ``b`` (balanced).
    """

    u: torch.Tensor
    v: torch.Tensor
    n_iter: int | torch.Tensor
    log_plan: torch.Tensor | None
    plan: torch.Tensor | None


def sinkhorn_plan(
    log_K: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    max_iter: int,
    tol: float,
    check_every: int = 10,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    mode: str = "hybrid",
    compile: bool = False,
    fa: float = 1.0,
    fb: float = 1.0,
    kernel: str = "auto",
) -> SinkhornPlan:
    """:func:`log_sinkhorn` followed by the plan, on the fused GPU kernel where possible.

    ``kernel``: ``"torch"`` runs :func:`log_sinkhorn`; ``"triton"`` the fused kernel of
    :mod:`gmot.ot.triton_sinkhorn` (one program per problem, the whole inner loop on-chip, same
    iterates as ``mode="hybrid"``; the tolerance is tested per problem, so with ``tol > 0`` a
    problem stops as soon as it has converged) or an error if it cannot; ``"auto"`` the fused
    kernel for CUDA tensors when Triton imports, the problem is balanced, ``mode="hybrid"``, no
    autograd is recorded and the tile fits (:func:`gmot.ot.triton_sinkhorn.unsupported_reason`),
    else the torch path (also, with one warning, if the kernel fails to compile or launch).

    Returns:
        :class:`SinkhornPlan` ``(u (B, n), v (B, m), n_iter, log_plan (B, n, m), plan (B, n, m))``
        with ``n_iter`` the sweeps run (the most of any problem; from the fused kernel with
        ``tol > 0`` a 0-d device tensor, so that reading it is the caller's choice of
        synchronisation), ``log_plan = log_K + u + v`` (:data:`NEG_LARGE` at padding) and
        ``plan = exp(log_plan)`` (subnormals flushed to 0).
    """
    global _FUSED_FAILED
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    if kernel == "triton" and mode != "hybrid":
        raise ValueError(f"kernel='triton' implements mode='hybrid' only, got mode={mode!r}")
    if kernel == "triton" or (kernel == "auto" and mode == "hybrid" and not _FUSED_FAILED):
        from gmot.ot import triton_sinkhorn as ts

        reason = ts.unsupported_reason(log_K, fa, fb)
        if reason is not None and kernel == "triton":
            raise ValueError(reason)
        if reason is None:
            try:
                fused = ts.fused_sinkhorn(
                    log_K, a, b, max_iter=max_iter, tol=tol, check_every=check_every, init=init
                )
                return fused._replace(n_iter=max_iter if tol <= 0 else fused.n_iter.max())
            except Exception as exc:
                if kernel == "triton":
                    raise
                _FUSED_FAILED = True  # compile/launch failure: fall back, once, loudly
                warnings.warn(
                    f"fused Triton Sinkhorn kernel failed ({exc!r}); using the torch path",
                    stacklevel=2,
                )
    u, v, n_iter = log_sinkhorn(
        log_K, a, b, max_iter=max_iter, tol=tol, check_every=check_every, init=init, mode=mode,
        compile=compile, fa=fa, fb=fb,
    )  # fmt: skip
    log_plan = mask_log_kernel(log_K + u[:, :, None] + v[:, None, :], a, b)
    return SinkhornPlan(u=u, v=v, n_iter=n_iter, log_plan=log_plan, plan=exp_flush(log_plan))


def mask_log_kernel(log_K: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Replace entries of padded rows/columns (zero weight) by :data:`NEG_LARGE`."""
    valid = (a > 0)[:, :, None] & (b > 0)[:, None, :]
    return torch.where(valid, log_K, NEG_LARGE)


@dataclass
class SinkhornResult:
    """Entropic OT result.

    Attributes:
        value: ``(B,)`` transport cost ``<M, T>`` (no entropy term).
        plan: ``(B, n, m)``.
        potentials: log-potentials ``(u (B, n), v (B, m))``; the dual potentials of the entropic
            problem are ``epsilon * u`` and ``epsilon * v``.
        n_iter: sweeps run.
        mass_penalty: ``(B,)`` KL mass penalty at the plan (unbalanced only, else ``None``);
            already included in ``value``.
    """

    value: torch.Tensor
    plan: torch.Tensor
    potentials: tuple[torch.Tensor, torch.Tensor]
    n_iter: int
    mass_penalty: torch.Tensor | None = None


@autocast_off
def sinkhorn(
    M: torch.Tensor,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    *,
    epsilon: float,
    max_iter: int = 1000,
    tol: float = 1e-6,
    check_every: int = 10,
    log_prior: torch.Tensor | None = None,
    mode: str = "hybrid",
    reg_marginals: float | tuple[float | None, float | None] | None = None,
    kernel: str = "auto",
) -> SinkhornResult:
    """Batched entropic OT: ``min_T <M, T> + epsilon * KL(T | P)`` over ``Pi(a, b)``.

    With ``log_prior=None`` the reference ``P`` is the all-ones matrix, i.e. the usual
    ``<M, T> - epsilon H(T)`` (same solution as ``ot.sinkhorn(a, b, M, epsilon)``).

    Gradient (envelope theorem): the plan is computed without autograd and treated as a
    constant; ``value = <M, T>`` is differentiable in ``M`` with ``d value / d M = T``, which is
    the exact gradient of the entropic optimum ``min_T <M, T> - epsilon H(T)`` at convergence.

    Args:
        M: ``(B, n, m)`` cost.
        a, b: ``(B, n)``, ``(B, m)`` weights (``None`` = uniform), zero = padding.
        epsilon: entropic regularisation (> 0), in the units of ``M``.
        log_prior: optional ``(B, n, m)`` log reference measure (e.g. the TOT prior).
        mode: Sinkhorn sweep implementation, ``"hybrid"`` or ``"log"`` (see :func:`log_sinkhorn`).
        reg_marginals: unbalanced OT: KL mass penalty on the marginals (see
            :func:`unbalanced_exponents`); ``value`` then adds the penalty at the plan.
        kernel: ``"auto"``, ``"torch"`` or ``"triton"`` (fused GPU kernel), see
            :func:`sinkhorn_plan`.
    """
    if M.dim() != 3:
        raise ValueError(f"M must be (B, n, m), got shape {tuple(M.shape)}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    B, n, m = M.shape
    fa, fb, rho_a, rho_b = unbalanced_exponents(reg_marginals, epsilon)
    a, b = check_marginals(a, b, B, n, m, M, balanced=rho_a is None and rho_b is None)
    valid = (a > 0)[:, :, None] & (b > 0)[:, None, :]
    M = torch.where(valid, M, 0.0)  # padded entries may hold anything; they get zero gradient
    with torch.no_grad():
        log_K = -M.detach() / epsilon
        if log_prior is not None:
            log_K = log_K + log_prior
        log_K = mask_log_kernel(log_K, a, b)
        sol = sinkhorn_plan(
            log_K, a, b, max_iter=max_iter, tol=tol, check_every=check_every, mode=mode,
            fa=fa, fb=fb, kernel=kernel,
        )  # fmt: skip
    plan = sol.plan
    value = (M * plan).sum((1, 2))
    penalty = None
    if rho_a is not None or rho_b is not None:
        penalty = marginal_penalty(plan, a, b, rho_a, rho_b)
        value = value + penalty
    return SinkhornResult(
        value=value,
        plan=plan,
        potentials=(sol.u, sol.v),
        n_iter=int(sol.n_iter),
        mass_penalty=penalty,
    )
