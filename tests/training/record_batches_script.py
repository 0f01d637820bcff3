"""Helper for the resume-with-workers tests: the recipe's train.py (real data module) with a
data factory that appends ``<global batch> <cut ids>`` to ``EXP_DIR/batches.txt`` for every batch
handed to training, and SIGKILLs itself instead of handing out global batch ``$KILL_AT_BATCH``.

Usage: python record_batches_script.py [train.py flags...]  (--exp-dir is required)
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from gmot.training.train import default_data_factory, main


class _Recorder:
    def __init__(self, loader: Any, params: Any) -> None:
        self.loader, self.params = loader, params
        self.kill_at = int(os.environ.get("KILL_AT_BATCH", "0"))
        self.handed = params.start_batch  # global index of the last batch handed to training

    def __getattr__(self, name: str) -> Any:  # sampler, consumed_sampler_state, num_workers
        return getattr(self.loader, name)

    def __iter__(self):
        it = iter(self.loader)  # eager, as the loader's own __iter__ is
        return self._gen(it)

    def _gen(self, it):
        out = Path(self.params.exp_dir) / "batches.txt"
        for batch in it:
            self.handed += 1
            b = self.handed  # the global index this batch will train as
            if b == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            with out.open("a", encoding="utf-8") as f:
                f.write(f"{b} {' '.join(batch['cut_ids'])}\n")
            yield batch


def factory(params: Any, sampler_state: dict | None, world_size: int, rank: int):
    train_dl, valid_dl = default_data_factory(params, sampler_state, world_size, rank)
    return _Recorder(train_dl, params), valid_dl


if __name__ == "__main__":
    main(sys.argv[1:], data_factory=factory)
