"""Backend selection for the pruned RNN-T functions: k2 when importable, our builtin otherwise.

``set_rnnt_backend("auto" | "k2" | "builtin")`` chooses process-wide; ``"auto"`` (the default)
uses k2 when ``import k2`` works and the builtin implementation otherwise. Recipes expose the
choice as ``--rnnt-backend`` via :func:`add_rnnt_backend_argument`.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

_VALID = ("auto", "k2", "builtin")
_requested = "auto"
_k2_module: ModuleType | None = None
_k2_checked = False


def _try_import_k2() -> ModuleType | None:
    global _k2_module, _k2_checked
    if not _k2_checked:
        _k2_checked = True
        try:
            _k2_module = importlib.import_module("k2")
        except Exception:  # ImportError, or a k2 build that fails to load its library
            _k2_module = None
    return _k2_module


def k2_available() -> bool:
    """True when ``import k2`` works in this process."""
    return _try_import_k2() is not None


def set_rnnt_backend(name: str) -> None:
    """Select the backend: ``"auto"`` (k2 if importable, else builtin), ``"k2"`` or ``"builtin"``.

    Raises ValueError for an unknown name and ImportError when ``"k2"`` is asked for but
    ``import k2`` fails.
    """
    global _requested
    if name not in _VALID:
        raise ValueError(f"rnnt backend must be one of {_VALID}, got {name!r}")
    if name == "k2" and not k2_available():
        raise ImportError("rnnt backend 'k2' requested but `import k2` failed; use 'builtin'")
    _requested = name


def get_rnnt_backend() -> str:
    """The backend that runs now: ``"k2"`` or ``"builtin"`` (``"auto"`` resolved)."""
    if _requested == "auto":
        return "k2" if k2_available() else "builtin"
    return _requested


def available_rnnt_backends() -> list[str]:
    """Backends usable in this process (always includes ``"builtin"``)."""
    return ["builtin", "k2"] if k2_available() else ["builtin"]


def k2_module() -> ModuleType:
    """The imported k2 module (only call when :func:`get_rnnt_backend` is ``"k2"``)."""
    mod = _try_import_k2()
    if mod is None:
        raise ImportError("k2 is not importable")
    return mod


def add_rnnt_backend_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--rnnt-backend {auto,k2,builtin}`` (default ``auto``) to ``parser``.

    After parsing, call ``set_rnnt_backend(args.rnnt_backend)``.
    """
    parser.add_argument(
        "--rnnt-backend",
        type=str,
        default="auto",
        choices=list(_VALID),
        help="Pruned RNN-T implementation: k2 if importable (auto), k2, or builtin.",
    )
    return parser
