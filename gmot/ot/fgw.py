"""Batched entropic fused Gromov-Wasserstein (FGW) solver.

Problem per batch entry (one utterance), with ``Pi(a, b)`` the couplings of the weights::

    FGW(T) = (1 - alpha) <M, T> + alpha GW(T),
    GW(T)  = sum_{i,i',k,k'} (C1[i,i'] - C2[k,k'])^2 T[i,k] T[i',k']

The square-loss tensor product is never formed in 4-D (closed forms in :mod:`gmot.ot.fgw_terms`,
``O(n^2 m + n m^2)`` per product). Outer iterations linearise the objective at the
current plan, ``G_k = (1 - alpha) M + alpha grad GW(T_k)``, and solve an entropic OT problem
with inner log-domain Sinkhorn (:mod:`gmot.ot.sinkhorn`):

- ``solver="pgd"`` (default; = ``ot.gromov.entropic_fused_gromov_wasserstein(solver="PGD")``):
  ``T_{k+1} = argmin <G_k, T> + epsilon KL(T | P)`` over ``Pi(a, b)`` with ``P`` the all-ones
  matrix (entropy) or a prior (``log_prior``, e.g. TOT). This minimises the entropic objective
  ``FGW(T) + epsilon KL(T | P)``. Sinkhorn potentials are warm-started across outer iterations.
- ``solver="ppa"`` (proximal point / mirror descent; = ``ot.batch.solve_gromov_batch`` and
  ``entropic_fused_gromov_wasserstein(solver="PPA")``): ``T_{k+1} = argmin <G_k, T> +
  epsilon KL(T | T_k)``; tends to the unregularised FGW as iterations grow.

``alpha = 0`` is special-cased to a single entropic OT (Sinkhorn) on ``M`` for both solvers:
the plain Wasserstein OT loss of the earlier (CAKT) work.

Unbalanced option (``reg_marginals``, later paper arXiv 2509.05609): the hard constraints
``T 1 = a`` and/or ``T^T 1 = b`` are replaced by KL mass penalties ``rho KL(T 1 | a)``; the inner
problem is then unbalanced Sinkhorn (exponent ``rho / (rho + epsilon)``, log-domain sweeps), the
GW gradient uses the plan's own marginals, and ``value`` includes the penalty.

Initial plan: ``a b^T / sqrt(|a| |b|)`` as in POT. Outer stop: ``max_b sum |T_{k+1} - T_k| <
tol`` (tested every outer iteration when ``tol > 0``; ``tol <= 0`` runs exactly ``max_iter``
outer iterations without synchronising).

Value and gradient (``value=``, ``grad=``), which objective is which:

- ``value="fgw"`` (default, as ``ot.gromov.entropic_fused_gromov_wasserstein2``): the
  unregularised ``(1 - alpha) <M, T> + alpha GW(T)`` at the plan.
- ``value="entropic"`` (as ``ot.solve_gromov(reg=epsilon)``): that plus the entropic term
  ``epsilon * sum T log(T / P)`` (``P`` = 1 or ``exp(log_prior)``; unbalanced problems also
  subtract ``epsilon * sum T``, the part of the generalised KL that varies with the plan's mass).
  This is the objective ``solver="pgd"`` minimises. Always reported as ``FGWResult.entropic_term``.
- ``grad="envelope"`` (default, as POT's ``grad="envelope"``): the plan is computed without
  autograd and treated as a constant; the value is differentiable in ``M``, ``C1``, ``C2`` (and
  ``log_prior``) through the closed forms above. For ``solver="pgd"`` at convergence this is the
  exact gradient of ``min_T FGW(T) + epsilon KL(T | P)``, i.e. of ``value="entropic"`` (envelope
  theorem), and *not* of ``value="fgw"``, whose optimal plan moves with the costs. For
  ``solver="ppa"`` (which tends to the unregularised problem) it pairs with ``value="fgw"``.
- ``grad="autodiff"``: unrolled differentiation through all iterations (memory ~ iterations x
  B n m): the exact gradient of whichever value is returned, for the iterations actually run.
- ``grad="detach"``: no gradient.

Structure matrices (``symmetric=``): ``None`` (default, as POT) checks every problem with POT's
test ``allclose(C, C^T, rtol=1e-5, atol=1e-10)`` and uses the symmetric gradient only when all
``C1``, ``C2`` of the batch pass; ``True`` asserts symmetry (checked when ``validate``; an
asymmetric batch raises ValueError instead of giving a wrong plan); ``False`` always uses the
general gradient ``(grad(C1, C2) + grad(C1^T, C2^T)) / 2``.

Inner Sinkhorn (``inner_order=``, ``warmstart=``): ``"vu"`` (default) updates ``v`` then ``u``
as ``ot.sinkhorn`` inside ``ot.gromov.entropic_fused_gromov_wasserstein`` does (row marginals
exact after each sweep, the stopping test on the column marginals); ``"uv"`` updates ``u`` first
as ``ot.batch``'s Bregman projection and :func:`gmot.ot.sinkhorn.log_sinkhorn` do. The two agree
at convergence and differ with truncated inner loops. ``warmstart=True`` starts each PGD inner
loop from the previous outer iteration's potentials (PPA never needs it: ``log T`` already
carries them); POT's default (``warmstart=False``) starts from scratch. On POT's
``test_entropic_gromov`` problem (epsilon 1e-2, 1,000 inner sweeps that do not converge) the
warm start leaves a marginal error of 5e-5 where a cold start reaches 4e-6: the potentials of the
previous kernel are a worse start than zero there, because the GW term moves the kernel by many
nats per outer step at this epsilon. ``warmstart=False, inner_order="vu"`` reproduces POT's
plans to rounding. :class:`gmot.ot.GMOTLoss` pins ``warmstart=True, inner_order="uv"`` (the
settings its results were obtained with).

Marginals ``a``, ``b`` are treated as constants (no gradient). Autocast is switched off inside
(the products would otherwise run in bf16/fp16). Padding (zero weight) contributes
exactly 0 to value, plan and gradients. Computation runs in the input dtype (float16/bfloat16 are
promoted to float32); log-domain stabilised sweeps keep float32 finite for tiny ``epsilon``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from gmot.ot.fgw_terms import asymmetric, entropic_term, gw_const, gw_gradient, gw_value
from gmot.ot.sinkhorn import (
    KERNELS,
    NEG_LARGE,
    SinkhornPlan,
    autocast_off,
    check_marginals,
    marginal_penalty,
    sinkhorn_plan,
    unbalanced_exponents,
)

__all__ = [
    "FGWOptions",
    "FGWResult",
    "fused_gromov_wasserstein",
    "gw_gradient",
    "gw_value",
    "solve_fgw",
]


@dataclass
class FGWResult:
    """Result of :func:`fused_gromov_wasserstein` (all ``(B, ...)`` tensors).

    Attributes:
        value: ``(B,)`` ``alpha * gw + (1 - alpha) * wd`` at the plan (+ mass penalty), plus
            ``entropic_term`` when ``value="entropic"``.
        plan: ``(B, n, m)`` coupling (0 at padded rows/columns).
        wd: ``(B,)`` linear part ``<M, T>`` (unweighted).
        gw: ``(B,)`` Gromov-Wasserstein part ``GW(T)`` (unweighted).
        n_outer: outer iterations run.
        n_inner: total inner Sinkhorn sweeps over all outer iterations.
        outer_err: last outer change ``max_b sum |T_{k+1} - T_k|`` (nan when not measured).
        mass_penalty: ``(B,)`` KL mass penalty at the plan when unbalanced (included in
            ``value``), else ``None``.
        extra: free-form diagnostics.
    """

    value: torch.Tensor
    plan: torch.Tensor
    wd: torch.Tensor
    gw: torch.Tensor
    n_outer: int
    n_inner: int
    outer_err: float = float("nan")
    mass_penalty: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)
    entropic_term: torch.Tensor | None = None
    """``(B,)`` ``epsilon * sum T log(T / P)`` at the plan (see the module docstring); included in
    ``value`` only for ``value="entropic"`` (and only then differentiable)."""
    symmetric: bool | None = None
    """Whether the symmetric GW gradient was used (after detection for ``symmetric=None``)."""


@dataclass(frozen=True)
class FGWOptions:
    """Settings of one :func:`fused_gromov_wasserstein` solve (everything but the tensors).

    The fields are the keyword arguments of :func:`fused_gromov_wasserstein` with the same
    defaults (POT's); see there for their meaning. :class:`gmot.ot.GMOTConfig` builds one with
    :meth:`gmot.ot.GMOTConfig.fgw_options`.
    """

    alpha: float
    epsilon: float
    solver: str = "pgd"
    max_iter: int = 10
    tol: float = 1e-5
    max_iter_inner: int = 50
    tol_inner: float = 1e-5
    check_every: int = 10
    inner_mode: str = "hybrid"
    compile_inner: bool = False
    inner_kernel: str = "auto"
    reg_marginals: float | tuple[float | None, float | None] | None = None
    symmetric: bool | None = None
    grad: str = "envelope"
    validate: bool = True
    value: str = "fgw"
    inner_order: str = "vu"
    warmstart: bool = False

    def check(self) -> None:
        """Raise ValueError naming the first option out of its range."""
        alpha, epsilon = self.alpha, self.epsilon
        if not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        if not isinstance(epsilon, (int, float)) or not float(epsilon) > 0.0:
            raise ValueError(f"epsilon must be a number > 0, got {epsilon!r}")
        choices = {
            "solver": ("pgd", "ppa"),
            "grad": ("envelope", "autodiff", "detach"),
            "value": ("fgw", "entropic"),
            "inner_order": ("vu", "uv"),
            "inner_kernel": KERNELS,
        }
        for name, allowed in choices.items():
            got = getattr(self, name)
            if got not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {got!r}")
        if self.value == "entropic" and self.solver == "ppa" and alpha > 0:
            raise ValueError(
                "value='entropic' is the objective of solver='pgd'; solver='ppa' minimises the "
                "unregularised FGW (value='fgw')"
            )
        if self.symmetric not in (None, True, False):
            raise ValueError(f"symmetric must be None, True or False, got {self.symmetric!r}")


@dataclass
class _Problem:
    """One batch of FGW problems as the outer loop sees them (padding already zeroed).

    ``M`` ``(B, n, m)``, ``C1`` ``(B, n, n)``, ``C2`` ``(B, m, m)``, ``a`` ``(B, n)``, ``b``
    ``(B, m)``, ``valid`` ``(B, n, m)`` bool, ``log_prior``/``init_plan`` ``(B, n, m)`` or None;
    ``symmetric`` after detection; ``fa``, ``fb`` the unbalanced Sinkhorn exponents.
    """

    M: torch.Tensor
    C1: torch.Tensor
    C2: torch.Tensor
    a: torch.Tensor
    b: torch.Tensor
    valid: torch.Tensor
    log_prior: torch.Tensor | None
    init_plan: torch.Tensor | None
    symmetric: bool
    fa: float
    fb: float


def _validate(M: torch.Tensor | None, C1: torch.Tensor, C2: torch.Tensor) -> tuple[int, int, int]:
    if C1.dim() != 3 or C1.shape[1] != C1.shape[2]:
        raise ValueError(f"C1 must have shape (B, n, n), got {tuple(C1.shape)}")
    if C2.dim() != 3 or C2.shape[1] != C2.shape[2]:
        raise ValueError(f"C2 must have shape (B, m, m), got {tuple(C2.shape)}")
    B, n, m = C1.shape[0], C1.shape[1], C2.shape[1]
    if C2.shape[0] != B:
        raise ValueError(f"batch sizes differ: C1 has B={B}, C2 has B={C2.shape[0]}")
    if M is not None and tuple(M.shape) != (B, n, m):
        raise ValueError(
            f"M must have shape (B, n, m) = ({B}, {n}, {m}) to match C1/C2, got {tuple(M.shape)}"
        )
    if n == 0 or m == 0:
        raise ValueError(f"zero-length problem: n={n}, m={m}")
    return B, n, m


def _check_finite(name: str, x: torch.Tensor, valid: torch.Tensor) -> None:
    bad = (~torch.isfinite(x) & valid).flatten(1).any(1)
    if bool(bad.any()):
        raise ValueError(
            f"{name} contains non-finite values at valid (non-padded) entries "
            f"for batch entries {bad.nonzero().flatten().tolist()}"
        )


@autocast_off
def fused_gromov_wasserstein(
    M: torch.Tensor | None,
    C1: torch.Tensor,
    C2: torch.Tensor,
    a: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    *,
    alpha: float,
    epsilon: float,
    solver: str = "pgd",
    max_iter: int = 10,
    tol: float = 1e-5,
    max_iter_inner: int = 50,
    tol_inner: float = 1e-5,
    check_every: int = 10,
    inner_mode: str = "hybrid",
    compile_inner: bool = False,
    inner_kernel: str = "auto",
    reg_marginals: float | tuple[float | None, float | None] | None = None,
    log_prior: torch.Tensor | None = None,
    init_plan: torch.Tensor | None = None,
    symmetric: bool | None = None,
    grad: str = "envelope",
    validate: bool = True,
    value: str = "fgw",
    inner_order: str = "vu",
    warmstart: bool = False,
) -> FGWResult:
    """Batched entropic fused Gromov-Wasserstein (see the module docstring for the method).

    Args:
        M: ``(B, n, m)`` linear (node) cost, or ``None`` for pure GW (requires ``alpha = 1``).
        C1: ``(B, n, n)`` source structure; C2: ``(B, m, m)`` target structure.
        a: ``(B, n)``, b: ``(B, m)`` weights (``None`` = uniform); zero weight = padding.
        alpha: GW weight in ``[0, 1]`` (0 = entropic OT on ``M``, 1 = pure GW).
        epsilon: entropic / proximal step parameter ``> 0``, in cost units.
        solver: ``"pgd"`` (entropic FGW) or ``"ppa"`` (proximal point), see module docstring.
        max_iter, tol: outer iteration budget and stopping tolerance (``tol <= 0``: no test).
        max_iter_inner, tol_inner, check_every: inner Sinkhorn budget/tolerance/test period.
        inner_mode: ``"hybrid"`` (default, fast) or ``"log"`` Sinkhorn sweeps, see
            :func:`gmot.ot.sinkhorn.log_sinkhorn`.
        compile_inner: fuse the hybrid sweeps of the torch path with ``torch.compile``.
        inner_kernel: ``"auto"`` (default: the fused Triton Sinkhorn kernel for CUDA tensors
            when it applies, see :func:`gmot.ot.sinkhorn.sinkhorn_plan`), ``"torch"`` or
            ``"triton"`` (fused kernel or an error). With ``tol_inner > 0`` the fused kernel
            tests the tolerance per problem instead of for the whole batch.
        reg_marginals: unbalanced marginals with a KL mass penalty: ``None`` (balanced), ``rho``
            (both sides) or ``(rho_a, rho_b)`` with ``None`` = hard side (see
            :func:`gmot.ot.sinkhorn.unbalanced_exponents`). The GW gradient then uses the plan's
            own marginals, and ``value`` adds the penalty at the plan.
        log_prior: ``(B, n, m)`` log reference measure for ``solver="pgd"`` (TOT prior); the
            entropy term becomes ``epsilon KL(T | exp(log_prior))``.
        init_plan: optional ``(B, n, m)`` initial plan (default ``a b^T / sqrt(|a| |b|)``).
        symmetric: ``None`` (default): detect per batch as POT does; ``True``: ``C1``, ``C2`` are
            symmetric (checked when ``validate``, ValueError if not); ``False``: general case.
        grad: ``"envelope"`` (default), ``"autodiff"`` or ``"detach"`` (module docstring).
        validate: check weights (finite, >= 0, equal positive masses), costs (finite at valid
            entries) and ``symmetric=True``; needs device synchronisations. Shapes and scalars
            are always checked.
        value: ``"fgw"`` (default, no entropic term) or ``"entropic"`` (adds
            ``entropic_term``: the objective of ``solver="pgd"``, whose gradient
            ``grad="envelope"`` is; not defined for ``solver="ppa"`` with ``alpha > 0``).
        inner_order: ``"vu"`` (default, as ``ot.sinkhorn``) or ``"uv"`` (as ``ot.batch``):
            which potential each inner Sinkhorn sweep updates first.
        warmstart: start each PGD inner Sinkhorn from the previous outer iteration's potentials
            (default False, as POT).

    Returns:
        :class:`FGWResult` with ``value`` ``(B,)`` and ``plan`` ``(B, n, m)``.
    """
    options = FGWOptions(
        alpha=alpha, epsilon=epsilon, solver=solver, max_iter=max_iter, tol=tol,
        max_iter_inner=max_iter_inner, tol_inner=tol_inner, check_every=check_every,
        inner_mode=inner_mode, compile_inner=compile_inner, inner_kernel=inner_kernel,
        reg_marginals=reg_marginals, symmetric=symmetric, grad=grad, validate=validate,
        value=value, inner_order=inner_order, warmstart=warmstart,
    )  # fmt: skip
    return solve_fgw(M, C1, C2, a, b, options, log_prior=log_prior, init_plan=init_plan)


@autocast_off
def solve_fgw(
    M: torch.Tensor | None,
    C1: torch.Tensor,
    C2: torch.Tensor,
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    options: FGWOptions,
    *,
    log_prior: torch.Tensor | None = None,
    init_plan: torch.Tensor | None = None,
) -> FGWResult:
    """:func:`fused_gromov_wasserstein` with its settings in one :class:`FGWOptions`.

    Args:
        M: ``(B, n, m)`` node cost or ``None`` (pure GW); C1 ``(B, n, n)``, C2 ``(B, m, m)``
            structure costs; a ``(B, n)``, b ``(B, m)`` weights (``None`` = uniform).
        options: every scalar setting (see :func:`fused_gromov_wasserstein` for each).
        log_prior: ``(B, n, m)`` log reference measure (``solver="pgd"`` only) or ``None``.
        init_plan: ``(B, n, m)`` initial plan or ``None``.

    Returns:
        :class:`FGWResult`.
    """
    options.check()
    B, n, m = _validate(M, C1, C2)
    if M is None:
        if float(options.alpha) != 1.0:
            raise ValueError(f"M=None (pure GW) requires alpha=1, got alpha={float(options.alpha)}")
        M = torch.zeros((B, n, m), dtype=C1.dtype, device=C1.device)
    if log_prior is not None:
        if options.solver != "pgd":
            raise ValueError("log_prior (KL prior) is only defined for solver='pgd'")
        if tuple(log_prior.shape) != (B, n, m):
            raise ValueError(f"log_prior must have shape {(B, n, m)}, got {tuple(log_prior.shape)}")
    if init_plan is not None and tuple(init_plan.shape) != (B, n, m):
        raise ValueError(f"init_plan must have shape {(B, n, m)}, got {tuple(init_plan.shape)}")
    problem, rho = _prepare(M, C1, C2, a, b, options, log_prior, init_plan)
    track = options.grad == "autodiff"
    solved = problem
    if not track:  # the outer loop runs on detached costs (envelope / detach gradients)
        solved = dataclasses.replace(
            problem, M=problem.M.detach(), C1=problem.C1.detach(), C2=problem.C2.detach()
        )
    with torch.set_grad_enabled(track and torch.is_grad_enabled()):
        T, n_outer, n_inner, outer_err = _solve(solved, options)
    if not track:
        T = T.detach()
    result = _value_at_plan(problem, T, options, rho)
    return dataclasses.replace(result, n_outer=n_outer, n_inner=n_inner, outer_err=outer_err)


def _prepare(
    M: torch.Tensor,
    C1: torch.Tensor,
    C2: torch.Tensor,
    a: torch.Tensor | None,
    b: torch.Tensor | None,
    options: FGWOptions,
    log_prior: torch.Tensor | None,
    init_plan: torch.Tensor | None,
) -> tuple[_Problem, tuple[float | None, float | None]]:
    """The problem the outer loop solves, from inputs of checked shapes: at least float32,
    weights checked (uniform for ``None``), costs finite where they count, padded entries zeroed
    (differentiably), the symmetry decided. Returns it and the unbalanced penalties
    ``(rho_a, rho_b)``."""
    B, n, m = M.shape
    alpha, epsilon = float(options.alpha), float(options.epsilon)
    # Work in at least float32 (half precision cannot hold the log-domain ranges).
    dtype = torch.promote_types(torch.promote_types(M.dtype, C1.dtype), C2.dtype)
    if dtype in (torch.float16, torch.bfloat16):
        dtype = torch.float32
    M, C1, C2 = M.to(dtype), C1.to(dtype), C2.to(dtype)
    fa, fb, rho_a, rho_b = unbalanced_exponents(options.reg_marginals, epsilon)
    balanced = rho_a is None and rho_b is None
    a, b = check_marginals(a, b, B, n, m, M, values=options.validate, balanced=balanced)
    row, col = a > 0, b > 0
    valid = row[:, :, None] & col[:, None, :]
    if options.validate:
        _check_finite("M", M, valid)
        _check_finite("C1", C1, row[:, :, None] & row[:, None, :])
        _check_finite("C2", C2, col[:, :, None] & col[:, None, :])
    # Zero padded entries (differentiably: padded inputs get exactly zero gradient).
    M = torch.where(valid, M, 0.0)
    C1 = torch.where(row[:, :, None] & row[:, None, :], C1, 0.0)
    C2 = torch.where(col[:, :, None] & col[:, None, :], C2, 0.0)
    symmetric = _resolve_symmetric(C1, C2, alpha, options.symmetric, options.validate)
    problem = _Problem(M, C1, C2, a, b, valid, log_prior, init_plan, symmetric, fa, fb)
    return problem, (rho_a, rho_b)


def _resolve_symmetric(
    C1: torch.Tensor, C2: torch.Tensor, alpha: float, symmetric: bool | None, validate: bool
) -> bool:
    """Whether the symmetric GW gradient applies: detected per batch as POT does for
    ``symmetric=None``, checked for ``True`` when ``validate``; always True for ``alpha = 0``."""
    if alpha > 0 and (symmetric is None or (symmetric and validate)):
        with torch.no_grad():
            asym = (asymmetric(C1) | asymmetric(C2)).nonzero().flatten().tolist()
        if symmetric is None:
            symmetric = not asym
        elif asym:
            raise ValueError(
                f"symmetric=True but C1 or C2 is not symmetric (POT's allclose(C, C^T) test) for "
                f"batch entries {asym}; pass symmetric=None (detect) or symmetric=False"
            )
    return bool(symmetric) if alpha > 0 else True


def _value_at_plan(
    p: _Problem,
    T: torch.Tensor,
    options: FGWOptions,
    rho: tuple[float | None, float | None],
) -> FGWResult:
    """The objective at the plan ``T`` (differentiable in the costs as ``options.grad`` says),
    its parts and the entropic term (the solve counts are 0 here: :func:`solve_fgw` sets them)."""
    alpha, epsilon = float(options.alpha), float(options.epsilon)
    M, C1, C2 = p.M, p.C1, p.C2
    if options.grad == "detach":
        M, C1, C2 = M.detach(), C1.detach(), C2.detach()
    wd = (M * T).sum((1, 2))
    gw = gw_value(C1, C2, T) if alpha > 0 else torch.zeros_like(wd)
    total = (1.0 - alpha) * wd + alpha * gw if alpha > 0 else wd
    rho_a, rho_b = rho
    balanced = rho_a is None and rho_b is None
    penalty = None
    if not balanced:
        penalty = marginal_penalty(T, p.a, p.b, rho_a, rho_b)
        total = total + penalty
    lp = None if p.log_prior is None else torch.where(p.valid, p.log_prior.to(M.dtype), 0.0)
    with torch.set_grad_enabled(options.value == "entropic" and torch.is_grad_enabled()):
        if options.grad == "detach" and lp is not None:
            lp = lp.detach()
        ent = entropic_term(T, p.valid, epsilon, lp, balanced)
    if options.value == "entropic":
        total = total + ent
    else:
        ent = ent.detach()
    return FGWResult(
        value=total,
        plan=T,
        wd=wd,
        gw=gw,
        n_outer=0,
        n_inner=0,
        mass_penalty=penalty,
        entropic_term=ent,
        symmetric=p.symmetric,
    )


def _inner_plan(
    log_K: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    init: tuple[torch.Tensor, torch.Tensor] | None,
    order: str,
    fa: float,
    fb: float,
    **kw,
) -> SinkhornPlan:
    """:func:`sinkhorn_plan` with ``u`` first (``order="uv"``) or ``v`` first (``"vu"``: the
    ``u``-first sweeps on the transposed problem, potentials and plan transposed back)."""
    if order == "uv":
        return sinkhorn_plan(log_K, a, b, init=init, fa=fa, fb=fb, **kw)
    init_t = None if init is None else (init[1], init[0])
    t = sinkhorn_plan(log_K.transpose(1, 2).contiguous(), b, a, init=init_t, fa=fb, fb=fa, **kw)
    return SinkhornPlan(
        u=t.v,
        v=t.u,
        n_iter=t.n_iter,
        log_plan=t.log_plan.transpose(1, 2).contiguous(),
        plan=t.plan.transpose(1, 2).contiguous(),
    )


def _solve(p: _Problem, opts: FGWOptions) -> tuple[torch.Tensor, int, int, float]:
    """Outer loop; returns ``(plan (B, n, m), n_outer, n_inner_total, last_outer_err)``."""
    M, C1, C2, a, b, valid = p.M, p.C1, p.C2, p.a, p.b, p.valid
    alpha, epsilon, symmetric, fa, fb = (
        float(opts.alpha),
        float(opts.epsilon),
        p.symmetric,
        p.fa,
        p.fb,
    )
    log_prior, init_plan = p.log_prior, p.init_plan
    inner = {
        "max_iter": opts.max_iter_inner,
        "tol": opts.tol_inner,
        "check_every": opts.check_every,
        "mode": opts.inner_mode,
        "compile": opts.compile_inner,
        "kernel": opts.inner_kernel,
    }
    log_prior_m = None
    if log_prior is not None:
        log_prior_m = torch.where(valid, log_prior.to(M.dtype), 0.0)
    if alpha == 0.0:
        log_K = -M / epsilon
        if log_prior_m is not None:
            log_K = log_K + log_prior_m
        log_K = torch.where(valid, log_K, NEG_LARGE)
        sol = _inner_plan(log_K, a, b, None, opts.inner_order, fa, fb, **inner)
        return sol.plan, 1, int(sol.n_iter), float("nan")

    if init_plan is None:
        scale = torch.sqrt(a.sum(1) * b.sum(1))[:, None, None]
        T = a[:, :, None] * b[:, None, :] / scale
    else:
        T = torch.where(valid, init_plan.to(M.dtype), 0.0)
    log_T = torch.where(valid, torch.log(torch.where(valid, T, 1.0).clamp_min(1e-38)), NEG_LARGE)
    # -G_k / epsilon = base + (4 alpha / epsilon) C1 T C2^T   (symmetric case), where
    # base = -((1 - alpha) M + 2 alpha const) / epsilon is fixed over the outer loop; padded
    # entries of base hold NEG_LARGE so the kernel needs no further masking.
    # Unbalanced: the plan's marginals move, so the constant term is rebuilt from them each
    # outer iteration (exact gradient of GW(T) for any T).
    balanced = fa == 1.0 and fb == 1.0
    cfac = 2.0 if symmetric else 1.0
    if balanced:
        const = gw_const(C1, C2, a, b, symmetric)
        base = -((1.0 - alpha) * M + (cfac * alpha) * const) / epsilon
    else:
        base = -((1.0 - alpha) * M) / epsilon
    if opts.solver == "pgd" and log_prior_m is not None:
        base = base + log_prior_m
    base = torch.where(valid, base, NEG_LARGE)
    C2t = C2.transpose(1, 2)
    C1t = C1.transpose(1, 2)
    pot = None
    n_inner = 0
    err = float("nan")
    n_outer = 0
    for k in range(opts.max_iter):
        if symmetric:
            log_K = torch.baddbmm(base, torch.bmm(C1, T), C2t, alpha=4.0 * alpha / epsilon)
        else:
            log_K = torch.baddbmm(base, torch.bmm(C1, T), C2t, alpha=2.0 * alpha / epsilon)
            log_K = torch.baddbmm(log_K, torch.bmm(C1t, T), C2, alpha=2.0 * alpha / epsilon)
        if not balanced:
            const = gw_const(C1, C2, T.sum(2), T.sum(1), symmetric)
            log_K = log_K - (cfac * alpha / epsilon) * const
        if opts.solver == "ppa":
            log_K = log_K + log_T
        # PGD with warmstart: start from the previous potentials; PPA: log_T already carries
        # the previous scaling, so zeros are the warm start.
        init = pot if (opts.solver == "pgd" and opts.warmstart) else None
        sol = _inner_plan(log_K, a, b, init, opts.inner_order, fa, fb, **inner)
        log_T, T_new = sol.log_plan, sol.plan
        n_inner += sol.n_iter
        pot = (sol.u, sol.v)
        n_outer = k + 1
        if opts.tol > 0:
            err = float((T_new - T).abs().sum((1, 2)).max())
            T = T_new
            if err < opts.tol:
                break
        else:
            T = T_new
    return T, n_outer, int(n_inner), err  # one synchronisation for the fused kernel's counts
