"""Running averaged model (icefall convention): ``model_avg`` is the mean of the model sampled every
``average_period`` batches since the start of training.

At batch ``n`` (a multiple of ``average_period``)::

    model_avg = model_avg * (1 - p / n) + model * (p / n),   p = average_period

which keeps ``model_avg`` equal to the mean of the ``n / p`` samples taken so far (the first
sample, at ``n = p``, replaces the initial copy). Averages are kept in float64.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def make_averaged_model(model: nn.Module) -> nn.Module:
    """A float64 CPU copy of ``model`` (unwrapped from DDP) used as the running average."""
    inner = model.module if hasattr(model, "module") else model
    avg = copy.deepcopy(inner).to("cpu").to(torch.float64)
    avg.requires_grad_(False)
    return avg


@torch.no_grad()
def update_averaged_model(
    model_avg: nn.Module, model: nn.Module, batch_idx_train: int, average_period: int
) -> None:
    """In-place running-mean update (see module docstring). ``batch_idx_train`` >= 1 counts the
    batches trained so far; call when it is a multiple of ``average_period``."""
    if batch_idx_train < 1 or average_period < 1:
        raise ValueError(
            f"batch_idx_train ({batch_idx_train}) and average_period ({average_period}) "
            "must be >= 1"
        )
    weight = average_period / batch_idx_train
    inner = model.module if hasattr(model, "module") else model
    cur = inner.state_dict()
    for k, v in model_avg.state_dict().items():
        src = cur[k].detach().to("cpu")
        if torch.is_floating_point(v):
            v.mul_(1.0 - weight).add_(src.to(v.dtype), alpha=weight)
        else:
            v.copy_(src)
