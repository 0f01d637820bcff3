"""The Triton kernels' logic, run by Triton's CPU interpreter (TRITON_INTERPRET=1) in a
subprocess, against the torch anti-diagonal sweeps. This checks indexing, masking, endpoint
injection and dtypes; it cannot check GPU-only behaviour (barriers, speed): see the gpu test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

SCRIPT = textwrap.dedent(
    """
    import torch
    from gmot.transducer import triton_kernels as tk
    from gmot.transducer.recursion import (
        _alpha_torch, _beta_torch, _endpoints, check_recursion_inputs, skew_inputs,
    )
    assert tk.triton_available()
    for modified in (False, True):
        for dtype in (torch.float32, torch.float64):
            g = torch.Generator().manual_seed(0)
            B, S, T = 3, 5, 9
            px = torch.randn(B, S, T if modified else T + 1, generator=g, dtype=dtype)
            py = torch.randn(B, S + 1, T, generator=g, dtype=dtype)
            bd = torch.tensor([[0, 0, S, T], [1, 2, 4, 7], [0, 3, 2, 9]])
            _, bd = check_recursion_inputs(px, py, bd)
            X, Y, _ = skew_inputs(px, py, bd, modified)
            d0, s0, d1, s1 = _endpoints(bd, modified)
            A = _alpha_torch(X, Y, d0, s0)
            Bt = _beta_torch(X, Y, d1, s1)
            A2, B2 = tk._launch(X, Y, d0, s0, d1, s1, True)
            assert A2.dtype == dtype
            torch.testing.assert_close(A2, A, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(B2, Bt, rtol=1e-6, atol=1e-6)
    print("TRITON-INTERPRETER-OK")
    """
)


def test_triton_kernels_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "TRITON-INTERPRETER-OK" in proc.stdout
