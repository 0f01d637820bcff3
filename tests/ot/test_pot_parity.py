"""POT drop-in behaviour of fused_gromov_wasserstein (issue 24): symmetry detection, the
value/gradient pairing, the inner Sinkhorn order and start, against POT itself.

POT is the reference: ``ot.gromov.entropic_(fused_)gromov_wasserstein`` with the same outer and
inner iteration counts (``tol=0`` / ``stopThr=0``: no early stop on either side), so truncated
loops must agree iterate for iterate, not only at convergence.
"""

from __future__ import annotations

import numpy as np
import ot
import pytest
import torch

from gmot.ot import GMOTLoss, fused_gromov_wasserstein


def _t(x: np.ndarray) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64)[None]


def _asymmetric_problem(n: int = 8, seed: int = 0):
    """POT's test_asymmetric_entropic_gromov: C2 a permutation of a non-symmetric C1."""
    rng = np.random.RandomState(seed)
    C1 = rng.uniform(low=0.0, high=10, size=(n, n))
    idx = np.arange(n)
    rng.shuffle(idx)
    C2 = C1[idx, :][:, idx]
    M = rng.uniform(size=(n, n))
    return M, C1 / 10, C2 / 10, ot.unif(n), ot.unif(n)


def _gauss_problem(n: int = 10):
    """POT's test_entropic_gromov problem: 2-D Gaussian samples and their reversal."""
    xs = ot.datasets.make_2D_samples_gauss(n, np.array([0, 0]), np.eye(2), random_state=42)
    xt = xs[::-1].copy()
    C1, C2 = ot.dist(xs, xs), ot.dist(xt, xt)
    return C1 / C1.max(), C2 / C2.max(), ot.unif(n), ot.unif(n)


TRUNC = dict(max_iter=6, tol=0, max_iter_inner=40, tol_inner=0)  # gmot, no early stops
POT_TRUNC = dict(max_iter=6, tol=0, numItermax=40, stopThr=0)  # the same for POT


def test_symmetric_none_detects_asymmetric_structures_like_pot():
    """symmetric=None: asymmetric C1/C2 are detected (POT's test) and give POT's plan; a batch
    mixing symmetric and asymmetric problems takes the general gradient for all and still
    equals each problem solved alone by POT; symmetric=True refuses asymmetric input."""
    M, C1, C2, a, b = _asymmetric_problem()
    alpha, eps = 0.5, 0.1
    T_ref = ot.gromov.entropic_fused_gromov_wasserstein(
        M, C1, C2, a, b, alpha=alpha, epsilon=eps, symmetric=None, **POT_TRUNC
    )
    res = fused_gromov_wasserstein(
        _t(M), _t(C1), _t(C2), _t(a), _t(b), alpha=alpha, epsilon=eps, **TRUNC
    )
    assert res.symmetric is False
    np.testing.assert_allclose(res.plan[0].numpy(), T_ref, atol=1e-12)
    # The symmetric gradient on these matrices is a different (wrong) problem: the check matters.
    forced = fused_gromov_wasserstein(
        _t(M), _t(C1), _t(C2), _t(a), _t(b), alpha=alpha, epsilon=eps, symmetric=True,
        validate=False, **TRUNC,
    )  # fmt: skip
    assert np.abs(forced.plan[0].numpy() - T_ref).sum() > 1e-2
    with pytest.raises(ValueError, match="not symmetric"):
        fused_gromov_wasserstein(
            _t(M), _t(C1), _t(C2), alpha=alpha, epsilon=eps, symmetric=True, **TRUNC
        )

    # Batch: problem 0 symmetric (C + C^T), problem 1 the asymmetric one.
    S1, S2 = C1 + C1.T, C2 + C2.T
    batch = fused_gromov_wasserstein(
        torch.tensor(np.stack([M, M])),
        torch.tensor(np.stack([S1, C1])),
        torch.tensor(np.stack([S2, C2])),
        alpha=alpha,
        epsilon=eps,
        **TRUNC,
    )
    assert batch.symmetric is False
    for k, (c1, c2) in enumerate(((S1, S2), (C1, C2))):
        ref = ot.gromov.entropic_fused_gromov_wasserstein(
            M, c1, c2, a, b, alpha=alpha, epsilon=eps, symmetric=None, **POT_TRUNC
        )
        np.testing.assert_allclose(batch.plan[k].numpy(), ref, atol=1e-12)
    sym = fused_gromov_wasserstein(_t(M), _t(S1), _t(S2), alpha=alpha, epsilon=eps, **TRUNC)
    assert sym.symmetric is True


@pytest.mark.parametrize("solver", ["PGD", "PPA"])
def test_truncated_inner_loops_match_pot_iterate_for_iterate(solver):
    """Defaults (v updated before u, cold inner start) are POT's: equal plans after a fixed
    number of outer and inner iterations (6 x 5 sweeps), far from convergence."""
    C1, C2, a, b = _gauss_problem(8)
    rng = np.random.default_rng(3)
    M = rng.random((8, 8))
    pot_kw = dict(POT_TRUNC, numItermax=5)
    kw = dict(TRUNC, max_iter_inner=5)
    T_ref = ot.gromov.entropic_fused_gromov_wasserstein(
        M, C1, C2, a, b, alpha=0.7, epsilon=0.05, solver=solver, symmetric=True, **pot_kw
    )
    res = fused_gromov_wasserstein(
        _t(M), _t(C1), _t(C2), _t(a), _t(b), alpha=0.7, epsilon=0.05, solver=solver.lower(),
        **kw,
    )  # fmt: skip
    np.testing.assert_allclose(res.plan[0].numpy(), T_ref, atol=1e-12)
    # u first (ot.batch's order) is a different truncated iterate: the option is not a no-op.
    uv = fused_gromov_wasserstein(
        _t(M), _t(C1), _t(C2), _t(a), _t(b), alpha=0.7, epsilon=0.05, solver=solver.lower(),
        inner_order="uv", **kw,
    )  # fmt: skip
    assert np.abs(uv.plan[0].numpy() - T_ref).max() > 1e-6


def test_entropic_gromov_inner_convergence_gap_is_the_warm_start():
    """POT's test_entropic_gromov (epsilon 1e-2, 10 outer x 1,000 inner sweeps, inner loops not
    converged): the defaults reproduce POT's plan; warm-starting the inner Sinkhorn from the
    previous outer iteration's potentials is what left a larger marginal error there."""
    C1, C2, a, b = _gauss_problem(10)
    kw = dict(max_iter=10, tol=0, max_iter_inner=1000, tol_inner=0)
    T_ref = ot.gromov.entropic_gromov_wasserstein(
        C1, C2, a, b, epsilon=1e-2, max_iter=10, tol=0, numItermax=1000, stopThr=0
    )
    cold = fused_gromov_wasserstein(None, _t(C1), _t(C2), alpha=1.0, epsilon=1e-2, **kw)
    np.testing.assert_allclose(cold.plan[0].numpy(), T_ref, atol=1e-12)
    warm = fused_gromov_wasserstein(
        None, _t(C1), _t(C2), alpha=1.0, epsilon=1e-2, warmstart=True, **kw
    )

    def col_err(T: torch.Tensor) -> float:  # rows are exact after the last (u) update
        return float((T[0].sum(0) - torch.tensor(b)).abs().sum())

    assert col_err(warm.plan) > 5 * col_err(cold.plan)
    assert col_err(cold.plan) == pytest.approx(float(np.abs(T_ref.sum(0) - b).sum()), rel=1e-6)


def test_entropic_value_is_pots_solve_gromov_value():
    """value='entropic' = FGW + epsilon sum T log T, the value ot.solve_gromov(reg=...) returns
    (POT passes its default epsilon 0.1 to the inner solver, so compare at reg = 0.1)."""
    C1, C2, a, b = _gauss_problem(6)
    M = np.random.default_rng(1).random((6, 6))
    ref = ot.solve_gromov(C1, C2, M, a, b, alpha=0.5, reg=0.1, max_iter=1000, tol=1e-12)
    res = fused_gromov_wasserstein(
        _t(M), _t(C1), _t(C2), _t(a), _t(b), alpha=0.5, epsilon=0.1, max_iter=1000, tol=1e-12,
        max_iter_inner=1000, tol_inner=1e-12, value="entropic",
    )  # fmt: skip
    np.testing.assert_allclose(res.plan[0].numpy(), ref.plan, atol=1e-8)
    assert res.value.item() == pytest.approx(float(ref.value), abs=1e-8)
    assert res.value.item() == pytest.approx(
        (res.wd * 0.5 + res.gw * 0.5 + res.entropic_term).item(), abs=1e-12
    )


def _fd(fn, xs, dirs, h):
    plus = [x + h * d for x, d in zip(xs, dirs)]
    minus = [x - h * d for x, d in zip(xs, dirs)]
    return (fn(*plus) - fn(*minus)) / (2 * h)


@pytest.mark.parametrize("prior", [False, True])
def test_envelope_gradient_is_the_gradient_of_the_entropic_value(prior):
    """PGD at convergence, grad='envelope': the directional derivative of value='entropic'
    (finite differences, re-solving) equals <grad, direction> for M, C1, C2 (and log_prior);
    the same gradient paired with value='fgw' is off by far more than the FD error."""
    rng = np.random.default_rng(12)
    n, m = 5, 4
    xs = [_t(rng.random((n, m))), _t(rng.random((n, n))), _t(rng.random((m, m)))]
    xs[1] = xs[1] + xs[1].transpose(1, 2)
    xs[2] = xs[2] + xs[2].transpose(1, 2)
    if prior:
        xs.append(_t(-rng.random((n, m))))
    dirs = [torch.randn(x.shape, generator=torch.Generator().manual_seed(k), dtype=x.dtype)
            for k, x in enumerate(xs)]  # fmt: skip
    dirs[1] = dirs[1] + dirs[1].transpose(1, 2)
    dirs[2] = dirs[2] + dirs[2].transpose(1, 2)
    kw = dict(alpha=0.6, epsilon=0.1, max_iter=3000, tol=1e-14, max_iter_inner=3000,
              tol_inner=1e-14)  # fmt: skip

    def solve(value, *args, **extra):
        lp = args[3] if prior else None
        return fused_gromov_wasserstein(*args[:3], log_prior=lp, value=value, **kw, **extra)

    leaves = [x.clone().requires_grad_(True) for x in xs]
    res = solve("entropic", *leaves)
    assert res.outer_err < 1e-12
    grads = torch.autograd.grad(res.value.sum(), leaves)
    predicted = sum(float((g * d).sum()) for g, d in zip(grads, dirs))
    ent = _fd(lambda *a: float(solve("entropic", *a, grad="detach").value), xs, dirs, 1e-5)
    fgw = _fd(lambda *a: float(solve("fgw", *a, grad="detach").value), xs, dirs, 1e-5)
    assert predicted == pytest.approx(ent, abs=1e-7, rel=1e-6)
    assert abs(predicted - fgw) > 1e-3
    # value="fgw" returns the same gradient (the plan is a constant either way)
    leaves2 = [x.clone().requires_grad_(True) for x in xs]
    grads2 = torch.autograd.grad(solve("fgw", *leaves2).value.sum(), leaves2[:3])
    for g, g2 in zip(grads[:3], grads2[:3]):
        torch.testing.assert_close(g, g2)


@pytest.mark.parametrize("value", ["fgw", "entropic"])
def test_autodiff_gradient_is_the_gradient_of_the_returned_value(value):
    """grad='autodiff' with a fixed number of iterations: exact derivative of either value."""
    rng = np.random.default_rng(13)
    M, C1 = _t(rng.random((4, 3))), _t(rng.random((4, 4)))
    C1 = C1 + C1.transpose(1, 2)
    C2 = _t(np.abs(np.subtract.outer(np.arange(3.0), np.arange(3.0))))
    kw = dict(alpha=0.5, epsilon=0.2, value=value, max_iter=4, tol=0, max_iter_inner=15,
              tol_inner=0)  # fmt: skip
    Mt = M.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(
        fused_gromov_wasserstein(Mt, C1, C2, grad="autodiff", **kw).value.sum(), Mt
    )
    d = torch.randn(M.shape, generator=torch.Generator().manual_seed(0), dtype=M.dtype)
    fd = _fd(lambda x: float(fused_gromov_wasserstein(x, C1, C2, **kw).value), [M], [d], 1e-6)
    assert float((g * d).sum()) == pytest.approx(fd, abs=1e-8)


def test_value_option_validation_and_gmot_loss_pairing():
    """value='entropic' is refused for PPA (another objective); in GMOTLoss it changes the
    logged loss by the entropic term and leaves the gradient as it was."""
    C1, C2, _, _ = _gauss_problem(4)
    with pytest.raises(ValueError, match="ppa"):
        fused_gromov_wasserstein(None, _t(C1), _t(C2), alpha=1.0, epsilon=0.1, solver="ppa",
                                 value="entropic")  # fmt: skip
    g = torch.Generator().manual_seed(4)
    h = torch.randn(2, 7, 5, generator=g, dtype=torch.float64)
    z = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    h_lens, z_lens = torch.tensor([7, 5]), torch.tensor([4, 3])
    out = {}
    for value in ("fgw", "entropic"):
        loss = GMOTLoss(alpha=0.5, epsilon=0.1, value=value)
        hv = h.clone().requires_grad_(True)
        v, _, diag = loss(hv, h_lens, z, z_lens, return_diagnostics=True)
        (gh,) = torch.autograd.grad(v.sum(), hv)
        out[value] = (v.detach(), gh, diag["entropic_term"])
    torch.testing.assert_close(out["entropic"][0], out["fgw"][0] + out["fgw"][2])
    torch.testing.assert_close(out["entropic"][1], out["fgw"][1])
