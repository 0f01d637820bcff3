"""The named result of sinkhorn_plan (SinkhornPlan): each field means what its name says."""

import pytest
import torch

from gmot.ot.fgw import _inner_plan
from gmot.ot.sinkhorn import NEG_LARGE, SinkhornPlan, mask_log_kernel, sinkhorn_plan


def _problem(B=3, n=7, m=4, eps=0.1, seed=0):
    g = torch.Generator().manual_seed(seed)
    M = torch.rand(B, n, m, generator=g, dtype=torch.float64)
    a = torch.rand(B, n, generator=g, dtype=torch.float64) + 0.1
    b = torch.rand(B, m, generator=g, dtype=torch.float64) + 0.1
    a[1, 5:] = 0  # padded frames
    b[2, 3:] = 0  # padded tokens
    a, b = a / a.sum(1, keepdim=True), b / b.sum(1, keepdim=True)
    return mask_log_kernel(-M / eps, a, b), a, b


def _check_fields(sol, log_K, a, b, tol):
    B, n, m = log_K.shape
    assert isinstance(sol, SinkhornPlan)
    assert sol.u.shape == (B, n) and sol.v.shape == (B, m)
    assert sol.plan.shape == sol.log_plan.shape == (B, n, m)
    valid = (a > 0)[:, :, None] & (b > 0)[:, None, :]
    # potentials: 0 at padding; log_plan = log_K + u + v (NEG_LARGE at padding); plan = its exp
    assert bool((sol.u[a == 0] == 0).all()) and bool((sol.v[b == 0] == 0).all())
    expected_log = log_K + sol.u[:, :, None] + sol.v[:, None, :]
    torch.testing.assert_close(sol.log_plan[valid], expected_log[valid], rtol=0, atol=1e-12)
    assert bool((sol.log_plan[~valid] == NEG_LARGE).all())
    torch.testing.assert_close(sol.plan, sol.log_plan.exp(), rtol=1e-12, atol=0)
    assert bool((sol.plan[~valid] == 0).all())
    # the plan's marginals are the given weights: columns exactly after the last v update,
    # rows within the stopping tolerance
    torch.testing.assert_close(sol.plan.sum(1), b, rtol=0, atol=1e-12)
    assert float((sol.plan.sum(2) - a).abs().sum(1).max()) < tol


def test_sinkhorn_plan_fields():
    log_K, a, b = _problem()
    sol = sinkhorn_plan(log_K, a, b, max_iter=1000, tol=1e-10, check_every=10, kernel="torch")
    _check_fields(sol, log_K, a, b, tol=1e-10)
    # n_iter: whole blocks of check_every, stopped before the limit once converged
    assert 0 < sol.n_iter < 1000 and sol.n_iter % 10 == 0
    # tuple unpacking still works, in the field order
    u, v, n_iter, log_plan, plan = sol
    assert u is sol.u and v is sol.v and n_iter == sol.n_iter
    assert log_plan is sol.log_plan and plan is sol.plan


def test_n_iter_is_the_limit_when_not_converged():
    log_K, a, b = _problem(eps=0.01)
    sol = sinkhorn_plan(log_K, a, b, max_iter=7, tol=1e-14, check_every=3, kernel="torch")
    assert sol.n_iter == 7
    assert sinkhorn_plan(log_K, a, b, max_iter=5, tol=0, kernel="torch").n_iter == 5


@pytest.mark.parametrize("order", ["uv", "vu"])
def test_inner_plan_names_u_rows_and_v_columns(order):
    """fgw's v-first order solves the transposed problem: its potentials and plan come back
    under the right names (u per row of the original problem, plan (B, n, m))."""
    log_K, a, b = _problem()
    sol = _inner_plan(log_K, a, b, None, order, 1.0, 1.0, max_iter=1000, tol=1e-10,
                      check_every=10, kernel="torch")  # fmt: skip
    assert 0 < sol.n_iter < 1000
    if order == "uv":
        _check_fields(sol, log_K, a, b, tol=1e-10)
    else:  # rows are exact after the last (u) update, columns within the tolerance
        t = SinkhornPlan(sol.v, sol.u, sol.n_iter, sol.log_plan.transpose(1, 2),
                         sol.plan.transpose(1, 2))  # fmt: skip
        _check_fields(t, log_K.transpose(1, 2), b, a, tol=1e-10)
