"""mutual_information_recursion: brute force, naive loops, occupation grads, boundaries."""

from __future__ import annotations

import pytest
import torch
from rnnt_reference import brute_force_scores, naive_scores, torch_loop_scores

from gmot.transducer import mutual_information_recursion
from gmot.transducer.recursion import (
    ROW_SCAN_MAX_BATCH_ROWS,
    ROW_SCAN_MAX_PREFIX,
    recursion_builtin,
    recursion_diagonals,
    recursion_rows,
)


def _rand(B, S, T, modified, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    px = torch.randn(B, S, T if modified else T + 1, generator=g, dtype=dtype)
    py = torch.randn(B, S + 1, T, generator=g, dtype=dtype)
    return px, py


def _random_boundary(B, S, T, modified, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(B):
        while True:
            s0 = int(torch.randint(0, S + 1, (1,), generator=g))
            t0 = int(torch.randint(0, T + 1, (1,), generator=g))
            s1 = int(torch.randint(s0, S + 1, (1,), generator=g))
            t1 = int(torch.randint(t0, T + 1, (1,), generator=g))
            if not modified or s1 - s0 <= t1 - t0:
                break
        rows.append([s0, t0, s1, t1])
    return torch.tensor(rows, dtype=torch.int64)


@pytest.mark.parametrize("modified", [False, True])
@pytest.mark.parametrize("S,T", [(0, 3), (1, 1), (2, 3), (3, 4), (4, 2)])
def test_matches_brute_force(backend, modified, S, T):
    if modified and S > T:
        pytest.skip("modified needs S <= T")
    px, py = _rand(3, S, T, modified)
    got = mutual_information_recursion(px, py)
    want = brute_force_scores(px, py)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("modified", [False, True])
def test_boundary_matches_brute_force(backend, modified):
    S, T = 4, 5
    px, py = _rand(6, S, T, modified, seed=1)
    boundary = _random_boundary(6, S, T, modified, seed=2)
    boundary[0] = torch.tensor([1, 2, 3, 5])  # s_begin > 0 and t_begin > 0
    got = mutual_information_recursion(px, py, boundary)
    torch.testing.assert_close(got, brute_force_scores(px, py, boundary), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("modified", [False, True])
def test_grads_equal_autograd_of_naive_loop(backend, modified):
    S, T = 3, 5
    px, py = _rand(4, S, T, modified, seed=3)
    boundary = _random_boundary(4, S, T, modified, seed=4)
    boundary[1] = torch.tensor([1, 1, S, T])
    px1, py1 = px.clone().requires_grad_(), py.clone().requires_grad_()
    ref = torch_loop_scores(px1, py1, boundary)
    w = torch.tensor([1.0, -0.5, 2.0, 0.25], dtype=torch.float64)
    gpx_ref, gpy_ref = torch.autograd.grad((ref * w).sum(), (px1, py1))

    px2, py2 = px.clone().requires_grad_(), py.clone().requires_grad_()
    scores = mutual_information_recursion(px2, py2, boundary)
    torch.testing.assert_close(scores, ref.detach())
    gpx, gpy = torch.autograd.grad((scores * w).sum(), (px2, py2))
    torch.testing.assert_close(gpx, gpx_ref)
    torch.testing.assert_close(gpy, gpy_ref)

    # return_grad gives d scores / d px, py (unweighted).
    _, (gx, gy) = mutual_information_recursion(px, py, boundary, return_grad=True)
    torch.testing.assert_close(gx * w.view(-1, 1, 1), gpx_ref)
    torch.testing.assert_close(gy * w.view(-1, 1, 1), gpy_ref)


def test_occupation_sums_to_one_regular(backend):
    S, T = 5, 7
    px, py = _rand(3, S, T, False, seed=5)
    boundary = torch.tensor([[0, 0, 5, 7], [0, 0, 3, 4], [1, 2, 4, 6]])
    _, (gx, gy) = mutual_information_recursion(px, py, boundary, return_grad=True)
    for b, (s0, t0, s1, t1) in enumerate(boundary.tolist()):
        col = gy[b].sum(0)  # over s, per frame
        torch.testing.assert_close(col[t0:t1], torch.ones(t1 - t0, dtype=torch.float64))
        assert col[:t0].abs().max().item() == 0 if t0 else True
        assert (col[t1:] == 0).all()
        row = gx[b].sum(1)  # over t, per symbol
        torch.testing.assert_close(row[s0:s1], torch.ones(s1 - s0, dtype=torch.float64))
        assert (row[s1:] == 0).all() and (row[:s0] == 0).all()


def test_float32_matches_float64(backend):
    px, py = _rand(2, 6, 9, False, seed=6)
    s64, (gx64, gy64) = mutual_information_recursion(px, py, return_grad=True)
    s32, (gx32, gy32) = mutual_information_recursion(px.float(), py.float(), return_grad=True)
    assert s32.dtype == torch.float32 and gx32.dtype == torch.float32
    torch.testing.assert_close(s32.double(), s64, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx32.double(), gx64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("modified", [False, True])
def test_larger_random_matches_naive(backend, modified):
    S, T = 20, 60
    px, py = _rand(3, S, T, modified, seed=7)
    boundary = torch.tensor([[0, 0, 20, 60], [2, 5, 17, 41], [0, 3, 9, 60]])
    got = mutual_information_recursion(px, py, boundary)
    torch.testing.assert_close(got, naive_scores(px, py, boundary), rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("modified", [False, True])
def test_row_scan_equals_diagonal_loop(modified, dtype):
    """The CPU row scan and the diagonal sweeps (the Triton kernels' layout) agree, grads too."""
    B, S, T = 6, 12, 40
    px, py = _rand(B, S, T, modified, seed=11)
    px, py = 3 * px - 2, 3 * py - 2  # log-prob-like spread
    boundary = _random_boundary(B, S, T, modified, seed=12)
    boundary[0] = torch.tensor([0, 0, S, T])
    boundary[1] = torch.tensor([3, 7, 3, 30])  # one row only: blanks, no symbols
    boundary[2] = torch.tensor([2, 9, 2, 9])  # a single cell: score 0
    want_s, want_gx, want_gy = recursion_diagonals(px, py, boundary, modified, True)
    got = recursion_rows(px.to(dtype), py.to(dtype), boundary, modified, True)
    assert got is not None
    got_s, got_gx, got_gy = got
    assert got_s.dtype == got_gx.dtype == got_gy.dtype == dtype
    assert got_gx.shape == px.shape and got_gy.shape == py.shape
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got_s.double(), want_s, **tol)
    torch.testing.assert_close(got_gx.double(), want_gx, **tol)
    torch.testing.assert_close(got_gy.double(), want_gy, **tol)
    assert got_s[2].item() == 0.0 and got_gx[2].abs().sum().item() == 0.0


@pytest.mark.parametrize("modified", [False, True])
def test_row_scan_declines_where_prefix_sums_lose_precision(builtin_backend, modified):
    """A -inf blank arc inside the box, or huge |py|, sends the recursion to the diagonal loop."""
    S, T = 3, 6
    px, py = _rand(2, S, T, modified, seed=13)
    boundary = torch.tensor([[0, 0, S, T], [1, 1, 3, 5]])
    py_inf = py.clone()
    py_inf[0, 1, 2] = float("-inf")  # inside both boxes: those paths are impossible
    py_inf[1, 0, 4] = float("-inf")  # outside box 1 (s < s_begin): ignored either way
    assert (
        recursion_rows(py=py_inf, px=px, boundary=boundary, modified=modified, need_grad=False)
        is None
    )
    got = mutual_information_recursion(px, py_inf, boundary)
    torch.testing.assert_close(
        got, brute_force_scores(px, py_inf, boundary), rtol=1e-10, atol=1e-10
    )
    assert torch.isfinite(got).all()

    py_big = -py.abs() - ROW_SCAN_MAX_PREFIX / 2  # prefix sums reach 3x the accepted bound
    assert recursion_rows(px, py_big, boundary, modified, need_grad=False) is None
    got = mutual_information_recursion(px, py_big, boundary)
    torch.testing.assert_close(got, naive_scores(px, py_big, boundary), rtol=1e-12, atol=0.0)

    # Outside the box anything goes: the row scan still runs and matches brute force.
    py_out = py.clone()
    py_out[1, 0, :] = float("nan")  # row 0 < s_begin of utterance 1
    py_out[0, :, :] = py[0]
    out = recursion_rows(px[1:], py_out[1:], boundary[1:], modified, need_grad=False)
    assert out is not None
    want = brute_force_scores(px[1:], py[1:], boundary[1:])
    torch.testing.assert_close(out[0], want, rtol=1e-10, atol=1e-10)


def test_cpu_dispatch_row_scan_for_small_batches(monkeypatch):
    """recursion_builtin takes the row scan while B * (S+1) is small, the diagonal loop above."""
    from gmot.transducer import recursion

    calls = []

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return recursion_rows(*args, **kwargs)

    monkeypatch.setattr(recursion, "recursion_rows", spy)
    S, T = 7, 9
    B_small = ROW_SCAN_MAX_BATCH_ROWS // (S + 1)
    for B in (B_small, B_small + 1):
        px, py = _rand(B, S, T, False, seed=B)
        bd = torch.tensor([[0, 0, S, T]] * B)
        scores, _, _ = recursion_builtin(px, py, bd, False, False)
        torch.testing.assert_close(scores[:2], naive_scores(px[:2], py[:2]), rtol=1e-10, atol=1e-10)
    assert calls == [(B_small, S, T + 1)]


def test_bad_inputs(builtin_backend):
    px, py = _rand(2, 3, 4, False)
    with pytest.raises(ValueError, match="py"):
        mutual_information_recursion(px, py[:, :3])
    with pytest.raises(ValueError, match="px"):
        mutual_information_recursion(px[:, :, :3].contiguous()[:, :, :2], py)
    with pytest.raises(TypeError, match="px"):
        mutual_information_recursion(px.half(), py.half())
    with pytest.raises(TypeError, match="py"):
        mutual_information_recursion(px, py.float())
    with pytest.raises(ValueError, match="boundary"):
        mutual_information_recursion(px, py, torch.tensor([[0, 0, 4, 4], [0, 0, 3, 4]]))
    with pytest.raises(TypeError, match="boundary"):
        mutual_information_recursion(px, py, torch.tensor([[0, 0, 3, 4]] * 2, dtype=torch.int32))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("modified", [False, True])
def test_triton_matches_cpu(dtype, modified):
    from gmot.transducer import recursion, triton_kernels

    if not triton_kernels.triton_available():
        pytest.skip("triton not importable")
    S, T = 30, 250
    px, py = _rand(8, S, T, modified, dtype=dtype, seed=8)
    boundary = _random_boundary(8, S, T, modified, seed=9)
    boundary[0] = torch.tensor([0, 0, S, T])
    s_cpu, gx_cpu, gy_cpu = recursion_builtin(px, py, boundary, modified, True)
    s_gpu, gx_gpu, gy_gpu = recursion_builtin(px.cuda(), py.cuda(), boundary.cuda(), modified, True)
    assert not recursion._TRITON_FAILED, "Triton kernel failed and fell back"
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(s_gpu.cpu(), s_cpu, **tol)
    torch.testing.assert_close(gx_gpu.cpu(), gx_cpu, **tol)
    torch.testing.assert_close(gy_gpu.cpu(), gy_cpu, **tol)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("modified", [False, True])
def test_row_scan_on_cuda_matches_cpu(modified):
    """The row scan (used on CUDA when Triton is missing) gives the CPU's numbers on the GPU."""
    S, T = 30, 250
    px, py = _rand(8, S, T, modified, dtype=torch.float32, seed=10)
    boundary = _random_boundary(8, S, T, modified, seed=11)
    want = recursion_rows(px, py, boundary, modified, True)
    got = recursion_rows(px.cuda(), py.cuda(), boundary.cuda(), modified, True)
    assert want is not None and got is not None
    for g, w in zip(got, want):
        torch.testing.assert_close(g.cpu(), w, rtol=1e-5, atol=1e-5)
