"""ScaledAdam against hand computations on tiny tensors (plain Python float arithmetic)."""

import math

import pytest
import torch

from gmot.optim import ScaledAdam

B1, B2, EPS = 0.9, 0.98, 1e-8


def _rms(vals):
    return math.sqrt(sum(v * v for v in vals) / len(vals))


def _run(opt, params, grads_per_step):
    for grads in grads_per_step:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=torch.float64).reshape(p.shape)
        opt.step()


def test_two_steps_match_hand_computation():
    p0 = [1.0, -2.0, 3.0, 0.5]
    grads = [[0.1, -0.2, 0.3, 0.0], [-0.3, 0.1, 0.2, 0.05]]
    lr = 0.01
    p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = ScaledAdam([p], lr=lr, clipping_scale=None, size_update_period=100)
    _run(opt, [p], [[g] for g in grads])
    # Hand computation.
    x, v, m = list(p0), [0.0] * 4, [0.0] * 4
    for t, g in enumerate(grads, start=1):
        r = _rms(x)
        for i in range(4):
            v[i] = B2 * v[i] + (1 - B2) * g[i] ** 2
            u = g[i] / (math.sqrt(v[i] / (1 - B2**t)) + EPS)
            m[i] = B1 * m[i] + (1 - B1) * u
        x = [x[i] - lr * r * m[i] for i in range(4)]
    assert p.tolist() == pytest.approx(x, rel=1e-9, abs=1e-12)


def test_scalar_lr_scale_and_clamp():
    s = torch.nn.Parameter(torch.tensor(2.0, dtype=torch.float64))
    opt = ScaledAdam([s], lr=0.5, clipping_scale=None)
    _run(opt, [s], [[-3.0]])
    # u = sign(g) = -1; m = 0.1 * -1; p = 2 - 0.5 * 0.1 * (-0.1) = 2.005
    assert float(s.detach()) == pytest.approx(2.005, rel=1e-7)
    s2 = torch.nn.Parameter(torch.tensor(9.99, dtype=torch.float64))
    opt2 = ScaledAdam([s2], lr=100.0, clipping_scale=None)
    _run(opt2, [s2], [[-1.0]])
    assert float(s2.detach()) == 10.0


def test_scale_update_every_period():
    p0 = [1.0, 2.0]
    g = [0.5, 0.25]  # constant gradient
    lr, period = 0.01, 2
    p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
    opt = ScaledAdam([p], lr=lr, clipping_scale=None, size_update_period=period)
    _run(opt, [p], [[g]] * 2)
    x, v, m, s = list(p0), [0.0, 0.0], [0.0, 0.0], []
    for t in (1, 2):
        r = _rms(x)
        s.append(sum(a * b for a, b in zip(x, g)))
        for i in range(2):
            v[i] = B2 * v[i] + (1 - B2) * g[i] ** 2
            m[i] = B1 * m[i] + (1 - B1) * g[i] / (math.sqrt(v[i] / (1 - B2**t)) + EPS)
        x = [x[i] - lr * r * m[i] for i in range(2)]
    w = (1 - B2) * (s[0] ** 2 + s[1] ** 2) / 2
    delta = -lr * 0.1 * (s[0] + s[1]) / 2 / (math.sqrt(w / (1 - B2)) + EPS)
    x = [xi * math.exp(delta) for xi in x]
    assert p.tolist() == pytest.approx(x, rel=1e-9)


def test_scale_growth_blocked_above_max_rms():
    p0 = [5.0, -5.0, 5.0, -5.0]  # rms 5 > 3
    g = [-1.0, 1.0, -1.0, 1.0]  # sum(p * g) < 0: the scale step would grow p

    def final(max_rms):
        p = torch.nn.Parameter(torch.tensor(p0, dtype=torch.float64))
        opt = ScaledAdam(
            [p], lr=0.01, clipping_scale=None, size_update_period=1, param_max_rms=max_rms
        )
        _run(opt, [p], [[g]])
        return p.detach()

    # Main update only: p - lr * 5 * 0.1 * sign(g).
    expected = [x - 0.01 * 5 * 0.1 * (1 if gi > 0 else -1) for x, gi in zip(p0, g)]
    assert final(3.0).tolist() == pytest.approx(expected, rel=1e-9)
    assert final(100.0).abs().mean() > torch.tensor(expected).abs().mean() + 1e-6


def test_clipping_at_twice_median():
    p = torch.nn.Parameter(torch.tensor([1.0, 1.0], dtype=torch.float64))  # rms 1
    opt = ScaledAdam([p], lr=0.0, clipping_scale=2.0)
    for g in ([3.0, 4.0], [0.6, 0.8], [0.3, 0.4]):  # norms 5, 1, 0.5
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        assert opt.last_clip_factor == 1.0
    p.grad = torch.tensor([30.0, 40.0], dtype=torch.float64)  # norm 50; median(5,1,.5,50) = 1
    opt.step()  # torch median of an even count is the lower middle value
    assert opt.last_clip_factor == pytest.approx(2.0 * 1.0 / 50.0)


def test_batched_same_shape_equals_separate():
    torch.manual_seed(0)
    a0, b0 = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    c0 = torch.randn(5, dtype=torch.float64)
    grads = [[torch.randn(3, 4), torch.randn(3, 4), torch.randn(5)] for _ in range(6)]
    params = [torch.nn.Parameter(t.clone()) for t in (a0, b0, c0)]
    opt = ScaledAdam(params, lr=0.05, clipping_scale=None, size_update_period=3)
    _run(opt, params, [[g.tolist() for g in gs] for gs in grads])
    for i, t0 in enumerate((a0, b0, c0)):
        q = torch.nn.Parameter(t0.clone())
        o = ScaledAdam([q], lr=0.05, clipping_scale=None, size_update_period=3)
        _run(o, [q], [[gs[i].tolist()] for gs in grads])
        torch.testing.assert_close(params[i].detach(), q.detach(), rtol=1e-12, atol=1e-14)


def test_named_parameters_and_state_dict():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = ScaledAdam(list(model.named_parameters()), lr=0.01)
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    model2 = torch.nn.Linear(3, 2)
    model2.load_state_dict(model.state_dict())
    opt2 = ScaledAdam(list(model2.named_parameters()), lr=0.01)
    opt2.load_state_dict(sd)
    for m in (model, model2):
        m.zero_grad()
        m(torch.ones(4, 3)).sum().backward()
    opt.step()
    opt2.step()
    torch.testing.assert_close(model.weight, model2.weight)
    with pytest.raises(ValueError):
        ScaledAdam([], lr=0.1)


def test_params_without_grad_are_skipped():
    """A tensor that gets no gradient in a step is left alone and keeps its own step count."""
    a0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b0 = torch.tensor([3.0, -1.0], dtype=torch.float64)
    a, b = torch.nn.Parameter(a0.clone()), torch.nn.Parameter(b0.clone())
    opt = ScaledAdam([a, b], lr=0.1, clipping_scale=None)
    a.grad = torch.tensor([1.0, -1.0], dtype=torch.float64)
    opt.step()
    assert torch.equal(b.detach(), b0)
    a.grad = torch.tensor([0.5, 0.5], dtype=torch.float64)
    b.grad = torch.tensor([-1.0, 2.0], dtype=torch.float64)
    opt.step()
    # b had its first step: p - lr * rms * 0.1 * sign(g).
    rb = _rms(b0.tolist())
    assert b.tolist() == pytest.approx([3.0 + 0.1 * rb * 0.1, -1.0 - 0.1 * rb * 0.1], rel=1e-9)
    assert opt.state[a]["step"] == 2 and opt.state[b]["step"] == 1


def test_non_finite_gradient_skips_step():
    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    opt = ScaledAdam([p], lr=0.1)
    p.grad = torch.tensor([float("inf"), 1.0])
    opt.step()
    assert p.tolist() == [1.0, 2.0] and opt.skipped_steps == 1 and len(opt.state[p]) == 0
