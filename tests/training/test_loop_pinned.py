"""The training loop's numbers are pinned: the first 3 updates of a tiny transducer + CTC + GM-OT
model on tiny synthetic batches give these losses, validation loss and weights (checked before
and after refactoring ``gmot.training.loop``; any change to them is a change of behaviour).

Everything the loop does per batch runs here: the loss schedules, the update, the running
averaged model, logging (to a recording TensorBoard stand-in), validation and checkpoint saving.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import synthetic  # noqa: E402
from test_heads_train import tiny_config  # noqa: E402
from test_safeguards import loop_params  # noqa: E402

from gmot.models.asr_model import build_model  # noqa: E402
from gmot.optim import Eden, ScaledAdam  # noqa: E402
from gmot.training.loop import TrainState, train_one_epoch  # noqa: E402
from gmot.training.model_avg import make_averaged_model  # noqa: E402

# Recorded with gmot at 35e78b9 (before the loop was split into steps), CPU float32.
# train/current_loss (per frame) of updates 1, 2, 3:
PINNED_LOSS = [4.95102354537609, 5.0757926778590425, 4.846689147949219]
# best_valid_loss after the validation at update 2:
PINNED_VALID = 5.049100654069767
# sum of |w - w_initial| over the parameters after 3 updates, model and averaged model:
PINNED_MOVED = 981.1409441759739
PINNED_AVG_MOVED = 594.4778189640618


class _Recorder:
    """TensorBoard stand-in: keeps every scalar."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[tuple[int, float]]] = {}

    def add_scalar(self, name: str, value: float, step: int) -> None:
        self.scalars.setdefault(name, []).append((step, float(value)))


def _params(tmp_path: Path):
    p = loop_params(tmp_path, gmot_loss_scale=0.5, gmot_warmup_batches=2, warm_step=4)
    p.average_period, p.save_every_n, p.log_interval, p.valid_interval = 1, 2, 1, 2
    return p


def _run(tmp_path: Path) -> tuple[_Recorder, TrainState, float, float, list]:
    torch.manual_seed(0)
    utts = synthetic.make_utterances(12)
    batches = [synthetic.collate(utts[i : i + 4]) for i in (0, 4, 8)]
    cfg = tiny_config(use_transducer=True, use_ctc=True)
    cfg["gmot_plm_dim"] = synthetic.PLM_DIM
    model = build_model(cfg)
    model_avg = make_averaged_model(model)
    initial = {k: v.detach().clone().double() for k, v in model.named_parameters()}
    opt = ScaledAdam(list(model.named_parameters()), lr=0.05)
    sched = Eden(opt, lr_batches=1000, lr_epochs=100, warmup_batches=1, warmup_start=1.0)
    tb = _Recorder()
    state = TrainState()
    saved: list[Path] = []
    train_one_epoch(
        _params(tmp_path),
        model,
        model_avg,
        opt,
        sched,
        batches,
        [batches[0]],
        torch.device("cpu"),
        tb_writer=tb,
        save_fn=saved.append,
        state=state,
    )
    return tb, state, _moved(model, initial), _moved(model_avg, initial), saved


def _moved(m: torch.nn.Module, initial: dict[str, torch.Tensor]) -> float:
    """Sum over the parameters of ``|w - w_initial|`` (float64)."""
    moved = (p.detach().double() - initial[k] for k, p in m.named_parameters())
    return float(sum(d.abs().sum() for d in moved))


def test_first_updates_are_pinned(tmp_path):
    tb, state, moved, avg_moved, saved = _run(tmp_path)
    losses = [v for _, v in tb.scalars["train/current_loss"]]
    assert [b for b, _ in tb.scalars["train/current_loss"]] == [1, 2, 3]
    assert losses == pytest.approx(PINNED_LOSS, rel=1e-5)
    assert state.best_valid_loss == pytest.approx(PINNED_VALID, rel=1e-5)
    assert moved == pytest.approx(PINNED_MOVED, rel=1e-5)
    assert avg_moved == pytest.approx(PINNED_AVG_MOVED, rel=1e-5)
    assert (state.batch_idx_train, state.batch_idx_epoch) == (3, 3)
    assert saved == [tmp_path / "checkpoint-2.pt"]
    assert [b for b, _ in tb.scalars["valid/loss"]] == [2]
    assert [v for _, v in tb.scalars["train/gmot_scale"]] == pytest.approx([0.25, 0.5, 0.5])
