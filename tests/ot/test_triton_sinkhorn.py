"""The fused Triton Sinkhorn kernel (gmot.ot.triton_sinkhorn) and its dispatch.

Three levels, as no GPU is available in CI:
- logic: the kernel runs under Triton's CPU interpreter (TRITON_INTERPRET=1, in a subprocess)
  against the torch path of gmot.ot.sinkhorn (same iterates at tol=0), against the torch path
  restricted to each problem's own iteration count (per-problem stopping), through
  fused_gromov_wasserstein / GMOTLoss, and on degenerate problems;
- compilation: the kernel is compiled ahead of time for sm_90a (Hopper) and ptxas reports its
  registers and spills (tests/triton_aot.py);
- GPU (marker gpu, skipped without CUDA): the compiled kernel against the torch path.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch

from gmot.ot import fused_gromov_wasserstein
from gmot.ot.sinkhorn import mask_log_kernel, sinkhorn_plan
from gmot.ot.triton_sinkhorn import MAX_TILE, fused_supported, launch_config

HAVE_TRITON = True
try:
    import triton  # noqa: F401
except Exception:  # pragma: no cover
    HAVE_TRITON = False
needs_triton = pytest.mark.skipif(not HAVE_TRITON, reason="triton not installed")

INTERPRETER_SCRIPT = textwrap.dedent(
    r"""
    import math
    import torch
    from gmot.ot import GMOTLoss, fused_gromov_wasserstein, sinkhorn
    from gmot.ot.sinkhorn import NEG_LARGE, exp_flush, log_sinkhorn, mask_log_kernel
    from gmot.ot.triton_sinkhorn import fused_sinkhorn, fused_supported, interpreter_active

    assert interpreter_active()

    def problem(B, n, m, dtype, seed, eps=0.05):
        g = torch.Generator().manual_seed(seed)
        M = torch.rand(B, n, m, generator=g, dtype=dtype)
        a = torch.rand(B, n, generator=g, dtype=dtype) + 0.1
        b = torch.rand(B, m, generator=g, dtype=dtype) + 0.1
        if B > 1:
            a[1, n // 2 + 1:] = 0  # padded frames
        if B > 2:
            b[2, m // 2 + 1:] = 0  # padded tokens
        a = a / a.sum(1, keepdim=True)
        b = b / b.sum(1, keepdim=True)
        return mask_log_kernel(-M / eps, a, b), a, b

    def close(x, y, atol, what):
        err = float((x - y).abs().max())
        assert err <= atol, f"{what}: max abs diff {err:.3e} > {atol:.1e}"

    # 1. Same iterates as the torch hybrid path when every sweep runs (tol = 0).
    for dtype, atol_u, atol_t in ((torch.float64, 1e-11, 1e-13), (torch.float32, 1e-4, 2e-6)):
        for max_iter, every, use_init in ((23, 5, False), (7, 1, True), (1, 10, False),
                                          (40, 40, True)):
            logK, a, b = problem(3, 9, 5, dtype, seed=max_iter)
            init = None
            if use_init:
                g = torch.Generator().manual_seed(1)
                init = (torch.randn(3, 9, generator=g, dtype=dtype),
                        torch.randn(3, 5, generator=g, dtype=dtype))
            u, v, it = log_sinkhorn(logK, a, b, max_iter=max_iter, tol=0, check_every=every,
                                    init=init)
            r = fused_sinkhorn(logK, a, b, max_iter=max_iter, tol=0, check_every=every,
                               init=init)
            u2, v2, it2, T2, LT2 = r.u, r.v, r.n_iter, r.plan, r.log_plan
            tag = f"{dtype} max_iter={max_iter} every={every} init={use_init}"
            assert it2.tolist() == [max_iter] * 3, (tag, it2)
            close(u2, u, atol_u, "u " + tag)
            close(v2, v, atol_u, "v " + tag)
            T = exp_flush(logK + u[:, :, None] + v[:, None, :])
            close(T2, T, atol_t, "plan " + tag)
            valid = (a > 0)[:, :, None] & (b > 0)[:, None, :]
            assert bool((T2[~valid] == 0).all()), "plan not 0 at padding " + tag
            assert bool((LT2[~valid] == NEG_LARGE).all()), "log plan not NEG_LARGE " + tag
            if init is not None:
                assert not torch.equal(init[0], u2), "init was modified in place"

    # 2. tol > 0: each problem stops on its own, after whole blocks, at the first block whose
    #    row-marginal error is below tol; its result equals the torch path run for exactly
    #    that many sweeps on that problem alone.
    dtype = torch.float64
    logK, a, b = problem(4, 11, 6, dtype, seed=7, eps=0.02)
    tol, every, max_iter = 1e-9, 10, 600
    r = fused_sinkhorn(logK, a, b, max_iter=max_iter, tol=tol, check_every=every)
    u2, it2, T2 = r.u, r.n_iter, r.plan
    its = it2.tolist()
    assert len(set(its)) > 1, f"expected problems to stop at different sweeps, got {its}"
    for i, k in enumerate(its):
        assert k % every == 0 or k == max_iter, its
        err = float((T2[i].sum(1) - a[i]).abs().sum())
        assert err < tol or k == max_iter, (i, k, err)
        u, v, _ = log_sinkhorn(logK[i:i + 1], a[i:i + 1], b[i:i + 1], max_iter=k, tol=0,
                               check_every=every)
        close(u2[i:i + 1], u, 1e-10, f"problem {i} after {k} sweeps")
        if k > every:  # the block before did not yet meet tol
            u, v, _ = log_sinkhorn(logK[i:i + 1], a[i:i + 1], b[i:i + 1], max_iter=k - every,
                                   tol=0, check_every=every)
            T = exp_flush(logK[i:i + 1] + u[:, :, None] + v[:, None, :])
            assert float((T[0].sum(1) - a[i]).abs().sum()) >= tol, (i, k)
    _, _, it_torch = log_sinkhorn(logK, a, b, max_iter=max_iter, tol=tol, check_every=every)
    assert max(its) == it_torch, (its, it_torch)

    # 3. Through the public solvers: identical results with the fused kernel and the torch path.
    g = torch.Generator().manual_seed(3)
    B, n, m = 3, 12, 5
    M = torch.rand(B, n, m, generator=g, dtype=torch.float64)
    C1 = torch.rand(B, n, n, generator=g, dtype=torch.float64)
    C1 = (C1 + C1.transpose(1, 2)) / 2
    C2 = torch.rand(B, m, m, generator=g, dtype=torch.float64)
    C2 = (C2 + C2.transpose(1, 2)) / 2
    a = torch.ones(B, n, dtype=torch.float64)
    a[1, 8:] = 0
    a = a / a.sum(1, keepdim=True)
    b = torch.ones(B, m, dtype=torch.float64)
    b[2, 3:] = 0
    b = b / b.sum(1, keepdim=True)
    for solver, alpha in (("ppa", 0.5), ("pgd", 0.5), ("pgd", 1.0), ("pgd", 0.0)):
        kw = dict(alpha=alpha, epsilon=0.05, solver=solver, max_iter=6, tol=0,
                  max_iter_inner=25, tol_inner=0, check_every=10)
        r1 = fused_gromov_wasserstein(M, C1, C2, a, b, inner_kernel="torch", **kw)
        r2 = fused_gromov_wasserstein(M, C1, C2, a, b, inner_kernel="triton", **kw)
        close(r2.plan, r1.plan, 1e-12, f"FGW plan {solver} alpha={alpha}")
        close(r2.value, r1.value, 1e-12, f"FGW value {solver} alpha={alpha}")
        assert (r1.n_outer, r1.n_inner) == (r2.n_outer, r2.n_inner)
    s1 = sinkhorn(M, a, b, epsilon=0.05, max_iter=30, tol=0, kernel="torch")
    s2 = sinkhorn(M, a, b, epsilon=0.05, max_iter=30, tol=0, kernel="triton")
    close(s2.plan, s1.plan, 1e-12, "sinkhorn plan")

    # GMOTLoss: loss and gradient to the features agree (float32, converged solves).
    g = torch.Generator().manual_seed(4)
    h = torch.randn(2, 14, 8, generator=g)
    z = torch.randn(2, 5, 8, generator=g)
    hl, zl = torch.tensor([14, 9]), torch.tensor([5, 3])
    out = []
    for kernel in ("torch", "triton"):
        hh = h.clone().requires_grad_(True)
        f = GMOTLoss(alpha=0.5, epsilon=0.1, inner_kernel=kernel, tol=1e-7, tol_inner=1e-7,
                     max_iter=50, max_iter_inner=200)
        loss, plan = f(hh, hl, z, zl)
        loss.sum().backward()
        out.append((loss.detach(), plan, hh.grad))
    close(out[1][0], out[0][0], 1e-5, "GMOTLoss value")
    close(out[1][1], out[0][1], 1e-5, "GMOTLoss plan")
    close(out[1][2], out[0][2], 1e-5, "GMOTLoss grad")

    # 4. Degenerate problems stay finite with exact row marginals (the default inner order
    #    updates v, then u, as POT does): tiny epsilon, identical
    #    sequences, length 1 on either side, La < Lt and La >> Lt (float32).
    for n, m, eps in ((1, 4, 1e-3), (6, 1, 1e-3), (3, 9, 1e-3), (40, 3, 1e-3), (7, 7, 1e-4)):
        x = torch.randn(1, max(n, m), 6, generator=g)
        hx, zx = x[:, :n], (x[:, :m] if n == m else torch.randn(1, m, 6, generator=g))
        hn = torch.nn.functional.normalize(hx, dim=-1)
        zn = torch.nn.functional.normalize(zx, dim=-1)
        Mx = 1 - hn @ zn.transpose(1, 2)
        C1x = 1 - hn @ hn.transpose(1, 2)
        C2x = 1 - zn @ zn.transpose(1, 2)
        r = fused_gromov_wasserstein(Mx, C1x, C2x, alpha=0.5, epsilon=eps, max_iter=20,
                                     max_iter_inner=200, inner_kernel="triton")
        assert bool(torch.isfinite(r.plan).all()) and bool(torch.isfinite(r.value).all()), (n, m)
        close(r.plan.sum(2), torch.full((1, n), 1.0 / n), 1e-5, f"row marginal {n}x{m}")
        if n == m:  # identical sequences: the identity coupling, FGW ~ 0
            close(r.plan[0], torch.eye(n) / n, 1e-3, "identity plan")
    print("TRITON-SINKHORN-INTERPRETER-OK")
    """
)


@needs_triton
def test_fused_kernel_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-c", INTERPRETER_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "TRITON-SINKHORN-INTERPRETER-OK" in proc.stdout


# ------------------------------------------------------------------ dispatch (no GPU needed)


def _small(dtype=torch.float32):
    g = torch.Generator().manual_seed(0)
    M = torch.rand(2, 5, 3, generator=g, dtype=dtype)
    a = torch.full((2, 5), 0.2, dtype=dtype)
    b = torch.full((2, 3), 1 / 3, dtype=dtype)
    return M, a, b


def test_auto_uses_torch_path_on_cpu():
    """Without CUDA (and without the interpreter) ``auto`` is the torch path: same numbers."""
    M, a, b = _small(torch.float64)
    log_K = mask_log_kernel(-M / 0.1, a, b)
    assert not fused_supported(log_K)
    r_auto = sinkhorn_plan(log_K, a, b, max_iter=20, tol=0, kernel="auto")
    r_torch = sinkhorn_plan(log_K, a, b, max_iter=20, tol=0, kernel="torch")
    for x, y in zip(r_auto, r_torch):
        assert torch.equal(torch.as_tensor(x), torch.as_tensor(y))


@needs_triton
def test_forced_triton_on_cpu_names_the_device():
    M, a, b = _small()
    log_K = mask_log_kernel(-M / 0.1, a, b)
    with pytest.raises(ValueError, match="CUDA"):
        sinkhorn_plan(log_K, a, b, max_iter=5, tol=0, kernel="triton")


def test_bad_kernel_names_raise():
    M, a, b = _small()
    C1 = torch.zeros(2, 5, 5)
    C2 = torch.zeros(2, 3, 3)
    with pytest.raises(ValueError, match="inner_kernel"):
        fused_gromov_wasserstein(M, C1, C2, alpha=0.5, epsilon=0.1, inner_kernel="cuda")
    log_K = mask_log_kernel(-M / 0.1, a, b)
    with pytest.raises(ValueError, match="kernel must be one of"):
        sinkhorn_plan(log_K, a, b, max_iter=5, tol=0, kernel="fast")
    with pytest.raises(ValueError, match="mode='hybrid' only"):
        sinkhorn_plan(log_K, a, b, max_iter=5, tol=0, kernel="triton", mode="log")


def test_launch_config(monkeypatch):
    monkeypatch.delenv("GMOT_SINKHORN_NUM_WARPS", raising=False)
    assert launch_config(250, 30) == (256, 32, 8)
    assert launch_config(1000, 30) == (1024, 32, 16)
    assert launch_config(1, 1) == (16, 16, 4)
    assert launch_config(33, 17) == (64, 32, 4)
    # the largest float32 tile is what the docstring promises: 1024 x 32 and 512 x 64
    assert 1024 * 32 <= MAX_TILE[torch.float32] and 512 * 64 <= MAX_TILE[torch.float32]
    monkeypatch.setenv("GMOT_SINKHORN_NUM_WARPS", "16")
    assert launch_config(250, 30)[2] == 16
    monkeypatch.setenv("GMOT_SINKHORN_NUM_WARPS", "3")
    with pytest.raises(ValueError, match="GMOT_SINKHORN_NUM_WARPS"):
        launch_config(250, 30)


# ------------------------------------------------------------------ sm_90 compilation


def _aot(dtype: str, n: int, m: int):
    from triton_aot import compile_kernel, ptx_usage

    from gmot.ot.triton_sinkhorn import _sinkhorn_kernel

    bn, bm, warps = launch_config(n, m)
    sig = {k: f"*{dtype}" for k in ("LOGK", "A", "Bw", "U", "V", "PLAN", "LOGPLAN")}
    sig.update(NITER="*i32", n="i32", m="i32", max_iter="i32", check_every="i32", tol="fp32")
    tiny = torch.finfo(torch.float32 if dtype == "fp32" else torch.float64).tiny
    const = dict(
        FLUSH=math.log(tiny), HAS_INIT=True, CHECK=True, WRITE_PLAN=True, BLOCK_N=bn, BLOCK_M=bm
    )
    k = compile_kernel(_sinkhorn_kernel, sig, const, warps)
    assert len(k.asm["cubin"]) > 0
    return ptx_usage(k.asm["ptx"])


@needs_triton
def test_compiles_for_hopper_without_spills_at_the_issue_shape(monkeypatch):
    """La=250, Lt=30 (the benchmark's shape): a 256 x 32 float32 tile, 8 warps; ptxas may spill
    at most a few words per thread (measured: 8 bytes with Triton 3.8 / ptxas 12.9)."""
    monkeypatch.delenv("GMOT_SINKHORN_NUM_WARPS", raising=False)
    use = _aot("fp32", 250, 30)
    assert use["spill_stores"] <= 64, use


@needs_triton
@pytest.mark.parametrize("dtype,n,m", [("fp32", 1000, 30), ("fp64", 250, 30), ("fp32", 1, 1)])
def test_compiles_for_hopper(monkeypatch, dtype, n, m):
    monkeypatch.delenv("GMOT_SINKHORN_NUM_WARPS", raising=False)
    use = _aot(dtype, n, m)
    assert use["registers"] <= 255


# ------------------------------------------------------------------ GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_fused_matches_torch_path(dtype):
    g = torch.Generator().manual_seed(0)
    B, n, m = 32, 250, 30
    h = torch.randn(B, n, 64, generator=g, dtype=dtype)
    z = torch.randn(B, m, 64, generator=g, dtype=dtype)
    a = torch.ones(B, n, dtype=dtype)
    b = torch.ones(B, m, dtype=dtype)
    for i in range(B):  # variable lengths
        a[i, n - 5 * i :] = 0
        b[i, m - (i % 7) :] = 0
    a, b = a / a.sum(1, keepdim=True), b / b.sum(1, keepdim=True)
    hn = torch.nn.functional.normalize(h, dim=-1)
    zn = torch.nn.functional.normalize(z, dim=-1)
    M = 1 - hn @ zn.transpose(1, 2)
    C1 = 1 - hn @ hn.transpose(1, 2)
    C2 = 1 - zn @ zn.transpose(1, 2)
    args = [x.cuda() for x in (M, C1, C2, a, b)]
    kw = dict(alpha=0.5, epsilon=0.1, solver="ppa", max_iter=10, tol=0, max_iter_inner=20,
              tol_inner=0)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r2 = fused_gromov_wasserstein(*args, inner_kernel="triton", **kw)
        r_auto = fused_gromov_wasserstein(*args, inner_kernel="auto", **kw)
    fallbacks = [str(w.message) for w in caught if "Sinkhorn kernel failed" in str(w.message)]
    assert not fallbacks, fallbacks  # auto must not have fallen back to the torch path
    r1 = fused_gromov_wasserstein(*args, inner_kernel="torch", **kw)
    atol = 1e-6 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(r2.plan, r1.plan, atol=atol, rtol=1e-4)
    torch.testing.assert_close(r2.value, r1.value, atol=atol, rtol=1e-4)
    torch.testing.assert_close(r_auto.plan, r2.plan, atol=0, rtol=0)
    valid = (args[3] > 0)[:, :, None] & (args[4] > 0)[:, None, :]
    assert bool((r2.plan[~valid] == 0).all())
    # per-problem stopping on the device: every problem meets tol or used every sweep
    log_K = mask_log_kernel(-args[0] / 0.05, args[3], args[4])
    sol = sinkhorn_plan(log_K, args[3], args[4], max_iter=500, tol=1e-5, kernel="triton")
    T, n_iter = sol.plan, sol.n_iter
    err = float((T.sum(2) - args[3]).abs().sum(1).max())
    assert err < 1e-5 or n_iter == 500, (err, n_iter)
