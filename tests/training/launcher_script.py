"""Launcher for test_ddp's orphan test: spawns 2 ranks the way ``--world-size 2`` does.

Usage: launcher_script.py OUT_DIR WATCH. Each rank writes OUT_DIR/rank-R.pid and then sleeps;
with WATCH=1 it first calls ``exit_with_launcher`` (as ``gmot.training.train.run`` does).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def rank_main(rank: int, out_dir: str, watch: bool) -> None:
    import os

    from gmot.training.ddp import exit_with_launcher

    if watch:
        assert exit_with_launcher(poll_s=0.1) is not None
    Path(out_dir, f"rank-{rank}.pid").write_text(str(os.getpid()))
    time.sleep(120)


if __name__ == "__main__":
    import torch.multiprocessing as mp

    from gmot.training.ddp import launcher_marked

    with launcher_marked():
        mp.spawn(rank_main, args=(sys.argv[1], sys.argv[2] == "1"), nprocs=2, join=True)
