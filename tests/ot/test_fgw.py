"""Fused Gromov-Wasserstein solver vs POT (ot.gromov entropic solvers, ot.batch)."""

import numpy as np
import ot
import ot.batch
import pytest
import torch

from gmot.ot import GMOTLoss, fused_gromov_wasserstein, gw_value


def _structure(rng, n, d=3):
    x = rng.random((n, d))
    C = ot.dist(x, x)
    return C / max(C.max(), 1e-12)


def _problem(rng, n, m):
    a = rng.random(n) + 0.2
    b = rng.random(m) + 0.2
    return rng.random((n, m)), _structure(rng, n), _structure(rng, m), a / a.sum(), b / b.sum()


def _t(x):
    return torch.tensor(x)[None]


def test_gw_value_matches_4d_bruteforce():
    rng = np.random.default_rng(0)
    n, m = 4, 3
    C1, C2 = rng.random((n, n)), rng.random((m, m))  # non-symmetric on purpose
    T = rng.random((n, m))
    L = (C1[:, :, None, None] - C2[None, None, :, :]) ** 2  # (i, i', k, k')
    ref = np.einsum("ijkl,ik,jl->", L, T, T)
    assert gw_value(_t(C1), _t(C2), _t(T)).item() == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("solver", ["PGD", "PPA"])
@pytest.mark.parametrize("alpha", [0.3, 0.8])
def test_fgw_matches_pot_entropic_fgw(solver, alpha):
    """Equal outer iterations (15, tol=0), converged inner Sinkhorn, init a b^T, symmetric=True.

    Tolerance: plan atol 1e-10, value abs 1e-10 (float64).
    """
    rng = np.random.default_rng(1)
    for n, m in [(7, 5), (3, 8)]:
        M, C1, C2, a, b = _problem(rng, n, m)
        eps = 0.05
        T_ref, log = ot.gromov.entropic_fused_gromov_wasserstein(
            M, C1, C2, a, b, epsilon=eps, alpha=alpha, solver=solver, max_iter=15, tol=0,
            symmetric=True, log=True, numItermax=5000, stopThr=1e-15,
        )  # fmt: skip
        res = fused_gromov_wasserstein(
            _t(M), _t(C1), _t(C2), _t(a), _t(b), alpha=alpha, epsilon=eps,
            solver=solver.lower(), max_iter=15, tol=0, max_iter_inner=5000, tol_inner=1e-14,
        )  # fmt: skip
        assert res.n_outer == 15
        np.testing.assert_allclose(res.plan[0].numpy(), T_ref, atol=1e-10)
        assert res.value.item() == pytest.approx(float(log["fgw_dist"]), abs=1e-10)


def test_gw_matches_pot_entropic_gw():
    rng = np.random.default_rng(2)
    _, C1, C2, a, b = _problem(rng, 6, 4)
    T_ref, log = ot.gromov.entropic_gromov_wasserstein(
        C1, C2, a, b, epsilon=0.05, solver="PGD", max_iter=20, tol=0, symmetric=True,
        log=True, numItermax=5000, stopThr=1e-15,
    )  # fmt: skip
    res = fused_gromov_wasserstein(
        None, _t(C1), _t(C2), _t(a), _t(b), alpha=1.0, epsilon=0.05, max_iter=20, tol=0,
        max_iter_inner=5000, tol_inner=1e-14,
    )  # fmt: skip
    np.testing.assert_allclose(res.plan[0].numpy(), T_ref, atol=1e-10)
    assert res.value.item() == pytest.approx(float(log["gw_dist"]), abs=1e-10)
    assert res.gw.item() == pytest.approx(res.value.item())


@pytest.mark.parametrize("alpha", [None, 0.4])
def test_ppa_matches_pot_batch_solver(alpha):
    """Same algorithm as ot.batch.solve_gromov_batch at equal iterations (10 x 20, no early stop)
    with ot.batch's inner order (u first: inner_order="uv").

    Tolerance: plan and value atol 1e-12 (float64); a non-symmetric C2 uses symmetric=False.
    """
    rng = np.random.default_rng(4)
    B, n, m = 3, 6, 4
    C1 = torch.tensor(np.stack([_structure(rng, n) for _ in range(B)]))
    C2 = torch.tensor(np.stack([_structure(rng, m) for _ in range(B)]))
    M = torch.tensor(rng.random((B, n, m))) if alpha is not None else None
    ref = ot.batch.solve_gromov_batch(
        C1, C2, reg=0.05, M=M, alpha=alpha, max_iter=10, tol=0, max_iter_inner=20,
        tol_inner=0, symmetric=True,
    )  # fmt: skip
    res = fused_gromov_wasserstein(
        M, C1, C2, alpha=1.0 if alpha is None else alpha, epsilon=0.05, solver="ppa",
        max_iter=10, tol=0, max_iter_inner=20, tol_inner=0, inner_order="uv",
    )  # fmt: skip
    np.testing.assert_allclose(res.plan.numpy(), ref.plan.numpy(), atol=1e-12)
    np.testing.assert_allclose(res.value.numpy(), ref.value.numpy(), atol=1e-12)
    # non-symmetric structure
    C2n = C2 + 0.3 * torch.tensor(rng.random((B, m, m)))
    ref = ot.batch.solve_gromov_batch(
        C1, C2n, reg=0.05, M=M, alpha=alpha, max_iter=10, tol=0, max_iter_inner=20,
        tol_inner=0, symmetric=False,
    )  # fmt: skip
    res = fused_gromov_wasserstein(
        M, C1, C2n, alpha=1.0 if alpha is None else alpha, epsilon=0.05, solver="ppa",
        max_iter=10, tol=0, max_iter_inner=20, tol_inner=0, symmetric=False, inner_order="uv",
    )  # fmt: skip
    np.testing.assert_allclose(res.plan.numpy(), ref.plan.numpy(), atol=1e-12)
    np.testing.assert_allclose(res.value.numpy(), ref.value.numpy(), atol=1e-12)


def test_padding_contributes_nothing():
    """Padded batch == each problem alone (value, plan, gradients w.r.t. M, C1, C2)."""
    rng = np.random.default_rng(6)
    sizes = [(5, 3), (2, 4), (4, 1)]
    probs = [_problem(rng, n, m) for n, m in sizes]
    B, N, K = 3, 5, 4
    Mb = torch.full((B, N, K), 3.0, dtype=torch.float64)
    C1b = torch.full((B, N, N), float("inf"), dtype=torch.float64)
    C2b = torch.full((B, K, K), -5.0, dtype=torch.float64)
    ab = torch.zeros(B, N, dtype=torch.float64)
    bb = torch.zeros(B, K, dtype=torch.float64)
    for i, (M, C1, C2, a, b) in enumerate(probs):
        n, m = len(a), len(b)
        Mb[i, :n, :m], C1b[i, :n, :n], C2b[i, :m, :m] = map(torch.tensor, (M, C1, C2))
        ab[i, :n], bb[i, :m] = torch.tensor(a), torch.tensor(b)
    kw = dict(alpha=0.5, epsilon=0.1, max_iter=8, tol=0, max_iter_inner=200, tol_inner=1e-12)
    for t in (Mb, C1b, C2b):
        t.requires_grad_(True)
    res = fused_gromov_wasserstein(Mb, C1b, C2b, ab, bb, **kw)
    res.value.sum().backward()
    for i, (M, C1, C2, a, b) in enumerate(probs):
        n, m = len(a), len(b)
        single_in = [_t(x).requires_grad_(True) for x in (M, C1, C2)]
        single = fused_gromov_wasserstein(*single_in, _t(a), _t(b), **kw)
        single.value.sum().backward()
        assert res.value[i].item() == pytest.approx(single.value.item(), abs=1e-12)
        np.testing.assert_allclose(res.plan[i, :n, :m].numpy(), single.plan[0].numpy(), atol=1e-12)
        outside = res.plan[i].clone()
        outside[:n, :m] = 0
        assert torch.count_nonzero(outside) == 0
        for big, small, (r, c) in zip((Mb, C1b, C2b), single_in, [(n, m), (n, n), (m, m)]):
            np.testing.assert_allclose(
                big.grad[i, :r, :c].numpy(), small.grad[0].numpy(), atol=1e-12
            )
            outside = big.grad[i].clone()
            outside[:r, :c] = 0
            assert torch.count_nonzero(outside) == 0
    for t in (Mb, C1b, C2b):
        assert torch.isfinite(t.grad).all()


def test_envelope_gradient_matches_finite_differences_at_converged_plan():
    """PGD converged: d/dX min_T [FGW(T) + eps sum T log T] == our envelope gradient."""
    rng = np.random.default_rng(8)
    M, C1, C2, a, b = _problem(rng, 4, 3)
    alpha, eps = 0.6, 0.1
    kw = dict(alpha=alpha, epsilon=eps, max_iter=2000, tol=1e-14, max_iter_inner=2000,
              tol_inner=1e-14)  # fmt: skip
    at, bt = _t(a), _t(b)

    def objective(Mx, C1x, C2x):
        r = fused_gromov_wasserstein(Mx, C1x, C2x, at, bt, grad="detach", **kw)
        return float(r.value + eps * torch.xlogy(r.plan, r.plan).sum())

    inputs = [_t(x).requires_grad_(True) for x in (M, C1, C2)]
    res = fused_gromov_wasserstein(*inputs, at, bt, **kw)
    assert res.outer_err < 1e-12
    res.value.sum().backward()
    h = 1e-6
    for k, x in enumerate(inputs):
        fd = torch.zeros_like(x)
        for idx in np.ndindex(*x.shape[1:]):
            E = torch.zeros_like(x)
            E[(0, *idx)] = h
            plus = [y.detach() + (E if j == k else 0) for j, y in enumerate(inputs)]
            minus = [y.detach() - (E if j == k else 0) for j, y in enumerate(inputs)]
            fd[(0, *idx)] = (objective(*plus) - objective(*minus)) / (2 * h)
        np.testing.assert_allclose(x.grad.numpy(), fd.numpy(), atol=2e-7)


def test_autodiff_mode_matches_finite_differences_of_value():
    """grad='autodiff' unrolls the iterations: exact derivative of the returned value."""
    rng = np.random.default_rng(9)
    M, C1, C2, a, b = _problem(rng, 3, 3)
    kw = dict(alpha=0.5, epsilon=0.2, max_iter=5, tol=0, max_iter_inner=30, tol_inner=0)
    Mt = _t(M).requires_grad_(True)
    res = fused_gromov_wasserstein(Mt, _t(C1), _t(C2), _t(a), _t(b), grad="autodiff", **kw)
    res.value.sum().backward()
    h = 1e-6
    fd = torch.zeros_like(Mt)
    for idx in np.ndindex(3, 3):
        E = torch.zeros_like(Mt)
        E[(0, *idx)] = h
        vals = [
            fused_gromov_wasserstein(
                Mt.detach() + s * E, _t(C1), _t(C2), _t(a), _t(b), **kw
            ).value.item()
            for s in (1, -1)
        ]
        fd[(0, *idx)] = (vals[0] - vals[1]) / (2 * h)
    np.testing.assert_allclose(Mt.grad.numpy(), fd.numpy(), atol=1e-7)


def test_early_stop_on_tolerance():
    rng = np.random.default_rng(10)
    M, C1, C2, a, b = _problem(rng, 5, 4)
    res = fused_gromov_wasserstein(
        _t(M), _t(C1), _t(C2), _t(a), _t(b), alpha=0.5, epsilon=0.1, max_iter=500, tol=1e-6,
        max_iter_inner=500, tol_inner=1e-9,
    )  # fmt: skip
    assert res.n_outer < 500 and res.outer_err < 1e-6
    assert res.n_inner < 500 * res.n_outer


@pytest.mark.parametrize("solver", ["pgd", "ppa"])
@pytest.mark.parametrize("n,m", [(1, 1), (1, 6), (4, 30), (300, 3)])
def test_float32_stability(solver, n, m):
    """Tiny epsilon, identical sequences, length 1, n < m, n >> m: finite value/plan/grad."""
    torch.manual_seed(0)
    x = torch.randn(2, max(n, m), 8)
    xa, xb = x[:, :n], x[:, :m]  # overlapping -> partly identical structures
    C1 = 1 - torch.nn.functional.cosine_similarity(xa[:, :, None], xa[:, None], dim=-1)
    C2 = 1 - torch.nn.functional.cosine_similarity(xb[:, :, None], xb[:, None], dim=-1)
    M = 1 - torch.nn.functional.cosine_similarity(xa[:, :, None], xb[:, None], dim=-1)
    M.requires_grad_(True)
    for eps in (1e-4, 1e-2):
        for order, dim, size in (("vu", 2, n), ("uv", 1, m)):
            res = fused_gromov_wasserstein(
                M, C1, C2, alpha=0.5, epsilon=eps, solver=solver, max_iter=5, max_iter_inner=30,
                inner_order=order,
            )  # fmt: skip
            assert torch.isfinite(res.plan).all() and torch.isfinite(res.value).all()
            (g,) = torch.autograd.grad(res.value.sum(), M)
            assert torch.isfinite(g).all()
            # the marginal updated last is exact: rows for "vu" (v, then u), columns for "uv"
            assert float(res.plan.sum(dim).sub(1.0 / size).abs().max()) < 1e-4


def test_identical_sequences_give_near_zero_gw():
    torch.manual_seed(1)
    x = torch.randn(1, 6, 4, dtype=torch.float64)
    C = torch.cdist(x, x)
    res = fused_gromov_wasserstein(
        None, C, C, alpha=1.0, epsilon=1e-3, solver="ppa", max_iter=50, max_iter_inner=200,
        init_plan=torch.eye(6, dtype=torch.float64)[None] / 6,
    )  # fmt: skip
    assert abs(res.value.item()) < 1e-6
    np.testing.assert_allclose(res.plan[0].numpy(), np.eye(6) / 6, atol=1e-6)


def test_bad_input_errors_name_the_argument():
    M = torch.rand(2, 3, 4)
    C1 = torch.rand(2, 3, 3)
    C2 = torch.rand(2, 4, 4)
    ok = dict(alpha=0.5, epsilon=0.1)
    with pytest.raises(ValueError, match="alpha"):
        fused_gromov_wasserstein(M, C1, C2, alpha=1.5, epsilon=0.1)
    with pytest.raises(ValueError, match="alpha"):
        fused_gromov_wasserstein(M, C1, C2, alpha=-0.1, epsilon=0.1)
    with pytest.raises(ValueError, match="epsilon"):
        fused_gromov_wasserstein(M, C1, C2, alpha=0.5, epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon"):
        fused_gromov_wasserstein(M, C1, C2, alpha=0.5, epsilon=-1.0)
    with pytest.raises(ValueError, match="batch sizes differ"):
        fused_gromov_wasserstein(M, C1, C2[:1], **ok)
    with pytest.raises(ValueError, match="M must have shape"):
        fused_gromov_wasserstein(M[:, :2], C1, C2, **ok)
    with pytest.raises(ValueError, match="C1 must have shape"):
        fused_gromov_wasserstein(M, C1[:, :2], C2, **ok)
    with pytest.raises(ValueError, match="zero-length"):
        fused_gromov_wasserstein(M[:, :0], C1[:, :0, :0], C2, **ok)
    with pytest.raises(ValueError, match="zero total mass"):
        a = torch.ones(2, 3) / 3
        a[1] = 0
        fused_gromov_wasserstein(M, C1, C2, a, **ok)
    bad = M.clone()
    bad[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="M contains non-finite"):
        fused_gromov_wasserstein(bad, C1, C2, **ok)
    with pytest.raises(ValueError, match="M=None"):
        fused_gromov_wasserstein(None, C1, C2, **ok)
    with pytest.raises(ValueError, match="solver"):
        fused_gromov_wasserstein(M, C1, C2, solver="cg", **ok)


@pytest.mark.parametrize("symmetric", [True, False])
def test_gw_gradient_matches_autograd_of_gw_value(symmetric):
    """gw_gradient (with the plan's marginals) == d GW(T) / d T by autograd."""
    from gmot.ot.fgw_terms import gw_const, gw_gradient

    rng = np.random.default_rng(12)
    n, m = 5, 3
    C1, C2 = rng.random((n, n)), rng.random((m, m))
    if symmetric:
        C1, C2 = C1 + C1.T, C2 + C2.T
    T = _t(rng.random((n, m))).requires_grad_(True)
    (g_ref,) = torch.autograd.grad(gw_value(_t(C1), _t(C2), T).sum(), T)
    const = gw_const(_t(C1), _t(C2), T.detach().sum(2), T.detach().sum(1), symmetric)
    g = gw_gradient(_t(C1), _t(C2), T.detach(), const, symmetric)
    np.testing.assert_allclose(g.numpy(), g_ref.numpy(), atol=1e-12)


def test_autocast_does_not_lower_precision():
    """Under a caller's bf16 autocast the solver and GMOTLoss give the float32 results exactly
    (without the guard, bf16 products moved the plan by ~1e-3 and the value in the 3rd digit)."""
    g = torch.Generator().manual_seed(0)
    B, n, m = 2, 20, 6
    M = torch.rand(B, n, m, generator=g)
    C1 = torch.rand(B, n, n, generator=g)
    C1 = (C1 + C1.transpose(1, 2)) / 2
    C2 = torch.rand(B, m, m, generator=g)
    C2 = (C2 + C2.transpose(1, 2)) / 2
    ref = fused_gromov_wasserstein(M, C1, C2, alpha=0.5, epsilon=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fused_gromov_wasserstein(M, C1, C2, alpha=0.5, epsilon=0.05)
    assert torch.equal(got.plan, ref.plan) and torch.equal(got.value, ref.value)

    h = torch.randn(2, 12, 8, generator=g)
    z = torch.randn(2, 5, 8, generator=g)
    lens_h, lens_z = torch.tensor([12, 7]), torch.tensor([5, 4])
    loss_fn = GMOTLoss(alpha=0.5, epsilon=0.1)
    ref_loss, ref_plan = loss_fn(h, lens_h, z, lens_z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, plan = loss_fn(h, lens_h, z, lens_z)
    assert torch.equal(loss, ref_loss) and torch.equal(plan, ref_plan)
