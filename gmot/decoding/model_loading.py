"""Build a model for decoding/export from training checkpoints (icefall's conventions).

``--epoch E --avg A``:
  * ``--use-averaged-model 0``: ``A == 1`` loads ``exp/epoch-E.pt``; otherwise the plain average
    of ``epoch-(E-A+1).pt .. epoch-E.pt``.
  * ``--use-averaged-model 1``: the model averaged over epochs E-A+1..E computed from the
    running averages (``model_avg``) stored in ``epoch-(E-A).pt`` and ``epoch-E.pt``
    (needs E - A >= 1).
``--iter I > 0`` uses ``checkpoint-N.pt`` files instead: the A (or A+1 with the averaged model)
newest with N <= I. ``--checkpoint PATH`` loads one file (e.g. ``pretrained.pt``) as is.

The network is rebuilt with ``gmot.models.asr_model.build_model(checkpoint["model_config"])``.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import torch
from torch import nn

from gmot.checkpoint import (
    average_checkpoints,
    average_checkpoints_with_averaged_model,
    describe_checkpoints,
    load_checkpoint,
)
from gmot.cli import add_exp_dir_argument, str2bool
from gmot.models.asr_model import build_model


def add_model_loading_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("model loading")
    g.add_argument("--epoch", type=int, default=30, help="Use exp-dir/epoch-EPOCH.pt (>= 1).")
    g.add_argument(
        "--iter",
        type=int,
        default=0,
        help="If > 0, use exp-dir/checkpoint-N.pt files with N <= ITER instead of --epoch.",
    )
    g.add_argument(
        "--avg",
        type=int,
        default=9,
        help="Number of epochs (or checkpoints with --iter) to average; 1 = no averaging.",
    )
    g.add_argument(
        "--use-averaged-model",
        type=str2bool,
        default=True,
        help="1: average through the running averaged models stored in the checkpoints of "
        "epochs EPOCH-AVG and EPOCH (icefall's default); 0: plain average of the last AVG "
        "checkpoints' models.",
    )
    add_exp_dir_argument(g)
    g.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="Load this single checkpoint file (e.g. exp/pretrained.pt) instead of "
        "--epoch/--iter/--avg.",
    )


def find_iter_checkpoints(exp_dir: Path, max_iter: int) -> list[Path]:
    """``checkpoint-N.pt`` files in ``exp_dir`` with N <= ``max_iter``, newest first."""
    found = []
    for p in Path(exp_dir).glob("checkpoint-*.pt"):
        m = re.fullmatch(r"checkpoint-(\d+)\.pt", p.name)
        if m and int(m.group(1)) <= max_iter:
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def resolve_checkpoints(
    exp_dir: Path, epoch: int, avg: int, iter_: int = 0, use_averaged_model: bool = True
) -> tuple[str, list[Path], str]:
    """Which files to load and how.

    Returns:
      (mode, paths, suffix) with mode "single" (one path), "average" (plain average of paths)
      or "averaged_model" (paths = [start, end]); suffix names the setting in result files.
    Raises:
      ValueError / FileNotFoundError naming the offending argument or file.
    """
    exp_dir = Path(exp_dir)
    if avg < 1:
        raise ValueError(f"--avg must be >= 1; got {avg}")
    if iter_ > 0:
        suffix = f"iter-{iter_}-avg-{avg}"
        files = find_iter_checkpoints(exp_dir, iter_)
        need = avg + 1 if use_averaged_model else avg
        if len(files) < need:
            raise FileNotFoundError(
                f"--iter {iter_} --avg {avg} needs {need} checkpoint-N.pt files with N <= {iter_} "
                f"in {exp_dir}; found {len(files)}. {_describe(exp_dir)}"
            )
        if use_averaged_model:
            return "averaged_model", [files[need - 1], files[0]], suffix + "-use-averaged-model"
        return ("single" if avg == 1 else "average"), files[:avg], suffix
    if epoch < 1:
        raise ValueError(f"--epoch must be >= 1; got {epoch}")
    suffix = f"epoch-{epoch}-avg-{avg}"
    if use_averaged_model:
        start = epoch - avg
        if start < 1:
            raise ValueError(
                f"--use-averaged-model 1 needs --epoch > --avg (start epoch {start} < 1); "
                f"got --epoch {epoch} --avg {avg}"
            )
        paths = [exp_dir / f"epoch-{start}.pt", exp_dir / f"epoch-{epoch}.pt"]
        mode, suffix = "averaged_model", suffix + "-use-averaged-model"
    elif avg == 1:
        paths, mode = [exp_dir / f"epoch-{epoch}.pt"], "single"
    else:
        if epoch - avg + 1 < 1:
            raise ValueError(f"--epoch {epoch} --avg {avg}: cannot average epochs before 1")
        paths = [exp_dir / f"epoch-{i}.pt" for i in range(epoch - avg + 1, epoch + 1)]
        mode = "average"
    missing = [p for p in paths if not p.is_file()]
    if missing:
        flags = f"--epoch {epoch} --avg {avg} --use-averaged-model {int(use_averaged_model)}"
        raise FileNotFoundError(
            f"checkpoint not found: {', '.join(map(str, missing))} ({flags} reads "
            f"{', '.join(p.name for p in paths)}). {_describe(exp_dir)}"
        )
    return mode, paths, suffix


def checkpoint_description(args: argparse.Namespace) -> str:
    """The checkpoint file(s) :func:`load_model` reads for these flags, for messages (the
    ``--exp-dir`` and flags when they select no existing files)."""
    if args.checkpoint is not None:
        return str(args.checkpoint)
    try:
        _, paths, _ = resolve_checkpoints(
            args.exp_dir, args.epoch, args.avg, args.iter, args.use_averaged_model
        )
    except (ValueError, FileNotFoundError):
        return f"the checkpoints of --exp-dir {args.exp_dir} --epoch {args.epoch} --avg {args.avg}"
    return ", ".join(map(str, paths))


def _describe(exp_dir: Path) -> str:
    return describe_checkpoints(exp_dir)


def _rebuild(config: dict, path: Path) -> nn.Module:
    """The network of a checkpoint's ``model_config`` (older, partial configs take today's
    defaults for the missing keys); a config this version cannot read fails naming the file."""
    try:
        return build_model(config)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot rebuild the model from its model_config: {exc}") from exc


def load_model(
    args: argparse.Namespace, device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict, str]:
    """Build and load the model selected by the model-loading arguments.

    Returns:
      (model in eval mode on ``device``, model_config, suffix naming the setting).
    """
    if args.checkpoint is not None:
        ckpt = load_checkpoint(args.checkpoint, map_location="cpu")
        mode, paths, suffix = "file", [Path(args.checkpoint)], Path(args.checkpoint).stem
        state = ckpt["model"]
    else:
        mode, paths, suffix = resolve_checkpoints(
            args.exp_dir, args.epoch, args.avg, args.iter, args.use_averaged_model
        )
        ckpt = load_checkpoint(paths[-1], map_location="cpu")
        if mode == "single":
            state = ckpt["model"]
        elif mode == "average":
            state = average_checkpoints(paths)
        else:
            state = average_checkpoints_with_averaged_model(paths[0], paths[1])
    if "model_config" not in ckpt:
        raise KeyError(f"checkpoint {paths[-1]} has no 'model_config'; cannot rebuild the model")
    model = _rebuild(ckpt["model_config"], paths[-1])
    config = model.model_config
    model.load_state_dict(state)
    logging.info("loaded model (%s) from %s", mode, ", ".join(map(str, paths)))
    return model.to(device).eval(), config, suffix


def load_checkpoint_model(
    path: str | Path, *, use_average: bool = True, device: torch.device | str = "cpu"
) -> tuple[nn.Module, dict, str]:
    """Build the model stored in one training checkpoint (``epoch-N.pt`` / ``checkpoint-B.pt``).

    Args:
      path: the checkpoint file.
      use_average: load its running averaged weights (``model_avg``) when it has them, else
        ``model``.
    Returns:
      (model in eval mode on ``device``, model_config, the state key loaded: "model" or
      "model_avg").
    """
    ckpt = load_checkpoint(path, map_location="cpu")
    if "model_config" not in ckpt:
        raise KeyError(f"checkpoint {path} has no 'model_config'; cannot rebuild the model")
    key = "model_avg" if use_average and ckpt.get("model_avg") is not None else "model"
    model = _rebuild(ckpt["model_config"], Path(path))
    model.load_state_dict(ckpt[key])
    return model.to(device).eval(), model.model_config, key
