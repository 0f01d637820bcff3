"""Command-line helpers shared by the recipe entry points (train, decode, data flags)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def str2bool(v: str | bool) -> bool:
    """argparse ``type=`` for icefall-style boolean flags: 1/0, true/false, yes/no, y/n."""
    if isinstance(v, bool):
        return v
    if v.lower() in ("1", "true", "yes", "y"):
        return True
    if v.lower() in ("0", "false", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (0/1/true/false); got {v!r}")


def add_exp_dir_argument(group: Any) -> None:
    """``--exp-dir``: the experiment directory train.py writes and decode/export read."""
    group.add_argument(
        "--exp-dir",
        type=Path,
        default=Path("zipformer_gmot/exp"),
        help="Experiment directory: checkpoints, logs and TensorBoard (train.py writes it; "
        "decode.py and export.py read its checkpoints).",
    )


def add_lang_dir_argument(group: Any) -> None:
    """``--lang-dir``: the directory holding ``tokens.txt``."""
    group.add_argument(
        "--lang-dir",
        type=Path,
        default=Path("data/lang_char"),
        help="Directory holding tokens.txt (prepare.sh stage 2).",
    )
