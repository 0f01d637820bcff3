"""Distributed setup: ``--world-size N`` on one machine (``mp.spawn``) or torchrun (env vars).

NCCL on GPU, gloo on CPU. Under torchrun, ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` come from the environment.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched_by_torchrun() -> bool:
    """True when RANK, WORLD_SIZE and LOCAL_RANK are all set (torchrun / torch.distributed.run)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


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
