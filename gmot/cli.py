"""Command-line helpers shared by the recipe entry points (train, decode, data flags)."""

from __future__ import annotations

import argparse


def str2bool(v: str | bool) -> bool:
    """argparse ``type=`` for icefall-style boolean flags: 1/0, true/false, yes/no, y/n."""
    if isinstance(v, bool):
        return v
    if v.lower() in ("1", "true", "yes", "y"):
        return True
    if v.lower() in ("0", "false", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (0/1/true/false); got {v!r}")
