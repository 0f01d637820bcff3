"""``GMOTLoss``: the GM-OT knowledge-transfer loss between acoustic and linguistic sequences.

Builds, per utterance, the node cost ``M = D_AL`` (``1 - cos``), the edge costs ``C1 = D_A``,
``C2 = D_L`` (optionally with relative temporal distances mixed in), uniform weights over the
valid frames/tokens (zero on padding), optionally the TOT temporal term, and solves the batched
entropic FGW problem (:func:`gmot.ot.fused_gromov_wasserstein`).

Settings: one :class:`gmot.ot.GMOTConfig` (``GMOTLoss(config)``); the keyword form
``GMOTLoss(alpha=..., epsilon=..., max_iter=...)`` builds the same config.

Diagnostics for logging: ``forward(..., return_diagnostics=True)`` returns, as a third output, a
dict of *detached* values:

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
- ``"outer_iters"``, ``"inner_iters"`` (ints): iterations used (inner summed over outer);
- ``"outer_converged"`` (bool): the outer loop's last change of the plan reached ``tol``
  (False when it stopped at ``max_iter``, or when the change was not measured).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from gmot.ot.config import GMOTConfig
from gmot.ot.costs import gmot_costs, lengths_to_mask, temporal_cost
from gmot.ot.fgw import solve_fgw
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
        config: a :class:`gmot.ot.GMOTConfig` (each field documented there and in
            ``docs/method.md``). For the keyword form, leave it out (or pass ``alpha`` as the
            first positional argument, as before) and give the fields as keywords:
            ``GMOTLoss(alpha=0.5, epsilon=0.1, max_iter=20)``.
        epsilon, **settings: the other :class:`GMOTConfig` fields (keyword form only).

    Main fields: ``alpha`` GW weight in ``[0, 1]`` (``0`` = plain Wasserstein OT of the earlier
    CAKT work, ``1`` = pure GW); ``epsilon`` entropic regularisation in cost units (costs are
    ``1 - cos`` in ``[0, 2]``); ``reg_marginals`` unbalanced OT (``(rho, None)`` relaxes only the
    frame side so silence need not be matched, and the loss includes the KL mass penalty);
    ``edge_position_weight``, ``temporal_prior``/``temporal_sigma``/``temporal_weight`` (TOT
    prior); solver budget ``max_iter``, ``tol``, ``max_iter_inner``, ``tol_inner``; ``grad``,
    ``value``, ``warmstart``, ``inner_order`` (see :func:`gmot.ot.fused_gromov_wasserstein`).

    Forward:
        h ``(B, La, D)`` acoustic features, h_lens ``(B,)``, z ``(B, Lt, D)`` linguistic features,
        z_lens ``(B,)`` -> ``(loss (B,), plans (B, La, Lt))`` in float32 (float64 if the input is),
        plus the diagnostics dict (module docstring) with ``return_diagnostics=True``.
        Gradients reach ``h`` and, when ``z.requires_grad``, ``z`` (pass a detached ``z`` for a
        frozen PLM). Padded positions receive exactly zero gradient.
    """

    def __init__(
        self,
        config: GMOTConfig | float | None = None,
        epsilon: float | None = None,
        **settings: Any,
    ) -> None:
        super().__init__()
        if isinstance(config, GMOTConfig):
            if epsilon is not None or settings:
                raise TypeError(
                    "GMOTLoss(config) takes no further settings; use "
                    "dataclasses.replace(config, ...) to change one"
                )
        else:
            if config is not None:
                settings["alpha"] = config  # the old positional form GMOTLoss(alpha, epsilon)
            if epsilon is not None:
                settings["epsilon"] = epsilon
            config = GMOTConfig(**settings)
        self.config: GMOTConfig = config
        self._options = config.fgw_options()

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"alpha={c.alpha}, epsilon={c.epsilon}, solver={c.solver!r}, "
            f"max_iter={c.max_iter}, max_iter_inner={c.max_iter_inner}, "
            f"temporal_prior={c.temporal_prior!r}"
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
        cfg = self.config
        if cfg.check_inputs:
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

        M, C1, C2 = gmot_costs(h, h_lens, z, z_lens, cfg.edge_position_weight)
        a = h_mask.to(dtype) / h_lens.to(dtype)[:, None]
        b = z_mask.to(dtype) / z_lens.to(dtype)[:, None]
        log_prior = None
        if cfg.temporal_prior is not None:
            t = temporal_cost(h_lens, z_lens, La, Lt, cfg.temporal_sigma, dtype=dtype)
            if cfg.temporal_prior == "kl":
                log_prior = -t
            else:
                M = M + cfg.temporal_weight * t

        # D_A, D_L are symmetric by construction: the symmetric gradient, no check.
        res = solve_fgw(M, C1, C2, a, b, self._options, log_prior=log_prior)
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
                "outer_converged": bool(res.outer_err <= cfg.tol),
            }
        if return_diagnostics:
            return res.value, res.plan, diag
        return res.value, res.plan
