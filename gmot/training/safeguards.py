"""Training safeguards: non-finite losses, the fp16 grad-scale watchdog, saving a bad batch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn


class TooManyNonFiniteLosses(RuntimeError):
    """Raised when the loss is non-finite for too many consecutive batches."""


class NonFiniteGuard:
    """Counts non-finite losses; :meth:`check` returns False (skip the batch) on inf/nan.

    Raises :class:`TooManyNonFiniteLosses` after ``max_consecutive`` non-finite batches in a row.
    """

    def __init__(self, max_consecutive: int = 20) -> None:
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.total = 0

    def check(self, loss: torch.Tensor, batch_idx: int, cut_ids: list[str] | None = None) -> bool:
        if bool(torch.isfinite(loss.detach()).all()):
            self.consecutive = 0
            return True
        self.consecutive += 1
        self.total += 1
        logging.warning(
            "non-finite loss %s at batch %d (cuts %s); skipping it (%d in a row, %d in total)",
            loss.detach().float().item(),
            batch_idx,
            (cut_ids or [])[:4],
            self.consecutive,
            self.total,
        )
        if self.consecutive > self.max_consecutive:
            raise TooManyNonFiniteLosses(
                f"the loss was non-finite for {self.consecutive} consecutive batches (limit "
                f"{self.max_consecutive}, see --max-nonfinite-batches); stopping. Check the data "
                "(cuts listed above), lower --base-lr, or try --use-bf16 instead of --use-fp16."
            )
        return False


def grad_scale_watchdog(scaler: Any, batch_idx: int, min_scale: float = 1e-5) -> None:
    """icefall's fp16 watchdog: grow a small grad scale back, warn below 0.01, stop below
    ``min_scale`` (training has diverged)."""
    if scaler is None or not scaler.is_enabled():
        return
    cur = scaler.get_scale()
    if cur < 8.0 or (cur < 32.0 and batch_idx % 400 == 0):
        scaler.update(cur * 2.0)
    if cur < 0.01:
        logging.warning("grad scale is small: %s (batch %d)", cur, batch_idx)
    if cur < min_scale:
        raise RuntimeError(
            f"grad scale {cur} < {min_scale} at batch {batch_idx}: fp16 training diverged; "
            "try --use-bf16 or a lower --base-lr"
        )


def save_bad_batch(
    exp_dir: str | Path, batch: dict, model: nn.Module, batch_idx: int, rank: int | None = None
) -> Path:
    """Save ``batch`` and the model state dict to ``exp_dir/bad-batch-<idx>.pt`` (inspection)."""
    suffix = "" if rank is None else f"-rank{rank}"
    path = Path(exp_dir) / f"bad-batch-{batch_idx}{suffix}.pt"
    inner = model.module if hasattr(model, "module") else model
    cpu_batch = {
        k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in batch.items()
    }
    try:
        torch.save({"batch": cpu_batch, "model": inner.state_dict(), "batch_idx": batch_idx}, path)
        logging.error("saved the offending batch and model to %s", path)
    except Exception as exc:  # never mask the original error
        logging.error("could not save the offending batch to %s: %s", path, exc)
    return path
