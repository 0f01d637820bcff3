"""Tests of the Zipformer scaling tools against hand computations."""

import math

import pytest
import torch
from torch import nn

from gmot.models.zipformer.scaling import (
    Balancer,
    BiasNorm,
    ScheduledFloat,
    Whiten,
    set_batch_count,
    swoosh_l,
    swoosh_r,
)


@pytest.mark.parametrize("v", [-5.0, -1.0, 0.0, 0.5, 3.0, 10.0])
def test_swoosh_values(v):
    x = torch.tensor([v], dtype=torch.float64)
    r = math.log(1 + math.exp(v - 1)) - 0.08 * v - 0.313261687
    l_ = math.log(1 + math.exp(v - 4)) - 0.08 * v - 0.035
    assert float(swoosh_r(x)) == pytest.approx(r, abs=1e-12)
    assert float(swoosh_l(x)) == pytest.approx(l_, abs=1e-12)
    if v == 0.0:
        assert abs(float(swoosh_r(x))) < 1e-8


def test_biasnorm_hand():
    m = BiasNorm(3)
    with torch.no_grad():
        m.bias.copy_(torch.tensor([1.0, 0.0, -1.0]))
        m.log_scale.fill_(0.5)
    x = torch.tensor([[2.0, 3.0, 1.0]])
    rms = math.sqrt(((2 - 1) ** 2 + 3**2 + (1 + 1) ** 2) / 3)
    expected = [v * math.exp(0.5) / rms for v in (2.0, 3.0, 1.0)]
    assert m(x)[0].tolist() == pytest.approx(expected, rel=1e-6)
    with torch.no_grad():
        m.log_scale.fill_(5.0)  # clamped to 1.5
    assert m(x)[0].tolist() == pytest.approx(
        [v * math.exp(1.5) / rms for v in (2.0, 3.0, 1.0)], rel=1e-6
    )


def test_scheduled_float_and_set_batch_count():
    s = ScheduledFloat((0.0, 0.5), (100.0, 0.1), (200.0, 0.0))
    assert s.value(-5) == 0.5 and s.value(50) == pytest.approx(0.3)
    assert s.value(150) == pytest.approx(0.05) and s.value(1e6) == 0.0
    m = nn.Sequential(nn.Linear(2, 2))
    m[0].rate = s
    set_batch_count(m, 100.0)
    assert float(s) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        ScheduledFloat((1.0, 0.0), (1.0, 1.0))


def _grad_through(module, x, upstream):
    x = x.clone().requires_grad_(True)
    y = module(x)
    y.backward(upstream)
    return y.detach(), x.grad


def test_balancer_gradient_only():
    torch.manual_seed(0)
    x = torch.randn(200, 4)
    x[:, 0] = -x[:, 0].abs() - 0.1  # channel 0 never positive: violates min_positive
    up = torch.randn(200, 4)
    bal = Balancer(4, min_positive=0.05, max_positive=0.95, min_abs=0.01, prob=1.0)
    y_tr, g_tr = _grad_through(bal.train(), x, up)
    y_ev, g_ev = _grad_through(bal.eval(), x, up)
    assert torch.equal(y_tr, x) and torch.equal(y_ev, x)
    assert torch.equal(g_ev, up)  # eval: no effect at all
    diff = g_tr - up
    assert diff[:, 0].abs().sum() > 0
    assert (diff[:, 0] <= 1e-12).all()  # gradient descent pushes channel 0 up
    assert diff[:, 1:].abs().max() < 1e-6  # satisfied channels untouched
    # Added term has norm grad_scale * ||grad||.
    assert float(diff.norm()) == pytest.approx(0.04 * float(up.norm()), rel=1e-4)


def test_whiten_gradient_only_and_metric():
    torch.manual_seed(0)
    w = Whiten(num_groups=1, whitening_limit=1.5, prob=1.0, grad_scale=0.1)
    white = torch.randn(20000, 4)
    assert float(w.metric(white)) == pytest.approx(1.0, abs=0.05)
    rank1 = torch.randn(500, 1) * torch.tensor([[1.0, 2.0, -1.0, 0.5]])
    assert float(w.metric(rank1)) == pytest.approx(4.0, rel=1e-4)
    x = torch.randn(500, 4) @ torch.tensor(
        [[1.0, 0.9, 0.0, 0.0], [0.0, 0.3, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.2]]
    )
    up = torch.randn(500, 4)
    y_tr, g_tr = _grad_through(w.train(), x, up)
    y_ev, g_ev = _grad_through(w.eval(), x, up)
    assert torch.equal(y_tr, x) and torch.equal(y_ev, x) and torch.equal(g_ev, up)
    added = g_tr - up
    assert float(added.norm()) == pytest.approx(0.1 * float(up.norm()), rel=1e-4)
    assert float(w.metric(x - 0.05 * added)) < float(w.metric(x))  # step makes it whiter


def test_swoosh_gradients():
    # Stay clear of softplus' linear switch at x - shift = 20 (a 3e-9 step confuses gradcheck).
    x = torch.linspace(-15, 15, 41, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(swoosh_r, (x,))
    assert torch.autograd.gradcheck(swoosh_l, (x,))
    y = swoosh_r(torch.tensor([40.0], dtype=torch.float64))  # no overflow for large x
    assert float(y) == pytest.approx(39.0 - 3.2 - 0.313261687, rel=1e-9)
