"""Distributed setup: ``--world-size N`` on one machine (``mp.spawn``) or torchrun (env vars).

NCCL on GPU, gloo on CPU. Under torchrun, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` come from the environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    """True when RANK, WORLD_SIZE and LOCAL_RANK are all set (torchrun / torch.distributed.run)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


#: Set by :func:`launcher_marked` in the process that spawns the ranks (``--world-size N``).
LAUNCHER_PID_ENV = "GMOT_LAUNCHER_PID"


@contextlib.contextmanager
def launcher_marked() -> Iterator[None]:
    """Within the block, this process is marked as the launcher of the ranks it spawns: they
    inherit :data:`LAUNCHER_PID_ENV` and watch this pid (:func:`exit_with_launcher`). The mark
    is removed afterwards so that later, unrelated child processes do not inherit it."""
    old = os.environ.get(LAUNCHER_PID_ENV)
    os.environ[LAUNCHER_PID_ENV] = str(os.getpid())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(LAUNCHER_PID_ENV, None)
        else:
            os.environ[LAUNCHER_PID_ENV] = old


def exit_with_launcher(poll_s: float = 2.0) -> threading.Thread | None:
    """In a rank spawned by ``mp.spawn``: stop this process when its launcher is gone.

    Without it, killing the launcher (Ctrl-C in some shells, ``kill``, an out-of-memory kill)
    leaves the ranks training on unseen in the background, writing checkpoints and holding the
    cores. A daemon thread compares the parent pid with :data:`LAUNCHER_PID_ENV` every ``poll_s``
    seconds; once they differ it logs an error naming both pids and exits the process (status
    1). Checkpoints are written atomically, so the last complete one stays usable for
    ``--start-epoch`` / ``--start-batch``. Returns the thread, or None when this process was not
    spawned by a marked launcher (world size 1, torchrun, tests).
    """
    want = os.environ.get(LAUNCHER_PID_ENV)
    if not want or os.getpid() == int(want):
        return None
    launcher = int(want)

    def watch() -> None:
        while True:
            parent = os.getppid()
            if parent != launcher:
                logging.error(
                    "rank process %d: its launcher (pid %d) is gone (now parent %d): stopping. "
                    "Resume from the last checkpoint with --start-epoch or --start-batch.",
                    os.getpid(),
                    launcher,
                    parent,
                )
                for h in logging.getLogger().handlers:
                    h.flush()
                os._exit(1)
            time.sleep(poll_s)

    t = threading.Thread(target=watch, name="exit-with-launcher", daemon=True)
    t.start()
    return t


def setup_dist(
    rank: int, world_size: int, master_port: int = 12354, backend: str | None = None
) -> None:
    """Initialise the default process group (no-op for ``world_size == 1``).

    ``backend`` defaults to ``"nccl"`` when CUDA is available, else ``"gloo"``. Under torchrun the
    rendezvous variables from the environment are used.
    """
    if world_size <= 1:
        return
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not launched_by_torchrun():
        os.environ.setdefault("MASTER_ADDR", "localhost")
        os.environ["MASTER_PORT"] = str(master_port)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", rank)))
    dist.init_process_group(backend, rank=rank, world_size=world_size)


def cleanup_dist() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum over ranks in place (returns ``t``); identity without a process group."""
    if get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
