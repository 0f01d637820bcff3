"""Backend selection for the pruned RNN-T functions: k2's kernels when importable, ours otherwise.

Backends:

- ``"k2"``: the ``k2`` package;
- ``"fast_rnnt"``: the ``fast_rnnt`` package, k2's RNN-T kernels packaged alone (an sdist on
  PyPI that builds against current torch; same function names and arguments as k2's);
- ``"builtin"``: gmot's own implementation (vectorised CPU code, Triton kernels on CUDA);
- ``"auto"`` (the default): the first of k2, fast_rnnt that imports, else builtin. When the
  chosen package was built without CUDA and the inputs are on a GPU, ``auto`` runs builtin
  for that call instead of failing.

Choosing, by precedence: ``set_rnnt_backend(name)`` in code (recipes call it with their
``--rnnt-backend`` flag, :func:`add_rnnt_backend_argument`), else the environment variable
``GMOT_RNNT_BACKEND`` (``auto``, ``k2``, ``fast_rnnt`` or ``builtin``; read when the backend is
resolved, so a script or a test run can choose without code), else ``auto``. The flag's default
is the environment variable's value, so a flag given on the command line wins over the
environment and an absent flag keeps it. ``set_rnnt_backend(None)`` returns to environment/auto.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import warnings
from types import ModuleType

import torch

EXTERNAL_BACKENDS = ("k2", "fast_rnnt")  # in auto's order of preference
_VALID = ("auto", *EXTERNAL_BACKENDS, "builtin")
ENV_VAR = "GMOT_RNNT_BACKEND"
_requested: str | None = None  # None: not chosen in code; the environment (or auto) decides
_FUNCTIONS = (
    "mutual_information_recursion",
    "rnnt_loss_simple",
    "rnnt_loss_smoothed",
    "get_rnnt_prune_ranges",
    "do_rnnt_pruning",
    "rnnt_loss_pruned",
    "rnnt_loss",
)
_modules: dict[str, ModuleType | None] = {}
_unusable: dict[str, str | None] = {}  # why an external backend cannot be used
_warned_no_cuda: set[str] = set()


def api_mismatch(mod: ModuleType) -> str | None:
    """Why ``mod`` cannot serve as a backend (None when it can).

    gmot passes ``rnnt_type``; k2 releases before it (which had a ``modified`` flag instead) and
    packages lacking one of the functions are refused rather than failing mid-training.
    """
    for fn in _FUNCTIONS:
        if not callable(getattr(mod, fn, None)):
            return f"{mod.__name__} has no {fn}()"
    try:
        params = inspect.signature(mod.rnnt_loss_simple).parameters
    except (TypeError, ValueError):  # no introspectable signature: trust the package
        return None
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "rnnt_type" not in params and not takes_any:
        return f"{mod.__name__}.rnnt_loss_simple() has no rnnt_type argument (too old)"
    return None


def _try_import(name: str) -> ModuleType | None:
    if name not in _modules:
        mod: ModuleType | None = None
        try:
            mod = importlib.import_module(name)
            _unusable[name] = api_mismatch(mod)
        except Exception as exc:  # ImportError, or a build that fails to load its library
            _unusable[name] = f"`import {name}` failed ({type(exc).__name__}: {exc})"
        if mod is not None and _unusable[name] is not None:
            warnings.warn(f"rnnt backend {name!r} not used: {_unusable[name]}", stacklevel=2)
            mod = None
        _modules[name] = mod
    return _modules[name]


def backend_available(name: str) -> bool:
    """True for ``"builtin"`` and for an external backend whose package imports here."""
    if name == "builtin":
        return True
    if name not in EXTERNAL_BACKENDS:
        raise ValueError(f"rnnt backend must be one of {_VALID[1:]}, got {name!r}")
    return _try_import(name) is not None


def k2_available() -> bool:
    """True when ``import k2`` works in this process."""
    return backend_available("k2")


def env_rnnt_backend() -> str | None:
    """The backend named by ``GMOT_RNNT_BACKEND`` (None when unset or empty).

    Raises ValueError when it names no backend.
    """
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    if value not in _VALID:
        raise ValueError(f"{ENV_VAR}={value!r}: must be one of {_VALID}")
    return value


def requested_rnnt_backend() -> str:
    """What was asked for: the code's choice, else ``GMOT_RNNT_BACKEND``, else ``"auto"``."""
    if _requested is not None:
        return _requested
    return env_rnnt_backend() or "auto"


def set_rnnt_backend(name: str | None) -> None:
    """Select the backend: ``"auto"``, ``"k2"``, ``"fast_rnnt"`` or ``"builtin"``; ``None``
    returns to the environment's choice (``GMOT_RNNT_BACKEND``, else auto).

    Raises ValueError for an unknown name and ImportError when an external backend is asked
    for but its package does not import or lacks k2's current API (:func:`api_mismatch`).
    """
    global _requested
    if name is None:
        _requested = None
        return
    if name not in _VALID:
        raise ValueError(f"rnnt backend must be one of {_VALID}, got {name!r}")
    if name in EXTERNAL_BACKENDS and not backend_available(name):
        why = _unusable.get(name) or f"`import {name}` failed"
        raise ImportError(f"rnnt backend {name!r} requested but not usable: {why}; use 'builtin'")
    _requested = name


def get_rnnt_backend() -> str:
    """The backend that runs now: ``"k2"``, ``"fast_rnnt"`` or ``"builtin"`` (``auto`` resolved).

    For ``auto`` this is the backend used for CPU tensors and for GPU tensors when the package
    has CUDA support (see :func:`external_rnnt_module`).
    """
    requested = requested_rnnt_backend()
    if requested != "auto":
        if requested in EXTERNAL_BACKENDS and not backend_available(requested):
            why = _unusable.get(requested) or f"`import {requested}` failed"
            raise ImportError(f"{ENV_VAR}={requested!r} but that backend is not usable: {why}")
        return requested
    for name in EXTERNAL_BACKENDS:
        if backend_available(name):
            return name
    return "builtin"


def available_rnnt_backends() -> list[str]:
    """Backends usable in this process: ``"builtin"`` and each importable external package."""
    return ["builtin"] + [n for n in EXTERNAL_BACKENDS if backend_available(n)]


def module_has_cuda(mod: ModuleType) -> bool:
    """Whether an external backend package was built with CUDA.

    k2 exposes ``with_cuda`` as a bool, fast_rnnt as a function; a package exposing neither
    is assumed to have it.
    """
    flag = getattr(mod, "with_cuda", True)
    return bool(flag() if callable(flag) else flag)


def backend_runs_on(name: str, device: torch.device) -> bool:
    """Whether backend ``name`` can run on ``device``: builtin always; an external package when
    it is usable here (:func:`backend_available`) and, for a GPU, was built with CUDA."""
    if not backend_available(name):
        return False
    return name == "builtin" or device.type != "cuda" or module_has_cuda(_try_import(name))


def external_rnnt_module(device: torch.device) -> ModuleType | None:
    """The external package that should run a call on ``device``, or None for builtin.

    Raises RuntimeError when the backend was forced (not ``auto``) and its package, built
    without CUDA, is asked to run on a GPU.
    """
    name = get_rnnt_backend()
    if name == "builtin":
        return None
    if not backend_runs_on(name, device):  # an importable package built without CUDA
        if requested_rnnt_backend() == "auto":
            if name not in _warned_no_cuda:
                _warned_no_cuda.add(name)
                warnings.warn(
                    f"{name} was built without CUDA: the builtin RNN-T kernels run on {device}",
                    stacklevel=3,
                )
            return None
        raise RuntimeError(
            f"rnnt backend {name!r} was built without CUDA and cannot run on {device}; "
            "use --rnnt-backend builtin (or auto) or install a CUDA build"
        )
    return _try_import(name)


def add_rnnt_backend_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--rnnt-backend {auto,k2,fast_rnnt,builtin}`` to ``parser``.

    The default is ``GMOT_RNNT_BACKEND`` when set (checked here: an invalid value raises
    ValueError), else ``auto``; a flag on the command line wins over the environment. After
    parsing, call ``set_rnnt_backend(args.rnnt_backend)``.
    """
    parser.add_argument(
        "--rnnt-backend",
        type=str,
        default=env_rnnt_backend() or "auto",
        choices=list(_VALID),
        help="Pruned RNN-T implementation. auto: k2 if importable, else fast_rnnt (k2's RNN-T "
        f"kernels packaged alone) if importable, else gmot's builtin kernels; or force one. "
        f"Default: ${ENV_VAR} when set, else auto.",
    )
    return parser
