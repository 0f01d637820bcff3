"""Optional Triton import shared by the project's GPU kernels (gmot.ot, gmot.transducer).

``HAVE_TRITON`` is False when Triton is not installed or fails to import; kernels are then
not defined and callers use their torch paths. ``interpreter_active()`` tells whether Triton's
CPU interpreter is on (``TRITON_INTERPRET=1`` at import time), under which kernels accept CPU
tensors: that is how the tests check the kernels' logic without a GPU.
"""

from __future__ import annotations

import os

try:  # pragma: no cover - depends on the installation
    import triton
    import triton.language as tl

    HAVE_TRITON = True
except Exception:  # pragma: no cover
    triton = None
    tl = None
    HAVE_TRITON = False

__all__ = ["HAVE_TRITON", "interpreter_active", "tl", "triton"]


def interpreter_active() -> bool:
    """True when Triton's CPU interpreter is on (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
