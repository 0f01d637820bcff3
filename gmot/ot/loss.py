"""``GMOTLoss``: the GM-OT knowledge-transfer loss between acoustic and linguistic sequences.

Builds, per utterance, the node cost ``M = D_AL`` (``1 - cos``), the edge costs ``C1 = D_A``,
``C2 = D_L`` (optionally with relative temporal distances mixed in), uniform weights over the
valid frames/tokens (zero on padding), optionally the TOT temporal term, and solves the batched
entropic FGW problem (:func:`gmot.ot.fused_gromov_wasserstein`).

Diagnostics for logging: after every forward the module stores a dict of *detached* values in
``loss_module.last_diagnostics`` (also returned as a third output with
``forward(..., return_diagnostics=True)``):

- ``"fgw"`` ``(B,)``: the loss itself, ``alpha * gw + (1 - alpha) * wd`` (+ mass penalty;
  + the entropic term when ``value="entropic"``);
- ``"entropic_term"`` ``(B,)``: ``epsilon * sum T log(T / P)`` at the plan. With
  ``solver="pgd"`` and ``grad="envelope"`` the gradient is that of ``fgw + entropic_term`` (the
  entropic objective the solver minimises), whichever ``value`` is logged as the loss;
- ``"wd"`` ``(B,)``: the Wasserstein (node) part ``<D_AL, T>`` (unweighted);
- ``"gw"`` ``(B,)``: the Gromov-Wasserstein (edge) part (unweighted; 0 when ``alpha = 0``);
- ``"plan_entropy"`` ``(B,)``: ``-sum T log T`` of the plan (nats; ``log(La Lt)`` is uniform);
- ``"marginal_err"`` ``(B,)``: L1 error of the plan's row marginals ``sum_i |T 1 - a|``;
- ``"mass_penalty"`` ``(B,)`` or ``None``: KL mass penalty (unbalanced only; part of the loss);
- ``"outer_iters"``, ``"inner_iters"`` (ints): iterations used (inner summed over outer).
"""

from __future__ import annotations

import torch
from torch import nn

from gmot.ot.costs import gmot_costs, lengths_to_mask, temporal_cost
from gmot.ot.fgw import fused_gromov_wasserstein
from gmot.ot.sinkhorn import autocast_off

__all__ = ["GMOTLoss"]


def _check_lens(name: str, lens: torch.Tensor, B: int, L: int) -> None:
    if bool((lens <= 0).any()):
        raise ValueError(
            f"{name} contains zero-length sequences at batch entries "
            f"{(lens <= 0).nonzero().flatten().tolist()}: {lens.tolist()}"
        )
    if bool((lens > L).any()):
        raise ValueError(f"{name} exceeds the padded length {L}: {lens.tolist()}")


class GMOTLoss(nn.Module):
    """Graph-matching OT loss (fused Gromov-Wasserstein between frames and tokens).

    Args:
        alpha: GW weight in ``[0, 1]``; ``0`` = plain Wasserstein OT loss of the earlier CAKT work,
            ``1`` = pure GW (structure only).
        epsilon: entropic regularisation (> 0) in cost units (costs are ``1 - cos`` in ``[0, 2]``).
        solver: ``"pgd"`` (entropic FGW) or ``"ppa"`` (proximal point, as ``ot.batch``).
        max_iter, tol: outer iterations / tolerance; max_iter_inner, tol_inner, check_every:
            inner Sinkhorn budget, tolerance and test period (see :mod:`gmot.ot.fgw`).
        inner_mode: ``"hybrid"`` (fast) or ``"log"`` Sinkhorn sweeps (same iterates).
        compile_inner: fuse the torch path's inner sweeps with ``torch.compile``.
        inner_kernel: ``"auto"`` (fused Triton Sinkhorn kernel on CUDA where it applies),
            ``"torch"`` or ``"triton"``; see :func:`gmot.ot.sinkhorn.sinkhorn_plan`.
        reg_marginals: unbalanced OT (later paper, arXiv 2509.05609): ``None`` = balanced;
            ``(rho, None)`` relaxes only the frame side with a KL mass penalty ``rho`` so that
            silence/noise frames need not be matched while every token is; ``rho`` relaxes both.
            The loss then includes the penalty (diagnostic ``"mass_penalty"``).
        edge_position_weight: ``w`` in ``[0, 1]``: edge costs become
            ``(1 - w) (1 - cos) + w |i - i'| / L`` (explicit temporal/sequential relation).
        temporal_prior: ``None``, ``"kl"`` (TOT Gaussian prior as the entropic reference measure,
            ``epsilon KL(T | P)``; needs ``solver="pgd"``) or ``"cost"`` (add
            ``temporal_weight * l^2 / (2 sigma^2)`` to the node cost).
        temporal_sigma: TOT prior width ``sigma`` (see :func:`gmot.ot.costs.temporal_cost`).
        temporal_weight: weight of the ``"cost"`` form.
        grad: ``"envelope"`` (default: plan constant, gradient through the costs) or
            ``"autodiff"`` (unrolled).
        value: ``"fgw"`` (default: the loss excludes the entropic term; its envelope gradient
            is nevertheless that of the entropic objective) or ``"entropic"`` (loss =
            ``fgw + entropic_term``, the objective whose gradient ``grad="envelope"`` gives; same
            gradients, different logged value). See :mod:`gmot.ot.fgw`.
        warmstart, inner_order: inner Sinkhorn start and sweep order (see
            :func:`gmot.ot.fused_gromov_wasserstein`); defaults ``True`` and ``"uv"`` (the
            settings this loss has always used; ``fused_gromov_wasserstein`` defaults to POT's).
        check_inputs: check lengths (1..padded length) and finiteness of the valid features,
            raising a ``ValueError`` naming the argument (costs a few device synchronisations).

    Forward:
        h ``(B, La, D)`` acoustic features, h_lens ``(B,)``, z ``(B, Lt, D)`` linguistic features,
        z_lens ``(B,)`` -> ``(loss (B,), plans (B, La, Lt))`` in float32 (float64 if the input is).
        Gradients reach ``h`` and, when ``z.requires_grad``, ``z`` (pass a detached ``z`` for a
        frozen PLM). Padded positions receive exactly zero gradient. Diagnostics: see the module
        docstring (``last_diagnostics``).
    """

    def __init__(
        self,
        alpha: float = 0.5,
        epsilon: float = 0.1,
        *,
        solver: str = "pgd",
        max_iter: int = 10,
        tol: float = 1e-4,
        max_iter_inner: int = 50,
        tol_inner: float = 1e-4,
        check_every: int = 10,
        inner_mode: str = "hybrid",
        compile_inner: bool = False,
        inner_kernel: str = "auto",
        reg_marginals: float | tuple[float | None, float | None] | None = None,
        edge_position_weight: float = 0.0,
        temporal_prior: str | None = None,
        temporal_sigma: float = 1.0,
        temporal_weight: float = 1.0,
        grad: str = "envelope",
        check_inputs: bool = True,
        value: str = "fgw",
        warmstart: bool = True,
        inner_order: str = "uv",
    ) -> None:
        super().__init__()
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
        if not isinstance(epsilon, (int, float)) or not epsilon > 0.0:
            raise ValueError(f"epsilon must be a number > 0, got {epsilon!r}")
        if temporal_prior not in (None, "kl", "cost"):
            raise ValueError(f"temporal_prior must be None, 'kl' or 'cost', got {temporal_prior!r}")
        if temporal_prior == "kl" and solver != "pgd":
            raise ValueError("temporal_prior='kl' requires solver='pgd'")
        if not 0.0 <= edge_position_weight <= 1.0:
            raise ValueError(f"edge_position_weight must be in [0, 1], got {edge_position_weight}")
        if temporal_sigma <= 0:
            raise ValueError(f"temporal_sigma must be > 0, got {temporal_sigma}")
        self.alpha = float(alpha)
        self.epsilon = float(epsilon)
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.max_iter_inner = max_iter_inner
        self.tol_inner = tol_inner
        self.check_every = check_every
        self.inner_mode = inner_mode
        self.compile_inner = compile_inner
        self.inner_kernel = inner_kernel
        self.reg_marginals = reg_marginals
        self.edge_position_weight = edge_position_weight
        self.temporal_prior = temporal_prior
        self.temporal_sigma = temporal_sigma
        self.temporal_weight = temporal_weight
        self.grad = grad
        self.check_inputs = check_inputs
        self.value = value
        self.warmstart = warmstart
        self.inner_order = inner_order
        self.last_diagnostics: dict = {}

    def extra_repr(self) -> str:
        return (
            f"alpha={self.alpha}, epsilon={self.epsilon}, solver={self.solver!r}, "
            f"max_iter={self.max_iter}, max_iter_inner={self.max_iter_inner}, "
            f"temporal_prior={self.temporal_prior!r}"
        )

    @autocast_off
    def forward(
        self,
        h: torch.Tensor,
        h_lens: torch.Tensor,
        z: torch.Tensor,
        z_lens: torch.Tensor,
        return_diagnostics: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, dict]:
        if h.dim() != 3:
            raise ValueError(f"h must be (B, La, D), got shape {tuple(h.shape)}")
        if z.dim() != 3:
            raise ValueError(f"z must be (B, Lt, D), got shape {tuple(z.shape)}")
        B, La, D = h.shape
        if z.shape[0] != B:
            raise ValueError(f"batch sizes differ: h has B={B}, z has B={z.shape[0]}")
        if z.shape[2] != D:
            raise ValueError(
                f"feature dims differ: h has D={D}, z has D={z.shape[2]} (project first)"
            )
        Lt = z.shape[1]
        if La == 0 or Lt == 0:
            raise ValueError(f"zero-length padded inputs: h {tuple(h.shape)}, z {tuple(z.shape)}")
        for name, lens in (("h_lens", h_lens), ("z_lens", z_lens)):
            if lens.dim() != 1 or lens.shape[0] != B:
                raise ValueError(f"{name} must have shape ({B},), got {tuple(lens.shape)}")
        h_mask = lengths_to_mask(h_lens, La)
        z_mask = lengths_to_mask(z_lens, Lt)
        if self.check_inputs:
            _check_lens("h_lens", h_lens, B, La)
            _check_lens("z_lens", z_lens, B, Lt)
            for name, x, mask in (("h", h, h_mask), ("z", z, z_mask)):
                bad = (~torch.isfinite(x).all(-1) & mask).any(1)
                if bool(bad.any()):
                    raise ValueError(
                        f"{name} contains non-finite features in batch entries "
                        f"{bad.nonzero().flatten().tolist()}"
                    )
        dtype = torch.float64 if h.dtype == torch.float64 else torch.float32
        # Padded frames may hold anything (NaN included): zero them out without a gradient path.
        h = torch.where(h_mask[:, :, None], h.to(dtype), 0.0)
        z = torch.where(z_mask[:, :, None], z.to(dtype), 0.0)

        M, C1, C2 = gmot_costs(h, h_lens, z, z_lens, self.edge_position_weight)
        a = h_mask.to(dtype) / h_lens.to(dtype)[:, None]
        b = z_mask.to(dtype) / z_lens.to(dtype)[:, None]
        log_prior = None
        if self.temporal_prior is not None:
            t = temporal_cost(h_lens, z_lens, La, Lt, self.temporal_sigma, dtype=dtype)
            if self.temporal_prior == "kl":
                log_prior = -t
            else:
                M = M + self.temporal_weight * t

        res = fused_gromov_wasserstein(
            M,
            C1,
            C2,
            a,
            b,
            alpha=self.alpha,
            epsilon=self.epsilon,
            solver=self.solver,
            max_iter=self.max_iter,
            tol=self.tol,
            max_iter_inner=self.max_iter_inner,
            tol_inner=self.tol_inner,
            check_every=self.check_every,
            inner_mode=self.inner_mode,
            compile_inner=self.compile_inner,
            inner_kernel=self.inner_kernel,
            reg_marginals=self.reg_marginals,
            log_prior=log_prior,
            grad=self.grad,
            validate=False,
            # D_A, D_L are symmetric by construction: the symmetric gradient, no check.
            symmetric=True,
            value=self.value,
            warmstart=self.warmstart,
            inner_order=self.inner_order,
        )
        with torch.no_grad():
            T = res.plan.detach()
            ent = -(torch.xlogy(T, T)).sum((1, 2))
            diag = {
                "fgw": res.value.detach(),
                "wd": res.wd.detach(),
                "gw": res.gw.detach(),
                "plan_entropy": ent,
                "marginal_err": (T.sum(2) - a).abs().sum(1),
                "mass_penalty": None if res.mass_penalty is None else res.mass_penalty.detach(),
                "entropic_term": res.entropic_term.detach(),
                "outer_iters": res.n_outer,
                "inner_iters": res.n_inner,
            }
        self.last_diagnostics = diag
        if return_diagnostics:
            return res.value, res.plan, diag
        return res.value, res.plan
