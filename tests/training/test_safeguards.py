"""Non-finite losses are skipped and counted; persistent ones stop training; an exception saves
the offending batch; the per-frame metrics and the GM-OT warm-up."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import synthetic  # noqa: E402
from test_heads_train import make_params, tiny_config  # noqa: E402

from gmot.models.asr_model import build_model  # noqa: E402
from gmot.optim import Eden, ScaledAdam  # noqa: E402
from gmot.training.loop import MetricsTracker, gmot_scale, train_one_epoch  # noqa: E402
from gmot.training.safeguards import NonFiniteGuard, TooManyNonFiniteLosses  # noqa: E402


def test_guard_counts_and_stops(caplog):
    g = NonFiniteGuard(max_consecutive=2)
    with caplog.at_level(logging.WARNING):
        assert g.check(torch.tensor(1.0), 1)
        assert not g.check(torch.tensor(float("nan")), 2, ["cutA"])
        assert "cutA" in caplog.text and "skipping" in caplog.text
        assert g.check(torch.tensor(2.0), 3)  # resets the run
        assert not g.check(torch.tensor(float("inf")), 4)
        assert not g.check(torch.tensor(float("inf")), 5)
        with pytest.raises(TooManyNonFiniteLosses, match="3 consecutive"):
            g.check(torch.tensor(float("inf")), 6)
    assert g.total == 4


def test_gmot_warmup_and_off():
    p = argparse.Namespace(gmot_loss_scale=0.4, gmot_warmup_batches=100)
    assert gmot_scale(p, 0) == 0.0
    assert gmot_scale(p, 50) == pytest.approx(0.2)
    assert gmot_scale(p, 500) == pytest.approx(0.4)
    assert gmot_scale(argparse.Namespace(gmot_loss_scale=0.0), 500) == 0.0


def test_metrics_per_frame():
    m = MetricsTracker()
    m.add({"simple": 10.0, "frames": 5.0, "gmot_distance": 3.0, "gmot_utts": 2.0})
    m.add({"simple": 2.0, "frames": 1.0, "gmot_distance": 1.0, "gmot_utts": 2.0})
    assert m.norm() == {"simple": 2.0, "gmot_distance": 1.0}


def test_metrics_gmot_convergence_per_solve():
    m = MetricsTracker()
    for unconv, iters in ((1.0, 10.0), (0.0, 4.0), (0.0, 1.0)):
        m.add(
            {
                "frames": 3.0,
                "gmot_unconverged": unconv,
                "gmot_outer_iters": iters,
                "gmot_batches": 1.0,
            }
        )
    assert m.norm() == pytest.approx({"gmot_unconverged": 1 / 3, "gmot_outer_iters": 5.0})


def loop_params(tmp_path, **kw):
    p = make_params(**kw)
    for k, v in dict(
        exp_dir=tmp_path,
        max_nonfinite_batches=1,
        reset_interval=200,
        average_period=100,
        save_every_n=0,
        log_interval=100,
        plot_plan_interval=0,
        valid_interval=0,
        max_batches=0,
    ).items():
        setattr(p, k, v)
    return p


def _setup():
    model = build_model(tiny_config(use_transducer=False, use_ctc=True))
    opt = ScaledAdam(list(model.named_parameters()), lr=0.05)
    return model, opt, Eden(opt, 1000, 100)


def test_nonfinite_batches_are_skipped_then_training_stops(tmp_path):
    model, opt, sched = _setup()
    utts = synthetic.make_utterances(8)
    good = synthetic.collate(utts[:4])
    bad = synthetic.collate(utts[4:])
    bad["features"][0, 5, 3] = float("nan")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    p = loop_params(tmp_path)
    # one bad batch is skipped without touching the parameters
    train_one_epoch(p, model, None, opt, sched, [bad], None, torch.device("cpu"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    # bad batches in a row beyond the limit stop training with a clear message
    with pytest.raises(TooManyNonFiniteLosses, match="max-nonfinite-batches"):
        train_one_epoch(p, model, None, opt, sched, [good, bad, bad], None, torch.device("cpu"))


def test_exception_saves_offending_batch(tmp_path):
    model, opt, sched = _setup()
    batch = synthetic.collate(synthetic.make_utterances(4))
    batch["token_ids"][1] = [999]  # out of vocabulary -> error inside the model
    p = loop_params(tmp_path)
    with pytest.raises(ValueError, match="token_ids"):
        train_one_epoch(p, model, None, opt, sched, [batch], None, torch.device("cpu"))
    saved = torch.load(tmp_path / "bad-batch-1.pt", weights_only=False)
    assert saved["batch"]["token_ids"][1] == [999]
    assert set(saved["model"]) == set(model.state_dict())


class _FakeScaler:
    def __init__(self, scale: float) -> None:
        self.scale = scale

    def is_enabled(self) -> bool:
        return True

    def get_scale(self) -> float:
        return self.scale

    def update(self, new_scale: float) -> None:
        self.scale = new_scale


def test_grad_scale_watchdog():
    from gmot.training.safeguards import grad_scale_watchdog

    s = _FakeScaler(4.0)
    grad_scale_watchdog(s, 100)
    assert s.scale == 8.0  # small scales are pushed back up
    s = _FakeScaler(16.0)
    grad_scale_watchdog(s, 100)
    assert s.scale == 16.0
    grad_scale_watchdog(s, 400)
    assert s.scale == 32.0
    with pytest.raises(RuntimeError, match="diverged"):
        grad_scale_watchdog(_FakeScaler(1e-6), 100)
