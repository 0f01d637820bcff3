"""Eden schedule against hand-computed values."""

import argparse

import pytest
import torch

from gmot.optim import Eden, ScaledAdam, add_optim_arguments, eden_lr


def _opt(lr=0.045):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def test_eden_hand_values():
    opt = _opt()
    sched = Eden(opt, lr_batches=7500, lr_epochs=3.5)
    assert sched.get_last_lr() == pytest.approx([0.045 * 0.5])  # warmup start
    sched.step_batch(250)
    w = 0.75
    f = ((250**2 + 7500**2) / 7500**2) ** -0.25
    assert opt.param_groups[0]["lr"] == pytest.approx(0.045 * w * f)
    sched.step_batch(7500)
    sched.step_epoch(3.5)
    assert sched.get_last_lr()[0] == pytest.approx(0.045 / 2**0.5)  # 2^-0.25 * 2^-0.25
    sched.step_batch()
    assert sched.batch == 7501
    sched.step_epoch()
    assert sched.epoch == 4.5


def test_eden_warmup_start_and_function():
    assert eden_lr(1.0, 0, 0, 10, 10, warmup_batches=100, warmup_start=0.1) == pytest.approx(0.1)
    assert eden_lr(1.0, 50, 0, 1e9, 10, 100, 0.1) == pytest.approx(0.55)
    # b = B and e = E: factor 2^-0.25 each; warm-up 0.5 + 0.5 * 100 / 500 = 0.6
    assert eden_lr(2.0, 100, 10, 100, 10) == pytest.approx(2.0 * 2**-0.5 * 0.6)


def test_eden_state_dict_roundtrip():
    a = Eden(_opt(), 100, 2)
    a.step_batch(37)
    a.step_epoch(3)
    b = Eden(_opt(), 5000, 7)
    b.load_state_dict(a.state_dict())
    assert b.get_last_lr() == pytest.approx(a.get_last_lr())
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(a.get_last_lr()[0])


def test_eden_with_scaled_adam_and_args():
    parser = add_optim_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--lr-epochs", "18"])
    assert (args.base_lr, args.lr_batches, args.lr_epochs) == (0.045, 7500, 18.0)
    p = torch.nn.Parameter(torch.ones(3))
    opt = ScaledAdam([p], lr=args.base_lr)
    Eden(opt, args.lr_batches, args.lr_epochs)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0225)
    with pytest.raises(ValueError):
        Eden(opt, 0, 1)
