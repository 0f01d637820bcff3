"""``GMOTConfig``: every setting of the GM-OT loss and its solver, declared once.

Each field carries its ``--gmot-*`` flag (:func:`gmot.settings.setting`); the training parser
is generated from this class, the model config stores it (as a plain dict in checkpoints) and
:class:`gmot.ot.GMOTLoss` takes it. See ``docs/method.md`` for what the settings do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from gmot.ot.fgw import FGWOptions
from gmot.settings import setting

__all__ = ["GMOTConfig"]


def _rho_to_reg(rho: float) -> tuple[float, None] | None:
    """``--gmot-unbalanced-rho``: ``<= 0`` = balanced, else relax only the frame side."""
    return None if rho <= 0 else (rho, None)


def _prior_from_flag(name: str) -> str | None:
    return None if name == "none" else name


@dataclass(frozen=True)
class GMOTConfig:
    """Settings of :class:`gmot.ot.GMOTLoss` (loss and FGW solver).

    The defaults are the settings GM-OT training has used (they differ from
    :func:`gmot.ot.fused_gromov_wasserstein`'s POT defaults in ``tol``, ``tol_inner``,
    ``warmstart`` and ``inner_order``). Build one from flags with
    ``gmot.settings.from_flags(GMOTConfig, args)``, from a stored dict with :meth:`from_dict`.
    """

    alpha: float = setting(0.5, "GW weight alpha in [0, 1] (0 = OT only).", flag="--gmot-alpha")
    epsilon: float = setting(
        0.1,
        "Entropic regularisation (> 0), in cost units (costs are 1 - cos, in [0, 2]).",
        flag="--gmot-epsilon",
    )
    solver: str = setting(
        "pgd",
        "FGW solver: pgd (entropic FGW) or ppa (proximal point, tends to unregularised FGW).",
        flag="--gmot-solver",
        choices=("pgd", "ppa"),
    )
    max_iter: int = setting(10, "FGW outer iterations.", flag="--gmot-max-iter")
    tol: float = setting(
        1e-4, "FGW outer tolerance on max_b sum |T_k+1 - T_k| (<= 0: no test).", flag="--gmot-tol"
    )
    max_iter_inner: int = setting(50, "Sinkhorn inner iterations.", flag="--gmot-max-iter-inner")
    tol_inner: float = setting(
        1e-4, "Sinkhorn tolerance on the marginal error (<= 0: no test).", flag="--gmot-tol-inner"
    )
    check_every: int = setting(
        10, "Test the Sinkhorn tolerance every N sweeps.", flag="--gmot-check-every"
    )
    inner_mode: str = setting(
        "hybrid",
        "Sinkhorn sweeps: hybrid (fast, scaling form) or log (log-domain; same iterates).",
        flag="--gmot-inner-mode",
        choices=("hybrid", "log"),
    )
    compile_inner: bool = setting(
        False,
        "Fuse the torch path's Sinkhorn sweeps with torch.compile.",
        flag="--gmot-compile-inner",
    )
    inner_kernel: str = setting(
        "auto",
        "Sinkhorn implementation: auto = the fused Triton kernel on CUDA where it applies "
        "(balanced OT, tile <= 1024 x 32 frames x tokens), else torch; torch; triton (or fail).",
        flag="--gmot-inner-kernel",
        choices=("auto", "torch", "triton"),
    )
    reg_marginals: float | tuple[float | None, float | None] | None = setting(
        None,
        "> 0: unbalanced OT relaxing the frame side with this KL mass penalty.",
        flag="--gmot-unbalanced-rho",
        type=float,
        flag_default=0.0,
        from_flag=_rho_to_reg,
    )
    edge_position_weight: float = setting(
        0.0,
        "Mix |i - i'| / L into the edge (structure) costs with this weight in [0, 1].",
        flag="--gmot-edge-position-weight",
    )
    temporal_prior: str | None = setting(
        None,
        "TOT temporal prior: none, kl (prior as reference measure; pgd only) or cost.",
        flag="--gmot-temporal-prior",
        type=str,
        choices=("none", "kl", "cost"),
        flag_default="none",
        from_flag=_prior_from_flag,
    )
    temporal_sigma: float = setting(1.0, "TOT prior width.", flag="--gmot-temporal-sigma")
    temporal_weight: float = setting(
        1.0, "Weight of the 'cost' prior.", flag="--gmot-temporal-weight"
    )
    grad: str = setting(
        "envelope",
        "Gradient: envelope (plan constant; the gradient of the entropic objective), autodiff "
        "(unrolled through the iterations) or detach (none).",
        flag="--gmot-grad",
        choices=("envelope", "autodiff", "detach"),
    )
    value: str = setting(
        "fgw",
        "Logged loss value: fgw (without the entropic term) or entropic (with it; same "
        "gradient under --gmot-grad envelope).",
        flag="--gmot-value",
        choices=("fgw", "entropic"),
    )
    warmstart: bool = setting(
        True,
        "Start each inner Sinkhorn from the previous outer iteration's potentials.",
        flag="--gmot-warmstart",
    )
    inner_order: str = setting(
        "uv",
        "Which Sinkhorn potential each sweep updates first: uv (as ot.batch) or vu (ot.sinkhorn).",
        flag="--gmot-inner-order",
        choices=("uv", "vu"),
    )
    check_inputs: bool = setting(
        True,
        "Check lengths and finiteness of the loss inputs (a few device synchronisations).",
        flag="--gmot-check-inputs",
    )

    def __post_init__(self) -> None:
        if self.temporal_prior not in (None, "kl", "cost"):
            raise ValueError(
                f"temporal_prior must be None, 'kl' or 'cost', got {self.temporal_prior!r}"
            )
        if self.temporal_prior == "kl" and self.solver != "pgd":
            raise ValueError("temporal_prior='kl' requires solver='pgd'")
        if not 0.0 <= self.edge_position_weight <= 1.0:
            raise ValueError(
                f"edge_position_weight must be in [0, 1], got {self.edge_position_weight}"
            )
        if self.temporal_sigma <= 0:
            raise ValueError(f"temporal_sigma must be > 0, got {self.temporal_sigma}")
        self.fgw_options().check()

    def fgw_options(self) -> FGWOptions:
        """The solver's options (``validate=False``: the loss checks its own inputs;
        ``symmetric=True``: the loss's structure costs are symmetric by construction)."""
        return FGWOptions(
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
            symmetric=True,
            grad=self.grad,
            validate=False,
            value=self.value,
            inner_order=self.inner_order,
            warmstart=self.warmstart,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (what checkpoints store)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GMOTConfig:
        """From a (possibly partial, possibly older) dict: missing keys take the defaults.

        Raises:
            ValueError: naming unknown keys.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"GM-OT loss config has unknown keys {sorted(unknown)}; known: {sorted(names)}"
            )
        kw = dict(d)
        if isinstance(kw.get("reg_marginals"), list):
            kw["reg_marginals"] = tuple(kw["reg_marginals"])
        return cls(**kw)
