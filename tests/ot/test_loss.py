"""GMOTLoss: special case alpha=0, padding, gradients, temporal prior, diagnostics, bad input."""

import numpy as np
import ot
import pytest
import torch

from gmot.ot import GMOTLoss


def _cos_cost(x, y):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    return 1 - xn @ yn.T


def _batch(lens_h, lens_z, D=6, dtype=torch.float64, pad_value=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    B = len(lens_h)
    h = torch.full((B, max(lens_h), D), pad_value, dtype=dtype)
    z = torch.full((B, max(lens_z), D), pad_value, dtype=dtype)
    for i, (la, lt) in enumerate(zip(lens_h, lens_z)):
        h[i, :la] = torch.randn(la, D, generator=g, dtype=dtype)
        z[i, :lt] = torch.randn(lt, D, generator=g, dtype=dtype)
    return h, torch.tensor(lens_h), z, torch.tensor(lens_z)


def test_alpha_zero_is_the_plain_wasserstein_ot_loss():
    """GM-OT with alpha=0 == the earlier OT loss: Sinkhorn on 1 - cos with uniform weights.

    Reference computed independently with numpy + ot.sinkhorn per utterance (atol 1e-9).
    """
    h, hl, z, zl = _batch([7, 4], [3, 5])
    eps = 0.1
    loss_fn = GMOTLoss(alpha=0.0, epsilon=eps, max_iter_inner=5000, tol_inner=1e-13)
    loss, plans, d = loss_fn(h, hl, z, zl, return_diagnostics=True)
    for i in range(2):
        la, lt = int(hl[i]), int(zl[i])
        M = _cos_cost(h[i, :la].numpy(), z[i, :lt].numpy())
        T = ot.sinkhorn(ot.unif(la), ot.unif(lt), M, eps, numItermax=20000, stopThr=1e-14)
        assert loss[i].item() == pytest.approx(float((M * T).sum()), abs=1e-9)
        np.testing.assert_allclose(plans[i, :la, :lt].numpy(), T, atol=1e-9)
    assert torch.equal(d["fgw"], loss.detach()) and torch.equal(d["wd"], loss.detach())
    assert float(d["gw"].abs().sum()) == 0.0


def test_fgw_loss_matches_pot_fgw_per_utterance():
    h, hl, z, zl = _batch([6, 3], [4, 5], seed=1)
    alpha, eps = 0.5, 0.1
    loss_fn = GMOTLoss(alpha=alpha, epsilon=eps, max_iter=20, tol=0, max_iter_inner=3000,
                       tol_inner=1e-14)  # fmt: skip
    loss, plans, diag = loss_fn(h, hl, z, zl, return_diagnostics=True)
    for i in range(2):
        la, lt = int(hl[i]), int(zl[i])
        hi, zi = h[i, :la].numpy(), z[i, :lt].numpy()
        M, C1, C2 = _cos_cost(hi, zi), _cos_cost(hi, hi), _cos_cost(zi, zi)
        T, log = ot.gromov.entropic_fused_gromov_wasserstein(
            M, C1, C2, ot.unif(la), ot.unif(lt), epsilon=eps, alpha=alpha, max_iter=20, tol=0,
            symmetric=True, log=True, numItermax=5000, stopThr=1e-15,
        )  # fmt: skip
        np.testing.assert_allclose(plans[i, :la, :lt].numpy(), T, atol=1e-10)
        assert loss[i].item() == pytest.approx(float(log["fgw_dist"]), abs=1e-10)
        assert diag["wd"][i].item() == pytest.approx(float((M * T).sum()), abs=1e-10)
    assert diag["outer_iters"] == 20 and diag["inner_iters"] > 0
    ent = -(plans * torch.log(plans.clamp_min(1e-300))).sum((1, 2))
    np.testing.assert_allclose(diag["plan_entropy"].numpy(), ent.numpy(), atol=1e-10)
    np.testing.assert_allclose(
        diag["fgw"].numpy(), (alpha * diag["gw"] + (1 - alpha) * diag["wd"]).numpy(), atol=1e-12
    )


@pytest.mark.parametrize("temporal_prior", [None, "kl"])
def test_padded_batch_equals_each_utterance_alone(temporal_prior):
    lens_h, lens_z = [9, 4, 6], [3, 5, 1]
    h, hl, z, zl = _batch(lens_h, lens_z, pad_value=123.0, seed=2)
    kw = dict(alpha=0.4, epsilon=0.1, max_iter=6, tol=0, max_iter_inner=100, tol_inner=1e-12,
              edge_position_weight=0.2, temporal_prior=temporal_prior)  # fmt: skip
    loss_fn = GMOTLoss(**kw)
    h.requires_grad_(True)
    z.requires_grad_(True)
    loss, plans = loss_fn(h, hl, z, zl)
    loss.sum().backward()
    for i, (la, lt) in enumerate(zip(lens_h, lens_z)):
        hs = h.detach()[i : i + 1, :la].clone().requires_grad_(True)
        zs = z.detach()[i : i + 1, :lt].clone().requires_grad_(True)
        ls, ps = loss_fn(hs, hl[i : i + 1], zs, zl[i : i + 1])
        ls.sum().backward()
        assert loss[i].item() == pytest.approx(ls.item(), abs=1e-12)
        np.testing.assert_allclose(plans[i, :la, :lt].detach().numpy(), ps[0].numpy(), atol=1e-12)
        np.testing.assert_allclose(h.grad[i, :la].numpy(), hs.grad[0].numpy(), atol=1e-12)
        np.testing.assert_allclose(z.grad[i, :lt].numpy(), zs.grad[0].numpy(), atol=1e-12)
        assert torch.count_nonzero(h.grad[i, la:]) == 0 and torch.count_nonzero(z.grad[i, lt:]) == 0
        assert (
            torch.count_nonzero(plans[i, la:]) == 0 and torch.count_nonzero(plans[i, :, lt:]) == 0
        )


def test_gradient_reaches_h_and_z_and_matches_finite_differences():
    """Envelope gradient of the loss == d/dh of the converged entropic objective (FD)."""
    h, hl, z, zl = _batch([4], [3], D=3, seed=3)
    eps = 0.1
    kw = dict(alpha=0.5, epsilon=eps, max_iter=2000, tol=1e-14, max_iter_inner=2000,
              tol_inner=1e-14)  # fmt: skip
    loss_fn = GMOTLoss(**kw)

    def objective(hx, zx):
        loss, plans = loss_fn(hx, hl, zx, zl)
        return float(loss + eps * torch.xlogy(plans, plans).sum())

    hg = h.clone().requires_grad_(True)
    zg = z.clone().requires_grad_(True)
    loss, _ = loss_fn(hg, hl, zg, zl)
    loss.sum().backward()
    step = 1e-6
    for x, g, which in ((h, hg.grad, 0), (z, zg.grad, 1)):
        assert g is not None and float(g.abs().sum()) > 0
        fd = torch.zeros_like(x)
        for idx in np.ndindex(*x.shape):
            E = torch.zeros_like(x)
            E[idx] = step
            args_p = (h + E, z) if which == 0 else (h, z + E)
            args_m = (h - E, z) if which == 0 else (h, z - E)
            fd[idx] = (objective(*args_p) - objective(*args_m)) / (2 * step)
        np.testing.assert_allclose(g.numpy(), fd.numpy(), atol=1e-6)


def test_frozen_z_gets_no_gradient_float32():
    h, hl, z, zl = _batch([20, 11], [5, 7], D=16, dtype=torch.float32, seed=4)
    h.requires_grad_(True)
    loss, plans = GMOTLoss(alpha=0.5, epsilon=0.05)(h, hl, z, zl)
    assert loss.dtype == torch.float32 and plans.dtype == torch.float32
    assert plans.shape == (2, 20, 7)
    loss.mean().backward()
    assert z.grad is None and torch.isfinite(h.grad).all() and float(h.grad.abs().sum()) > 0


def test_temporal_prior_kl_equals_cost_form_for_alpha_zero_and_is_diagonal():
    """'kl' prior == 'cost' form with weight epsilon (alpha=0); the prior pulls to the diagonal."""
    h, hl, z, zl = _batch([12], [4], seed=5)
    eps = 0.1
    base = dict(alpha=0.0, epsilon=eps, max_iter_inner=5000, tol_inner=1e-13, temporal_sigma=0.3)
    l_kl, p_kl = GMOTLoss(temporal_prior="kl", **base)(h, hl, z, zl)
    _, p_cost = GMOTLoss(temporal_prior="cost", temporal_weight=eps, **base)(h, hl, z, zl)
    np.testing.assert_allclose(p_kl.numpy(), p_cost.numpy(), atol=1e-10)
    _, p_none = GMOTLoss(**base)(h, hl, z, zl)
    # mean distance from the diagonal |i/La - k/Lt| under the plan shrinks with the prior
    i = (torch.arange(12, dtype=torch.float64) + 0.5) / 12
    k = (torch.arange(4, dtype=torch.float64) + 0.5) / 4
    dist = (i[:, None] - k[None, :]).abs()
    d_kl, d_none = float((p_kl[0] * dist).sum()), float((p_none[0] * dist).sum())
    assert d_kl < 0.15 < 0.25 < d_none, (d_kl, d_none)


def test_identical_and_extreme_shapes_float32_finite():
    torch.manual_seed(0)
    x = torch.randn(1, 5, 8)
    for h, z in [(x, x.clone()), (x[:, :1], x[:, :1]), (x[:, :2], torch.randn(1, 40, 8)),
                 (torch.randn(1, 400, 8), x[:, :2])]:  # fmt: skip
        for solver in ("pgd", "ppa"):
            hh = h.clone().requires_grad_(True)
            hl = torch.tensor([h.shape[1]])
            zl = torch.tensor([z.shape[1]])
            loss, plans = GMOTLoss(alpha=0.5, epsilon=1e-4, solver=solver)(hh, hl, z, zl)
            loss.sum().backward()
            assert torch.isfinite(loss).all() and torch.isfinite(plans).all()
            assert torch.isfinite(hh.grad).all()
    # identical sequences: the fused value is near 0 with a small epsilon and proximal steps
    loss, plans = GMOTLoss(alpha=0.5, epsilon=0.01, solver="ppa", max_iter=30)(
        x, torch.tensor([5]), x.clone(), torch.tensor([5])
    )
    assert loss.item() < 1e-3
    np.testing.assert_allclose(plans[0].numpy(), np.eye(5) / 5, atol=1e-3)


def test_bad_input_errors_name_the_argument():
    h, hl, z, zl = _batch([4, 3], [2, 2], dtype=torch.float32)
    f = GMOTLoss()
    with pytest.raises(ValueError, match="batch sizes differ"):
        f(h, hl, z[:1], zl[:1])
    with pytest.raises(ValueError, match="h_lens must have shape"):
        f(h, hl[:1], z, zl)
    with pytest.raises(ValueError, match="z_lens contains zero-length"):
        f(h, hl, z, torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="h_lens contains zero-length"):
        f(h, torch.tensor([0, 3]), z, zl)
    with pytest.raises(ValueError, match="h_lens exceeds"):
        f(h, torch.tensor([5, 3]), z, zl)
    hb = h.clone()
    hb[1, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="h contains non-finite"):
        f(hb, hl, z, zl)
    hb = h.clone()
    hb[1, 2, 0] = float("nan")  # inside padding: fine
    assert torch.isfinite(f(hb, torch.tensor([4, 2]), z, zl)[0]).all()
    zb = z.clone()
    zb[0, 1, 3] = float("nan")
    with pytest.raises(ValueError, match="z contains non-finite"):
        f(h, hl, zb, zl)
    with pytest.raises(ValueError, match="feature dims differ"):
        f(h, hl, z[:, :, :3], zl)
    for bad in (-0.1, 1.1):
        with pytest.raises(ValueError, match="alpha"):
            GMOTLoss(alpha=bad)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="epsilon"):
            GMOTLoss(epsilon=bad)
    with pytest.raises(ValueError, match="temporal_prior"):
        GMOTLoss(temporal_prior="gauss")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    h, hl, z, zl = _batch([50, 30], [8, 12], D=32, dtype=torch.float32, seed=7)
    f = GMOTLoss(alpha=0.5, epsilon=0.05, max_iter=10, tol=0, max_iter_inner=20, tol_inner=0)
    l_cpu, p_cpu = f(h, hl, z, zl)
    l_gpu, p_gpu = f(h.cuda(), hl.cuda(), z.cuda(), zl.cuda())
    np.testing.assert_allclose(l_gpu.cpu().numpy(), l_cpu.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(p_gpu.cpu().numpy(), p_cpu.numpy(), atol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_compiled_inner_matches_eager():
    h, hl, z, zl = _batch([120, 70], [20, 9], D=64, dtype=torch.float32, seed=8)
    args = (h.cuda(), hl.cuda(), z.cuda(), zl.cuda())
    kw = dict(alpha=0.5, epsilon=0.05, max_iter=10, tol=0, max_iter_inner=20, tol_inner=0)
    kw["inner_kernel"] = "torch"  # compile_inner applies to the torch path (auto = fused kernel)
    l_eager, p_eager = GMOTLoss(**kw)(*args)
    l_comp, p_comp = GMOTLoss(compile_inner=True, **kw)(*args)
    torch.testing.assert_close(l_comp, l_eager, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(p_comp, p_eager, rtol=1e-3, atol=1e-6)


def test_diagnostics_say_whether_the_outer_loop_converged():
    h, hl, z, zl = _batch([9, 7], [4, 3])
    _, _, d = GMOTLoss(alpha=0.5, epsilon=0.1, max_iter=1, tol=1e-12)(
        h, hl, z, zl, return_diagnostics=True
    )
    assert d["outer_iters"] == 1 and d["outer_converged"] is False
    _, _, d = GMOTLoss(alpha=0.5, epsilon=0.5, max_iter=300, tol=1e-7, max_iter_inner=500)(
        h, hl, z, zl, return_diagnostics=True
    )
    assert d["outer_converged"] is True and d["outer_iters"] < 300
