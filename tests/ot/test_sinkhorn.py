"""Entropic OT (alpha = 0) vs POT's ot.sinkhorn and ot.emd."""

import numpy as np
import ot
import pytest
import torch

from gmot.ot import fused_gromov_wasserstein, log_sinkhorn, sinkhorn


def _problem(rng, n, m):
    a = rng.random(n) + 0.1
    b = rng.random(m) + 0.1
    return rng.random((n, m)), a / a.sum(), b / b.sum()


@pytest.mark.parametrize("n,m", [(7, 5), (3, 9), (1, 4)])
def test_sinkhorn_matches_pot(n, m):
    """Value and plan vs ot.sinkhorn (float64, converged): atol 1e-9."""
    rng = np.random.default_rng(n * 10 + m)
    M, a, b = _problem(rng, n, m)
    eps = 0.05
    T_ref = ot.sinkhorn(a, b, M, eps, numItermax=20000, stopThr=1e-14)
    res = sinkhorn(
        torch.tensor(M)[None], torch.tensor(a)[None], torch.tensor(b)[None],
        epsilon=eps, max_iter=20000, tol=1e-13,
    )  # fmt: skip
    np.testing.assert_allclose(res.plan[0].numpy(), T_ref, atol=1e-9)
    assert res.value.item() == pytest.approx(float((M * T_ref).sum()), abs=1e-9)
    # fused_gromov_wasserstein with alpha=0 is the same entropic OT
    C1 = torch.rand(1, n, n, dtype=torch.float64)
    C2 = torch.rand(1, m, m, dtype=torch.float64)
    fgw = fused_gromov_wasserstein(
        torch.tensor(M)[None], C1, C2, torch.tensor(a)[None], torch.tensor(b)[None],
        alpha=0.0, epsilon=eps, max_iter_inner=20000, tol_inner=1e-13,
    )  # fmt: skip
    np.testing.assert_allclose(fgw.plan[0].numpy(), T_ref, atol=1e-9)
    assert fgw.value.item() == pytest.approx(res.value.item(), abs=1e-12)


def test_small_epsilon_approaches_emd():
    """As epsilon -> 0 the entropic value tends to ot.emd's: 0 <= gap <= eps * log(n m)."""
    rng = np.random.default_rng(3)
    n, m = 6, 4
    M, a, b = _problem(rng, n, m)
    T_emd = ot.emd(a, b, M)
    v_emd = float((M * T_emd).sum())
    for eps in (1e-2, 2e-3):
        res = sinkhorn(
            torch.tensor(M)[None], torch.tensor(a)[None], torch.tensor(b)[None],
            epsilon=eps, max_iter=50000, tol=1e-12,
        )  # fmt: skip
        gap = res.value.item() - v_emd
        assert -1e-9 <= gap <= eps * np.log(n * m), (eps, gap)
    # at the smallest epsilon the plan is close to the (unique) EMD plan
    assert np.abs(res.plan[0].numpy() - T_emd).sum() < 0.05


def test_batched_padding_matches_single():
    """A padded batch gives each problem's solution; padding gets zero plan and zero grad."""
    rng = np.random.default_rng(5)
    probs = [_problem(rng, n, m) for n, m in [(5, 3), (2, 4), (4, 4)]]
    B, N, Mx = 3, 5, 4
    Mb = torch.full((B, N, Mx), 7.0, dtype=torch.float64)
    ab = torch.zeros(B, N, dtype=torch.float64)
    bb = torch.zeros(B, Mx, dtype=torch.float64)
    for i, (M, a, b) in enumerate(probs):
        Mb[i, : len(a), : len(b)] = torch.tensor(M)
        ab[i, : len(a)] = torch.tensor(a)
        bb[i, : len(b)] = torch.tensor(b)
    Mb[1, 3, 3] = float("nan")  # garbage in padding must not matter
    Mb.requires_grad_(True)
    res = sinkhorn(Mb, ab, bb, epsilon=0.1, max_iter=3000, tol=1e-12)
    res.value.sum().backward()
    for i, (M, a, b) in enumerate(probs):
        n, m = len(a), len(b)
        Ms = torch.tensor(M)[None].requires_grad_(True)
        single = sinkhorn(
            Ms, torch.tensor(a)[None], torch.tensor(b)[None], epsilon=0.1, max_iter=3000, tol=1e-12
        )
        single.value.sum().backward()
        assert res.value[i].item() == pytest.approx(single.value.item(), abs=1e-12)
        np.testing.assert_allclose(res.plan[i, :n, :m].numpy(), single.plan[0].numpy(), atol=1e-12)
        assert float(res.plan[i].sum()) == pytest.approx(1.0, abs=1e-10)
        np.testing.assert_allclose(Mb.grad[i, :n, :m].numpy(), Ms.grad[0].numpy(), atol=1e-12)
        outside = Mb.grad[i].clone()
        outside[:n, :m] = 0
        assert torch.count_nonzero(outside) == 0
    assert torch.isfinite(Mb.grad).all()


def test_envelope_gradient_matches_finite_differences():
    """d/dM of min_T <M,T> - eps H(T) equals the plan; our value's gradient (plan constant)."""
    rng = np.random.default_rng(7)
    M, a, b = _problem(rng, 4, 3)
    eps = 0.2
    at, bt = torch.tensor(a)[None], torch.tensor(b)[None]

    def entropic_objective(Mx):
        r = sinkhorn(Mx, at, bt, epsilon=eps, max_iter=5000, tol=1e-14)
        T = r.plan
        return float(r.value + eps * torch.xlogy(T, T).sum())

    Mt = torch.tensor(M)[None].requires_grad_(True)
    sinkhorn(Mt, at, bt, epsilon=eps, max_iter=5000, tol=1e-14).value.sum().backward()
    fd = torch.zeros_like(Mt)
    h = 1e-6
    for i in range(4):
        for j in range(3):
            E = torch.zeros_like(Mt)
            E[0, i, j] = h
            fd[0, i, j] = (
                entropic_objective(Mt.detach() + E) - entropic_objective(Mt.detach() - E)
            ) / (2 * h)
    np.testing.assert_allclose(Mt.grad.numpy(), fd.numpy(), atol=1e-7)


def test_log_prior_equals_shifted_cost():
    """KL(T | exp(log P)) regularisation == entropic OT on M - eps log P (POT reference)."""
    rng = np.random.default_rng(11)
    M, a, b = _problem(rng, 5, 4)
    logP = -rng.random((5, 4)) * 3
    eps = 0.1
    T_ref = ot.sinkhorn(a, b, M - eps * logP, eps, numItermax=20000, stopThr=1e-14)
    res = sinkhorn(
        torch.tensor(M)[None], torch.tensor(a)[None], torch.tensor(b)[None], epsilon=eps,
        max_iter=20000, tol=1e-13, log_prior=torch.tensor(logP)[None],
    )  # fmt: skip
    np.testing.assert_allclose(res.plan[0].numpy(), T_ref, atol=1e-9)


@pytest.mark.parametrize("n,m", [(1, 1), (1, 5), (3, 40), (400, 3)])
def test_float32_tiny_epsilon_is_finite(n, m):
    torch.manual_seed(0)
    M = torch.rand(2, n, m) * 2
    res = sinkhorn(M, epsilon=1e-4, max_iter=200, tol=1e-4)
    assert torch.isfinite(res.plan).all() and torch.isfinite(res.value).all()
    # column marginals are exact after each sweep
    np.testing.assert_allclose(res.plan.sum(1).numpy(), np.full((2, m), 1 / m), rtol=1e-3)


def test_sinkhorn_bad_input():
    M = torch.rand(2, 3, 4)
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn(M, epsilon=0.0)
    with pytest.raises(ValueError, match="a must have shape"):
        sinkhorn(M, torch.ones(3, 3) / 3, epsilon=0.1)
    with pytest.raises(ValueError, match="zero total mass"):
        sinkhorn(M, torch.zeros(2, 3), torch.zeros(2, 4), epsilon=0.1)
    with pytest.raises(ValueError, match="equal total mass"):
        sinkhorn(M, torch.ones(2, 3), torch.ones(2, 4) / 4, epsilon=0.1)


@pytest.mark.parametrize("n,m", [(6, 4), (2, 9)])
def test_hybrid_and_log_modes_give_the_same_iterates(n, m):
    """Hybrid (multiplicative sweeps on a stabilised kernel) == pure log-domain, sweep for sweep."""
    torch.manual_seed(3)
    log_K = -torch.rand(3, n, m, dtype=torch.float64) * 30
    a = torch.rand(3, n, dtype=torch.float64) + 0.1
    b = torch.rand(3, m, dtype=torch.float64) + 0.1
    a, b = a / a.sum(1, keepdim=True), b / b.sum(1, keepdim=True)
    for iters in (1, 7, 25):
        u1, v1, _ = log_sinkhorn(log_K, a, b, max_iter=iters, tol=0, mode="hybrid")
        u2, v2, _ = log_sinkhorn(log_K, a, b, max_iter=iters, tol=0, mode="log")
        P1 = torch.exp(log_K + u1[:, :, None] + v1[:, None])
        P2 = torch.exp(log_K + u2[:, :, None] + v2[:, None])
        torch.testing.assert_close(P1, P2, atol=1e-12, rtol=1e-9)


@pytest.mark.slow
def test_compiled_sweeps_match_eager():
    """torch.compile path (CPU inductor here; ~20 s to compile) gives the eager result."""
    torch.manual_seed(4)
    log_K = -torch.rand(2, 30, 7) * 10
    a = torch.full((2, 30), 1 / 30)
    b = torch.full((2, 7), 1 / 7)
    u1, v1, _ = log_sinkhorn(log_K, a, b, max_iter=25, tol=0, compile=True)
    u2, v2, _ = log_sinkhorn(log_K, a, b, max_iter=25, tol=0)
    torch.testing.assert_close(u1, u2, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v1, v2, atol=1e-5, rtol=1e-5)
