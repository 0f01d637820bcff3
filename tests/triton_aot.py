"""Ahead-of-time compilation of the project's Triton kernels for Hopper (sm_90a), without a GPU.

Triton's CPU interpreter checks a kernel's logic but accepts code the real compiler rejects
(loop-carried type changes, unsupported ops, layouts), and says nothing about registers. Here the
kernel goes through Triton's whole CUDA pipeline (TTIR -> TTGIR -> LLVM IR -> PTX -> cubin)
for a chosen target, and the PTX is handed to the ``ptxas`` bundled with Triton with ``-v`` to
read the registers and spills per thread. No driver or device is needed.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

import pytest

triton = pytest.importorskip("triton")
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

HOPPER = GPUTarget("cuda", 90, 32)


def ptxas_path() -> str:
    """The ptxas bundled with Triton (or ``TRITON_PTXAS_PATH``); skips the test if absent."""
    path = os.environ.get("TRITON_PTXAS_PATH") or os.path.join(
        os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "ptxas"
    )
    if not os.access(path, os.X_OK):
        pytest.skip(f"no ptxas at {path}")
    return path


def compile_kernel(fn, signature: dict, constexprs: dict, num_warps: int, target=HOPPER):
    """Compile a ``@triton.jit`` function for ``target``; returns Triton's compiled kernel.

    ``signature`` maps every non-constexpr argument to a Triton type string (``"*fp32"``,
    ``"i32"``, ``"fp32"``); ``constexprs`` gives the compile-time constants.
    """
    ptxas_path()  # the CUDA backend needs it too
    sig = dict(signature)
    sig.update({name: "constexpr" for name in constexprs})
    missing = set(fn.arg_names) - set(sig)
    assert not missing, f"signature lacks arguments {sorted(missing)}"
    src = ASTSource(fn=fn, signature=sig, constexprs=constexprs)
    return triton.compile(src, target=target, options={"num_warps": num_warps})


def ptx_usage(ptx: str, arch: str = "sm_90a") -> dict[str, int]:
    """Registers and spill bytes per thread that ``ptxas -v`` reports for ``ptx``."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        out = subprocess.run(
            [ptxas_path(), f"-arch={arch}", "-v", src, "-o", os.path.join(tmp, "k.cubin")],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert out.returncode == 0, out.stderr[-2000:]
    regs = re.search(r"Used (\d+) registers", out.stderr)
    spill = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", out.stderr)
    assert regs and spill, out.stderr[-2000:]
    return {
        "registers": int(regs.group(1)),
        "spill_stores": int(spill.group(1)),
        "spill_loads": int(spill.group(2)),
    }
