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


def _run_epochs(sched, batches_per_epoch, stop=None):
    """Drive ``sched`` as the training loop does; returns {(epoch, batch_in_epoch): lr}."""
    lrs = {}
    b = 0
    for e, n in enumerate(batches_per_epoch):
        sched.step_epoch(e)
        for i in range(n):
            b += 1
            sched.step_batch(b)
            lrs[(e + 1, i + 1)] = sched.get_last_lr()[0]
            if stop is not None and (e + 1, i + 1) == stop:
                return lrs
    return lrs


def test_eden_cooldown_is_linear_over_the_last_epochs():
    # Eden's own factors switched off (huge constants, no warm-up): only the cooldown remains.
    sched = Eden(_opt(1.0), 1e12, 1e12, warmup_batches=0, cooldown_epochs=2, num_epochs=4)
    lrs = _run_epochs(sched, [10, 10, 10, 10])
    assert lrs[(1, 10)] == pytest.approx(1.0)
    assert lrs[(2, 10)] == pytest.approx(1.0)  # position 2.0 = N - C: the cooldown starts
    # in epoch 3 after 5 of 10 batches the position is 2.5: (4 - 2.5) / 2 = 0.75
    assert lrs[(3, 5)] == pytest.approx(0.75)
    assert lrs[(4, 5)] == pytest.approx(0.25)
    assert lrs[(4, 10)] == pytest.approx(0.0)


def test_eden_cooldown_final_and_uneven_epochs():
    sched = Eden(
        _opt(2.0), 1e12, 1e12, warmup_batches=0, cooldown_epochs=1, num_epochs=3, cooldown_final=0.1
    )
    # epochs of 8 and 12 batches: the third epoch's clock uses their mean, 10 batches
    lrs = _run_epochs(sched, [8, 12, 14])
    assert lrs[(3, 4)] == pytest.approx(2.0 * (0.1 + 0.9 * 0.6))
    assert lrs[(3, 10)] == pytest.approx(2.0 * 0.1)
    assert lrs[(3, 14)] == pytest.approx(2.0 * 0.1)  # a longer epoch stays at the floor


def test_eden_cooldown_multiplies_eden():
    a = Eden(_opt(), 100, 2, cooldown_epochs=1, num_epochs=2)
    b = Eden(_opt(), 100, 2)
    la, lb = _run_epochs(a, [6, 6]), _run_epochs(b, [6, 6])
    assert la[(1, 6)] == pytest.approx(lb[(1, 6)])
    assert la[(2, 3)] == pytest.approx(lb[(2, 3)] * 0.5)


def test_eden_cooldown_resumes_mid_epoch():
    kw = dict(warmup_batches=0, cooldown_epochs=2, num_epochs=3)
    full = _run_epochs(Eden(_opt(), 100, 2, **kw), [10, 10, 10])
    a = Eden(_opt(), 100, 2, **kw)
    _run_epochs(a, [10, 10, 10], stop=(2, 4))
    b = Eden(_opt(), 100, 2, **kw)
    b.load_state_dict(a.state_dict())
    for i in range(5, 11):  # the rest of epoch 2, as the loop does after a mid-epoch resume
        b.step_batch(10 + i)
        assert b.get_last_lr()[0] == pytest.approx(full[(2, i)])


def test_eden_cooldown_refuses_impossible_settings():
    with pytest.raises(ValueError, match="num_epochs >= cooldown"):
        Eden(_opt(), 100, 2, cooldown_epochs=4, num_epochs=4)
    with pytest.raises(ValueError, match="cooldown_final"):
        Eden(_opt(), 100, 2, cooldown_epochs=1, num_epochs=4, cooldown_final=1.5)
    args = add_optim_arguments(argparse.ArgumentParser()).parse_args([])
    assert (args.lr_cooldown_epochs, args.lr_cooldown_final) == (0.0, 0.0)
