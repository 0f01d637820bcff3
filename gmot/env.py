"""Environment report: versions of the packages gmot depends on and the git revision.

Training logs it at start-up and stores it in every checkpoint, so a result can be traced to the
software that produced it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import subprocess
from pathlib import Path

# (import name, label) of the packages whose versions matter for reproducing a result.
_PACKAGES = (
    ("torch", "torch"),
    ("torchaudio", "torchaudio"),
    ("lhotse", "lhotse"),
    ("transformers", "transformers"),
    ("ot", "pot"),
    ("k2", "k2"),
    ("fast_rnnt", "fast_rnnt"),
    ("sentencepiece", "sentencepiece"),
    ("kaldialign", "kaldialign"),
)


def _version_of(module_name: str) -> str:
    """Return ``module.__version__``, ``"not installed"``, or ``"broken: <error>"``.

    A module without ``__version__`` reports its installed distribution's version.
    """
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return "not installed"
    except Exception as exc:  # an installed but unloadable package (e.g. ABI mismatch)
        return f"broken: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    version = getattr(module, "__version__", None)
    if version is None:
        try:
            version = importlib.metadata.version(module_name)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    return str(version)


def git_revision(repo_dir: str | Path | None = None) -> str:
    """Return ``<sha>[-dirty]`` of the checkout holding gmot, or ``"unknown"`` outside git."""
    repo = Path(repo_dir) if repo_dir is not None else Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def env_info() -> dict[str, str]:
    """Versions of python, torch, torchaudio, lhotse, transformers, POT, k2, fast_rnnt and the git
    revision, and the pruned RNN-T backend that runs.

    Missing packages are reported as ``"not installed"``; k2 and fast_rnnt are optional. The CUDA
    entry says what torch was built with and whether a device is visible.
    """
    info: dict[str, str] = {"python": platform.python_version(), "platform": platform.platform()}
    for module_name, label in _PACKAGES:
        info[label] = _version_of(module_name)
    try:
        import torch

        cuda_build = torch.version.cuda or "cpu-only build"
        devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
        info["cuda"] = f"{cuda_build}, {devices} device(s) visible"
    except Exception:  # torch missing or broken: already reported above
        info["cuda"] = "unknown"
    try:
        from gmot.transducer import get_rnnt_backend

        info["rnnt_backend"] = get_rnnt_backend()
    except Exception:  # torch missing or broken: already reported above
        info["rnnt_backend"] = "unknown"
    info["gmot_git"] = git_revision()
    from gmot import __version__

    info["gmot"] = __version__
    return info


def format_env_info(info: dict[str, str] | None = None) -> str:
    """The report as aligned ``name: value`` lines, for logs."""
    info = env_info() if info is None else info
    width = max(len(k) for k in info)
    return "\n".join(f"{k.ljust(width)} : {v}" for k, v in info.items())


if __name__ == "__main__":
    print(format_env_info())
