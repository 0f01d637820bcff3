"""Optimisers and schedules: :class:`ScaledAdam` and the :class:`Eden` lr schedule."""

from gmot.optim.eden import Eden, add_optim_arguments, eden_lr
from gmot.optim.scaled_adam import ScaledAdam

__all__ = ["Eden", "ScaledAdam", "add_optim_arguments", "eden_lr"]
