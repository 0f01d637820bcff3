"""The RNN-T recursion's Triton kernels compile for Hopper (sm_90a) without register spills.

Ahead-of-time compilation through Triton's whole CUDA pipeline and ptxas (tests/triton_aot.py);
the interpreter test checks the kernels' logic, the gpu test their results on a device.
"""

from __future__ import annotations

import pytest

pytest.importorskip("triton")

from triton_aot import compile_kernel, ptx_usage  # noqa: E402

from gmot.transducer import triton_kernels as tk  # noqa: E402


@pytest.mark.parametrize("which", ["alpha", "beta"])
@pytest.mark.parametrize("dtype,S", [("fp32", 30), ("fp64", 30), ("fp32", 200)])
def test_recursion_kernels_compile_for_hopper(which, dtype, S):
    fn = tk._alpha_kernel if which == "alpha" else tk._beta_kernel
    X, Y, out, d_ptr, s_ptr = fn.arg_names[:5]
    sig = {X: f"*{dtype}", Y: f"*{dtype}", out: f"*{dtype}", d_ptr: "*i64", s_ptr: "*i64"}
    sig.update(D="i32", S1="i32")
    block, warps = tk.launch_config(S + 1)
    k = compile_kernel(fn, sig, {"BLOCK": block}, warps)
    use = ptx_usage(k.asm["ptx"])
    assert use["spill_stores"] == 0 and use["spill_loads"] == 0, use
