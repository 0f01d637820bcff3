"""The experiment directory of a training run: logging, RNG states, one run per directory,
old checkpoints, exact sampler states for a mid-epoch resume."""

from __future__ import annotations

import logging
import random
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gmot.checkpoint import CheckpointError, checkpoint_run_id, list_checkpoints, peek_checkpoint

__all__ = [
    "RestoreRngAfterIter",
    "check_exact_sampler_state",
    "check_exp_dir",
    "fix_random_seed",
    "remove_old_checkpoints",
    "rng_state",
    "sampler_state_for_resume",
    "set_rng_state",
    "setup_logging",
]


def setup_logging(exp_dir: Path, rank: int, world_size: int) -> None:
    """Log to ``exp_dir/log/log-train-<date>[-rank]`` and stdout (rank 0)."""
    date = datetime.now().strftime("%Y-%m-%d-%H-%M-%S")
    name = f"log-train-{date}" + (f"-{rank}" if world_size > 1 else "")
    log_dir = Path(exp_dir) / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    fmt = "%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] (%(process)d) %(message)s"
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.INFO)
    fh = logging.FileHandler(log_dir / name, encoding="utf-8")
    fh.setFormatter(logging.Formatter(fmt))
    root.addHandler(fh)
    if rank == 0:
        sh = logging.StreamHandler(sys.stdout)
        sh.setFormatter(logging.Formatter(fmt))
        root.addHandler(sh)


def rng_state() -> dict:
    st = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def fix_random_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def remove_old_checkpoints(exp_dir: Path, keep_last_k: int, run_id: str | None) -> None:
    """Delete all but the newest ``keep_last_k`` checkpoint-B.pt files of run ``run_id``; files
    of other runs (or unreadable ones) are left alone."""
    if keep_last_k <= 0:
        return
    mine = []
    for b in list_checkpoints(exp_dir)["checkpoint"]:
        p = Path(exp_dir) / f"checkpoint-{b}.pt"
        try:
            if checkpoint_run_id(p) == run_id:
                mine.append((b, p))
        except (CheckpointError, OSError) as exc:
            logging.warning("--keep-last-k: leaving %s alone (%s)", p, exc)
    for _, p in sorted(mine, reverse=True)[keep_last_k:]:
        p.unlink(missing_ok=True)


def check_exp_dir(params: Any, delete: bool = True) -> list[Path]:
    """Enforce one run per experiment directory before training starts.

    A new run (``--start-epoch 1``, ``--start-batch 0``) conflicts with any ``epoch-N.pt`` /
    ``checkpoint-B.pt`` in ``--exp-dir``; a resume conflicts with the files from after its resume
    point (``epoch-N.pt`` with N >= the resumed epoch, ``checkpoint-B.pt`` with B > the resumed
    batch), which it would otherwise overwrite one by one or mix with its own.

    Returns:
      the conflicting files, deleted (with ``tensorboard/`` for a new run) when
      ``params.overwrite_exp_dir`` and ``delete`` are set.
    Raises:
      FileExistsError naming the files and the ways out.
    """
    exp_dir = Path(params.exp_dir)
    found = list_checkpoints(exp_dir)

    def saved_param(path: Path, key: str) -> int | None:
        try:
            return int(peek_checkpoint(path)["params"][key])
        except (OSError, CheckpointError, KeyError, TypeError, ValueError):
            return None  # training reports a missing or unreadable resume file itself

    if params.start_batch > 0:
        resume = exp_dir / f"checkpoint-{params.start_batch}.pt"
        cur_epoch = saved_param(resume, "cur_epoch")
        late_epochs = [n for n in found["epoch"] if cur_epoch is not None and n >= cur_epoch]
        late_ckpts = [b for b in found["checkpoint"] if b > params.start_batch]
    elif params.start_epoch > 1:
        resume = exp_dir / f"epoch-{params.start_epoch - 1}.pt"
        late_epochs = [n for n in found["epoch"] if n >= params.start_epoch]
        # checkpoint-B.pt from epochs >= start_epoch have B beyond that of epoch-(E-1).pt
        last = saved_param(resume, "batch_idx_train")
        late_ckpts = [b for b in found["checkpoint"] if last is not None and b > last]
    else:
        resume = None
        late_epochs, late_ckpts = found["epoch"], found["checkpoint"]
    files = [exp_dir / f"epoch-{n}.pt" for n in late_epochs] + [
        exp_dir / f"checkpoint-{b}.pt" for b in late_ckpts
    ]
    if not files:
        return []
    names = ", ".join(p.name for p in files[:8]) + (", ..." if len(files) > 8 else "")
    if not params.overwrite_exp_dir:
        if resume is None:
            raise FileExistsError(
                f"--exp-dir {exp_dir} already holds checkpoints of an earlier run ({names}). "
                "Resume it with --start-epoch E / --start-batch B, pass --overwrite-exp-dir 1 "
                "to delete them and start afresh, or use another --exp-dir."
            )
        raise FileExistsError(
            f"--exp-dir {exp_dir} holds checkpoints from after the resume point {resume.name} "
            f"({names}); the resumed "
            "run would overwrite them one by one and mix with them. Resume from the newest "
            "one, or pass --overwrite-exp-dir 1 to delete them first."
        )
    if delete:
        for p in files:
            p.unlink(missing_ok=True)
        if resume is None and (exp_dir / "tensorboard").is_dir():
            import shutil

            shutil.rmtree(exp_dir / "tensorboard")
        logging.warning(
            "--overwrite-exp-dir 1: deleted %d file(s) in %s: %s", len(files), exp_dir, names
        )
    return files


def sampler_state_for_resume(train_dl: Any) -> tuple[dict | None, bool]:
    """(sampler state to store in a checkpoint, whether resuming from it is exact).

    A loader with ``consumed_sampler_state()`` (gmot's data module) knows the state as of the
    last batch it handed out: exact. Otherwise the sampler's own state is exact only without
    DataLoader workers, which draw batches from the sampler ahead of training.
    """
    if hasattr(train_dl, "consumed_sampler_state"):
        return train_dl.consumed_sampler_state(), True
    sampler = getattr(train_dl, "sampler", None)
    state = sampler.state_dict() if sampler is not None and hasattr(sampler, "state_dict") else None
    return state, int(getattr(train_dl, "num_workers", 0) or 0) == 0


class RestoreRngAfterIter:
    """Wraps the training loader for the first epoch of a ``--start-batch`` resume: creates the
    loader's iterator (a DataLoader draws a base seed from the global RNG), then restores the RNG
    states saved with the checkpoint, so the rest matches the uninterrupted run."""

    def __init__(self, loader: Any, rng: dict) -> None:
        self.loader = loader
        self.rng = rng

    def __iter__(self):
        it = iter(self.loader)
        set_rng_state(self.rng)
        return it


def check_exact_sampler_state(ckpt: dict, path: Path) -> None:
    """Refuse a mid-epoch resume from a checkpoint whose sampler state is ahead of training.

    Checkpoints record ``sampler_exact``; older ones without it are exact only if they were saved
    with ``--num-workers 0``.
    """
    exact = ckpt.get("sampler_exact")
    if exact is None:
        exact = int((ckpt.get("params") or {}).get("num_workers", 0) or 0) == 0
    if not exact:
        ep = (ckpt.get("params") or {}).get("cur_epoch")
        raise RuntimeError(
            f"{path}: its sampler state was saved ahead of training (DataLoader workers had "
            "prefetched batches), so --start-batch would silently skip the prefetched batches. "
            + (
                f"Resume from the end of the previous epoch with --start-epoch {ep} instead."
                if ep
                else "Resume with --start-epoch instead."
            )
        )
