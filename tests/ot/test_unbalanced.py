"""Unbalanced marginals (KL mass penalty): vs POT's sinkhorn_unbalanced, limits, gradients."""

import numpy as np
import ot
import pytest
import torch

from gmot.ot import GMOTLoss, fused_gromov_wasserstein, sinkhorn


def _problem(rng, n, m):
    x, y = rng.random((n, 2)), rng.random((m, 2))
    C1, C2 = ot.dist(x, x), ot.dist(y, y)
    return rng.random((n, m)), C1 / C1.max(), C2 / C2.max(), ot.unif(n), ot.unif(m)


def _t(x):
    return torch.tensor(x)[None]


@pytest.mark.parametrize("reg_m", [0.5, (0.3, None)])
@pytest.mark.parametrize("mode", ["hybrid", "log"])
def test_unbalanced_sinkhorn_matches_pot(reg_m, mode):
    """Plan vs ot.unbalanced.sinkhorn_unbalanced(reg_type='entropy'), atol 1e-10 (float64)."""
    rng = np.random.default_rng(0)
    M, _, _, a, b = _problem(rng, 6, 4)
    pot_reg_m = reg_m if not isinstance(reg_m, tuple) else (reg_m[0], float("inf"))
    with pytest.warns(UserWarning, match="overwritten"):
        T = ot.unbalanced.sinkhorn_unbalanced(
            a, b, M, 0.1, pot_reg_m, reg_type="entropy", numItermax=20000, stopThr=1e-15
        )
    res = sinkhorn(
        _t(M), _t(a), _t(b), epsilon=0.1, max_iter=20000, tol=1e-14, reg_marginals=reg_m,
        mode=mode,
    )  # fmt: skip
    np.testing.assert_allclose(res.plan[0].numpy(), T, atol=1e-10)
    rho = reg_m if not isinstance(reg_m, tuple) else reg_m[0]
    kl_a = (T.sum(1) * np.log(T.sum(1) / a) - T.sum(1) + a).sum()
    kl_b = (T.sum(0) * np.log(T.sum(0) / b) - T.sum(0) + b).sum()
    expect = (M * T).sum() + rho * kl_a + (rho * kl_b if not isinstance(reg_m, tuple) else 0)
    assert res.value.item() == pytest.approx(expect, abs=1e-10)
    if isinstance(reg_m, tuple):  # the hard side stays exact
        np.testing.assert_allclose(res.plan[0].sum(0).numpy(), b, atol=1e-12)


def test_unbalanced_fgw_limits():
    rng = np.random.default_rng(1)
    M, C1, C2, a, b = (_t(x) for x in _problem(rng, 7, 4))
    kw = dict(alpha=0.5, epsilon=0.05, max_iter=20, tol=0, max_iter_inner=2000, tol_inner=1e-13)
    bal = fused_gromov_wasserstein(M, C1, C2, a, b, **kw)
    big = fused_gromov_wasserstein(M, C1, C2, a, b, reg_marginals=1e7, **kw)
    np.testing.assert_allclose(big.plan.numpy(), bal.plan.numpy(), atol=1e-6)
    semi = fused_gromov_wasserstein(M, C1, C2, a, b, reg_marginals=(0.05, None), **kw)
    np.testing.assert_allclose(semi.plan[0].sum(0).numpy(), b[0].numpy(), atol=1e-12)
    assert semi.mass_penalty.item() > 0
    # relaxing the frame side can only lower the fused objective (penalty included)
    assert semi.value.item() < bal.value.item()


def test_unbalanced_envelope_gradient_matches_finite_differences():
    """d/dM of min_T FGW + rho KL(T1|a) + eps KL(T|1) at the converged PGD plan."""
    rng = np.random.default_rng(2)
    M, C1, C2, a, b = _problem(rng, 4, 3)
    eps = 0.1
    kw = dict(alpha=0.5, epsilon=eps, max_iter=3000, tol=1e-14, max_iter_inner=3000,
              tol_inner=1e-14, reg_marginals=(0.2, None))  # fmt: skip

    def objective(Mx):
        r = fused_gromov_wasserstein(Mx, _t(C1), _t(C2), _t(a), _t(b), grad="detach", **kw)
        T = r.plan
        return float(r.value + eps * (torch.xlogy(T, T) - T).sum())

    Mt = _t(M).requires_grad_(True)
    fused_gromov_wasserstein(Mt, _t(C1), _t(C2), _t(a), _t(b), **kw).value.sum().backward()
    fd = torch.zeros_like(Mt)
    for idx in np.ndindex(4, 3):
        E = torch.zeros_like(Mt)
        E[(0, *idx)] = 1e-6
        fd[(0, *idx)] = (objective(Mt.detach() + E) - objective(Mt.detach() - E)) / 2e-6
    np.testing.assert_allclose(Mt.grad.numpy(), fd.numpy(), atol=1e-7)


def test_unbalanced_loss_padding_and_diagnostics():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 8, 5, generator=g, dtype=torch.float64)
    z = torch.randn(2, 3, 5, generator=g, dtype=torch.float64)
    hl, zl = torch.tensor([8, 5]), torch.tensor([3, 2])
    f = GMOTLoss(alpha=0.3, epsilon=0.1, reg_marginals=(0.1, None), tol=0, tol_inner=1e-12,
                 max_iter_inner=500)  # fmt: skip
    loss, plans, diag = f(h, hl, z, zl, return_diagnostics=True)
    single, p1 = f(h[1:, :5], hl[1:], z[1:, :2], zl[1:])
    assert loss[1].item() == pytest.approx(single.item(), abs=1e-12)
    np.testing.assert_allclose(plans[1, :5, :2].numpy(), p1[0].numpy(), atol=1e-12)
    assert diag["mass_penalty"].shape == (2,) and bool((diag["mass_penalty"] > 0).all())
    with pytest.raises(ValueError, match="reg_marginals"):
        fused_gromov_wasserstein(
            _t(np.ones((2, 2))), _t(np.eye(2)), _t(np.eye(2)), alpha=0.5, epsilon=0.1,
            reg_marginals=-1.0,
        )  # fmt: skip
