"""GM-OT: graph-matching optimal transport (fused Gromov-Wasserstein) between acoustic frames and
language-model token features.

Public API:

- :func:`fused_gromov_wasserstein` (batched entropic FGW / GW / OT solver) and :class:`FGWResult`;
- :func:`sinkhorn` (batched log-domain entropic OT) and :class:`SinkhornResult`;
- :class:`GMOTLoss` (the training loss module, with diagnostics) and its settings
  :class:`GMOTConfig`; :func:`solve_fgw` with :class:`FGWOptions` (the solver's settings in one
  object);
- cost builders :func:`node_cost`, :func:`edge_cost`, :func:`temporal_cost`, :func:`cosine_cost`;
- :func:`plot_transport_plan` (alignment heatmap PNG).
"""

from gmot.ot.config import GMOTConfig
from gmot.ot.costs import (
    center_features,
    cosine_cost,
    edge_cost,
    gmot_costs,
    lengths_to_mask,
    node_cost,
    relative_position_distance,
    temporal_cost,
)
from gmot.ot.fgw import (
    FGWOptions,
    FGWResult,
    fused_gromov_wasserstein,
    gw_gradient,
    gw_value,
    solve_fgw,
)
from gmot.ot.loss import GMOTLoss
from gmot.ot.plot import plot_transport_plan
from gmot.ot.sinkhorn import SinkhornResult, log_sinkhorn, sinkhorn

__all__ = [
    "FGWOptions",
    "FGWResult",
    "GMOTConfig",
    "GMOTLoss",
    "SinkhornResult",
    "center_features",
    "cosine_cost",
    "edge_cost",
    "fused_gromov_wasserstein",
    "gmot_costs",
    "gw_gradient",
    "gw_value",
    "lengths_to_mask",
    "log_sinkhorn",
    "node_cost",
    "plot_transport_plan",
    "relative_position_distance",
    "sinkhorn",
    "solve_fgw",
    "temporal_cost",
]
