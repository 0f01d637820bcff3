"""Training checkpoints: atomic save, load with clear errors, and model averaging.

A checkpoint is a ``torch.save``-d dict with the keys ``"model"`` (state dict), ``"model_avg"``
(state dict of the running averaged model, or None), ``"optimizer"``, ``"scheduler"``,
``"grad_scaler"``, ``"sampler"`` (state dicts or None), ``"params"`` (a plain dict of training
counters and flags: ``batch_idx_train``, ``cur_epoch``, ...), ``"model_config"`` (what
:func:`gmot.models.asr_model.build_model` needs to rebuild the network) and ``"env"``
(:func:`gmot.env_info`). Extra keys (e.g. RNG states) may be added by the caller via ``extra``;
training adds ``"run_id"`` (see :func:`new_run_id`), ``"rng"`` and ``"sampler_exact"``.

Files are written to a temporary file ``.<name>.<random>.tmp`` in the same directory, flushed and
fsync-ed, then renamed over the destination, so a kill during the save leaves the previous file
intact (and possibly the temporary file, which :func:`remove_stale_temp_files` deletes). Saved
files get the ordinary permissions of a new file (``0666`` minus the umask, usually ``0644``),
like any other output.

A run id ties the checkpoints of one training run together: averaging refuses files of
different runs (:func:`check_same_run`).
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

CHECKPOINT_KEYS = (
    "model",
    "model_avg",
    "optimizer",
    "scheduler",
    "grad_scaler",
    "sampler",
    "params",
    "model_config",
    "env",
)


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated or not a gmot checkpoint."""


def _unwrap(model: nn.Module) -> nn.Module:
    return (
        model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model
    )


def _state(obj: Any) -> Any:
    return None if obj is None else obj.state_dict()


def _new_file_mode() -> int:
    """The mode ``open(..., "w")`` gives a new file: 0666 minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(f)`` on a temporary binary file next to ``path``, then ``os.replace`` it onto
    ``path`` (atomic on POSIX): a kill mid-write leaves the previous ``path`` intact.

    The temporary file is ``.<name>.<random>.tmp`` next to ``path`` (removed when ``write``
    fails); the result has the mode of an ordinary new file (0666 minus the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _new_file_mode())  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write` (temporary file + ``os.replace``)."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def remove_stale_temp_files(directory: str | Path) -> list[Path]:
    """Delete the temporary files (``.<name>.pt.<random>.tmp``) that an interrupted
    :func:`atomic_torch_save` left in ``directory``; returns the deleted paths."""
    removed = []
    for p in sorted(Path(directory).glob(".*.pt.*.tmp")):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def new_run_id() -> str:
    """A fresh training-run id: ``<YYYYmmdd-HHMMSS>-<8 hex digits>``."""
    return f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def peek_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with its tensors memory-mapped (cheap: for reading ``params``,
    ``run_id`` and other small entries).

    Raises:
      FileNotFoundError, or CheckpointError naming the file when it cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path} ({path.stat().st_size} bytes): the file is truncated "
            f"or corrupt ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path} is not a gmot checkpoint")
    return ckpt


_RUN_ID_CACHE: dict[tuple[str, int, int], str | None] = {}


def checkpoint_run_id(path: str | Path) -> str | None:
    """The ``run_id`` stored in a checkpoint (None for files without one), cached per
    (path, size, mtime); see :func:`peek_checkpoint`."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _RUN_ID_CACHE:
        _RUN_ID_CACHE[key] = peek_checkpoint(path).get("run_id")
    return _RUN_ID_CACHE[key]


def check_same_run(run_ids: Sequence[tuple[str | Path, str | None]]) -> None:
    """Raise ValueError unless every (path, run id) pair has the same run id (None = a file
    saved before run ids existed, which only matches other such files)."""
    if not run_ids:
        return
    first_path, first = run_ids[0]
    for p, rid in run_ids[1:]:
        if rid != first:
            raise ValueError(
                f"{p} belongs to training run {rid or '(no run id)'} but {first_path} to run "
                f"{first or '(no run id)'}: refusing to combine checkpoints of different runs "
                "(was a new run started in the same --exp-dir?)"
            )


_CKPT_NAME = re.compile(r"(epoch|checkpoint)-(\d+)\.pt")


def list_checkpoints(exp_dir: str | Path) -> dict[str, list[int]]:
    """``{"epoch": sorted N of epoch-N.pt, "checkpoint": sorted B of checkpoint-B.pt}``."""
    out: dict[str, list[int]] = {"epoch": [], "checkpoint": []}
    d = Path(exp_dir)
    if d.is_dir():
        for p in d.iterdir():
            m = _CKPT_NAME.fullmatch(p.name)
            if m and p.is_file():
                out[m.group(1)].append(int(m.group(2)))
    return {k: sorted(v) for k, v in out.items()}


def describe_checkpoints(exp_dir: str | Path) -> str:
    """One line naming the epoch-N.pt and checkpoint-B.pt files in ``exp_dir``."""
    found = list_checkpoints(exp_dir)

    def ranges(ns: list[int]) -> str:
        return ", ".join(map(str, ns)) if ns else "none"

    return (
        f"{exp_dir} holds epoch-N.pt for N = {ranges(found['epoch'])} and checkpoint-B.pt for "
        f"B = {ranges(found['checkpoint'])}"
    )


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    params: dict | Any,
    model_avg: nn.Module | None = None,
    optimizer: Any = None,
    scheduler: Any = None,
    grad_scaler: Any = None,
    sampler: Any = None,
    rank: int = 0,
    model_config: dict | None = None,
    extra: dict | None = None,
    sampler_state: dict | None = None,
) -> Path | None:
    """Save a training checkpoint atomically (only on ``rank`` 0; other ranks return None).

    Args:
      path: destination file (e.g. ``exp/epoch-3.pt``).
      model: the (possibly DDP-wrapped) model; its ``model_config`` attribute is stored unless
        ``model_config`` is given.
      params: training counters/flags (dict or ``argparse.Namespace``-like object); stored as a
        plain dict.
      model_avg, optimizer, scheduler, grad_scaler, sampler: objects with ``state_dict()``, or None.
      rank: the DDP rank; only rank 0 writes.
      sampler_state: the sampler state to store instead of ``sampler.state_dict()`` (e.g. the
        state as of the last trained batch, see ``gmot.data.datamodule.ResumableLoader``).
      extra: more entries to store (e.g. ``{"rng": ...}``).
    Returns:
      The written path (rank 0) or None.
    """
    if rank != 0:
        return None
    from gmot.env import env_info

    inner = _unwrap(model)
    if model_config is None:
        model_config = getattr(inner, "model_config", None)
    params_dict = dict(params) if isinstance(params, dict) else dict(vars(params))
    params_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in params_dict.items()}
    ckpt = {
        "model": inner.state_dict(),
        "model_avg": None if model_avg is None else _unwrap(model_avg).state_dict(),
        "optimizer": _state(optimizer),
        "scheduler": _state(scheduler),
        "grad_scaler": _state(grad_scaler),
        "sampler": sampler_state if sampler_state is not None else _state(sampler),
        "params": params_dict,
        "model_config": model_config,
        "env": env_info(),
    }
    if extra:
        ckpt.update(extra)
    return atomic_torch_save(ckpt, path)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict:
    """Load a checkpoint dict written by :func:`save_checkpoint`.

    Raises:
      FileNotFoundError: ``path`` does not exist.
      CheckpointError: the file is truncated/corrupt or lacks the ``"model"`` entry; the message
        names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # truncated zip, bad pickle, ...
        size = path.stat().st_size
        raise CheckpointError(
            f"cannot read checkpoint {path} ({size} bytes): the file is truncated or corrupt "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path} is not a gmot checkpoint (no 'model' entry)")
    return ckpt


def _average_states(states: Sequence[dict], weights: Sequence[float]) -> dict:
    out = {}
    for k, v0 in states[0].items():
        if torch.is_floating_point(v0):
            acc = torch.zeros_like(v0, dtype=torch.float64)
            for s, w in zip(states, weights):
                acc += w * s[k].to(torch.float64)
            out[k] = acc.to(v0.dtype)
        else:  # integer buffers (counters): take the newest
            out[k] = states[-1][k].clone()
    return out


def average_checkpoints(paths: Sequence[str | Path], key: str = "model") -> dict:
    """Element-wise mean of the ``key`` state dicts of ``paths`` (floating tensors in float64;
    integer buffers are taken from the last file).

    Raises:
      ValueError: empty ``paths``, mismatching keys or files of different training runs (naming
      the file).
    """
    if not paths:
        raise ValueError("average_checkpoints: paths is empty")
    states = []
    run_ids = []
    for p in paths:
        ckpt = load_checkpoint(p)
        run_ids.append((p, ckpt.get("run_id")))
        check_same_run(run_ids)
        st = ckpt[key]
        if st is None:
            raise CheckpointError(f"checkpoint {p} has no '{key}' state")
        if states and set(st) != set(states[0]):
            raise ValueError(f"checkpoint {p}: state keys differ from {paths[0]}")
        states.append(st)
    return _average_states(states, [1.0 / len(states)] * len(states))


def average_checkpoints_with_averaged_model(start_path: str | Path, end_path: str | Path) -> dict:
    """The model averaged over the batches between two checkpoints, from their running averages.

    With ``model_avg`` at batch n being the mean of the model over batches 1..n, the mean over
    (n_start, n_end] is ``(avg_end * n_end - avg_start * n_start) / (n_end - n_start)``.
    ``n`` is ``params["batch_idx_train"]`` of each file.

    Raises:
      CheckpointError / ValueError naming the file when a running average or counter is missing,
      ``n_end <= n_start`` or the files belong to different training runs.
    """
    a = load_checkpoint(start_path)
    b = load_checkpoint(end_path)
    check_same_run([(start_path, a.get("run_id")), (end_path, b.get("run_id"))])
    for p, c in ((start_path, a), (end_path, b)):
        if c.get("model_avg") is None:
            raise CheckpointError(f"checkpoint {p} has no 'model_avg' (running averaged model)")
        if "batch_idx_train" not in (c.get("params") or {}):
            raise CheckpointError(f"checkpoint {p} has no params['batch_idx_train']")
    n0 = int(a["params"]["batch_idx_train"])
    n1 = int(b["params"]["batch_idx_train"])
    if n1 <= n0:
        raise ValueError(
            f"end checkpoint {end_path} (batch {n1}) must be later than start {start_path} "
            f"(batch {n0})"
        )
    w1 = n1 / (n1 - n0)
    w0 = -n0 / (n1 - n0)
    out = _average_states([a["model_avg"], b["model_avg"]], [w0, w1])
    ref = b.get("model") or {}
    for k, v in out.items():  # the running average is kept in float64: return the model's dtype
        if k in ref and torch.is_floating_point(v):
            out[k] = v.to(ref[k].dtype)
    return out
