"""The Eden learning-rate schedule and the icefall-style command-line options.

``lr = base_lr * ((b^2 + B^2) / B^2) ** -0.25 * ((e^2 + E^2) / E^2) ** -0.25 * warmup(b)`` with
b the batch index, e the epoch, B = ``lr_batches``, E = ``lr_epochs`` and ``warmup(b)`` rising
linearly from ``warmup_start`` at b = 0 to 1 at b = ``warmup_batches`` (1 afterwards).

Optional cooldown for a run of known length (``cooldown_epochs`` C > 0 and ``num_epochs`` N):
over the last C epochs the lr is further multiplied by a factor falling linearly from 1 to
``cooldown_final``, by the position in training in epochs, ``p = e + (batches done in this
epoch) / (batches per epoch)``: ``cooldown(p) = final + (1 - final) * clip((N - p) / C, 0, 1)``.
Batches per epoch are those of the completed epochs (averaged), so the cooldown can begin in
epoch 2 at the earliest (C <= N - 1). A budgeted run ends at a small learning rate instead of
wherever Eden's slow decay has reached, so its final weights need less averaging.
"""

from __future__ import annotations

import argparse

import torch

__all__ = ["Eden", "eden_lr", "cooldown_factor", "add_optim_arguments"]


def eden_lr(
    base_lr: float,
    batch: float,
    epoch: float,
    lr_batches: float,
    lr_epochs: float,
    warmup_batches: float = 500.0,
    warmup_start: float = 0.5,
) -> float:
    """The Eden learning rate for one base lr (see the module docstring)."""
    factor = ((batch**2 + lr_batches**2) / lr_batches**2) ** -0.25
    factor *= ((epoch**2 + lr_epochs**2) / lr_epochs**2) ** -0.25
    if warmup_batches > 0 and batch < warmup_batches:
        factor *= warmup_start + (1.0 - warmup_start) * batch / warmup_batches
    return base_lr * factor


def cooldown_factor(
    position: float, num_epochs: float, cooldown_epochs: float, final: float
) -> float:
    """The cooldown multiplier at ``position`` (epochs done, fractional; see the module
    docstring)."""
    if cooldown_epochs <= 0:
        return 1.0
    remaining = min(max((num_epochs - position) / cooldown_epochs, 0.0), 1.0)
    return final + (1.0 - final) * remaining


class Eden:
    """Eden schedule driving every param group's ``lr`` of ``optimizer``.

    The base lr of each group is its ``lr`` when the scheduler is created. Call
    :meth:`step_batch` after every optimiser step and :meth:`step_epoch` at the start of each
    epoch (icefall convention: ``step_epoch(epoch - 1)`` before epoch ``epoch``, 1-based).
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        lr_batches: float,
        lr_epochs: float,
        warmup_batches: float = 500.0,
        warmup_start: float = 0.5,
        cooldown_epochs: float = 0.0,
        num_epochs: float = 0.0,
        cooldown_final: float = 0.0,
    ) -> None:
        if cooldown_epochs < 0:
            raise ValueError(f"cooldown_epochs must be >= 0, got {cooldown_epochs}")
        if cooldown_epochs > 0 and cooldown_epochs > num_epochs - 1:
            raise ValueError(
                f"a cooldown of {cooldown_epochs} epochs needs num_epochs >= cooldown + 1 (the "
                f"first epoch measures how many batches an epoch has), got num_epochs={num_epochs}"
            )
        if not 0.0 <= cooldown_final <= 1.0:
            raise ValueError(f"cooldown_final must lie in [0, 1], got {cooldown_final}")
        if lr_batches <= 0 or lr_epochs <= 0:
            raise ValueError(f"lr_batches and lr_epochs must be > 0, got {lr_batches}, {lr_epochs}")
        if not 0.0 <= warmup_start <= 1.0:
            raise ValueError(f"warmup_start must lie in [0, 1], got {warmup_start}")
        self.optimizer = optimizer
        self.lr_batches = float(lr_batches)
        self.lr_epochs = float(lr_epochs)
        self.warmup_batches = float(warmup_batches)
        self.warmup_start = float(warmup_start)
        self.cooldown_epochs = float(cooldown_epochs)
        self.num_epochs = float(num_epochs)
        self.cooldown_final = float(cooldown_final)
        self.epoch_start_batch = 0
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
        self.base_lrs = [group["base_lr"] for group in optimizer.param_groups]
        self.batch = 0
        self.epoch = 0
        self._apply()

    def position(self) -> float:
        """Epochs done, fractional: the epoch index plus the share of this epoch's batches done
        (batches per epoch = the mean over the completed epochs; 0 in the first epoch)."""
        if self.epoch < 1 or self.epoch_start_batch <= 0:
            return float(self.epoch)
        per_epoch = self.epoch_start_batch / self.epoch
        return self.epoch + (self.batch - self.epoch_start_batch) / per_epoch

    def get_lr(self) -> list[float]:
        cool = cooldown_factor(
            self.position(), self.num_epochs, self.cooldown_epochs, self.cooldown_final
        )
        return [
            cool
            * eden_lr(
                b,
                self.batch,
                self.epoch,
                self.lr_batches,
                self.lr_epochs,
                self.warmup_batches,
                self.warmup_start,
            )
            for b in self.base_lrs
        ]

    def _apply(self) -> None:
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last step, one per param group."""
        return list(self._last_lr)

    def step_batch(self, batch: int | None = None) -> None:
        """Advance to ``batch`` (default: the next batch) and update the lrs."""
        self.batch = self.batch + 1 if batch is None else batch
        self._apply()

    def step_epoch(self, epoch: float | None = None) -> None:
        """Advance to ``epoch`` (default: the next epoch) and update the lrs.

        Call it after the previous epoch's last :meth:`step_batch`: the batch count at this
        moment is where the new epoch starts (the cooldown's clock)."""
        self.epoch = self.epoch + 1 if epoch is None else epoch
        self.epoch_start_batch = self.batch
        self._apply()

    def state_dict(self) -> dict:
        return {
            "base_lrs": self.base_lrs,
            "batch": self.batch,
            "epoch": self.epoch,
            "lr_batches": self.lr_batches,
            "lr_epochs": self.lr_epochs,
            "warmup_batches": self.warmup_batches,
            "warmup_start": self.warmup_start,
            "cooldown_epochs": self.cooldown_epochs,
            "num_epochs": self.num_epochs,
            "cooldown_final": self.cooldown_final,
            "epoch_start_batch": self.epoch_start_batch,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        for key in ("base_lrs", "batch", "epoch", "lr_batches", "lr_epochs"):
            if key not in state_dict:
                raise KeyError(f"Eden state_dict lacks {key!r}")
        # The cooldown settings come from this run's options (a resume may change them); a
        # checkpoint written before the cooldown existed lacks epoch_start_batch.
        keep = {"optimizer", "cooldown_epochs", "num_epochs", "cooldown_final"}
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in keep})
        self._apply()


def add_optim_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--base-lr`` (0.045), ``--lr-batches`` (7500), ``--lr-epochs`` (3.5),
    ``--warmup-batches`` (500) and ``--warmup-start`` (0.5) to ``parser``."""
    parser.add_argument("--base-lr", type=float, default=0.045, help="The base learning rate.")
    parser.add_argument(
        "--lr-batches",
        type=float,
        default=7500,
        help="Eden batch constant (the B in ((b^2 + B^2) / B^2) ** -0.25).",
    )
    parser.add_argument(
        "--lr-epochs",
        type=float,
        default=3.5,
        help="The E in Eden's epoch factor ((e^2 + E^2) / E^2) ** -0.25 (18 for 60-epoch AISHELL).",
    )
    parser.add_argument("--warmup-batches", type=float, default=500.0, help="Eden warmup batches.")
    parser.add_argument("--warmup-start", type=float, default=0.5, help="Eden warmup start factor.")
    parser.add_argument(
        "--lr-cooldown-epochs",
        type=float,
        default=0.0,
        help="Over the last this many epochs of --num-epochs, multiply Eden's lr by a factor "
        "falling linearly from 1 to --lr-cooldown-final (0: no cooldown, Eden alone). At most "
        "--num-epochs - 1: the first epoch measures how many batches an epoch has.",
    )
    parser.add_argument(
        "--lr-cooldown-final",
        type=float,
        default=0.0,
        help="The cooldown factor reached at the end of the last epoch (0 to 1).",
    )
    return parser
