"""The ``train.py`` command line: flags (generated from the settings dataclasses where a setting
crosses modules) and the model config built from them.

Flags shared with other entry points are defined once: ``--lang-dir``, ``--seed`` and the other
data flags by :meth:`gmot.data.AsrDataModule.add_arguments`; the model and GM-OT flags by
:class:`gmot.models.config.ModelConfig` and :class:`gmot.ot.GMOTConfig`
(:func:`gmot.settings.add_flags`).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from gmot.cli import add_exp_dir_argument, str2bool
from gmot.models.config import ModelConfig
from gmot.settings import add_flags, from_flags

__all__ = [
    "add_cut_arguments",
    "add_gmot_arguments",
    "add_loss_arguments",
    "add_model_arguments",
    "add_training_arguments",
    "get_parser",
    "model_config_from_args",
    "read_vocab_size",
]


def _is_gmot_field(name: str) -> bool:
    return name.startswith("gmot_")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The model's flags, generated from :class:`gmot.models.config.ModelConfig` (GM-OT bridge
    fields excepted: :func:`add_gmot_arguments` adds those)."""
    g = parser.add_argument_group("model")
    add_flags(g, ModelConfig, include=lambda name: not _is_gmot_field(name))


def add_loss_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("losses")
    g.add_argument(
        "--prune-range", type=int, default=5, help="Pruned RNN-T: symbols kept per frame."
    )
    g.add_argument(
        "--lm-scale", type=float, default=0.25, help="LM-only share of the smoothed simple loss."
    )
    g.add_argument(
        "--am-scale", type=float, default=0.0, help="AM-only share of the smoothed simple loss."
    )
    g.add_argument(
        "--warm-step",
        type=int,
        default=2000,
        help="Batches over which simple_scale goes 1.0->0.5 and pruned_scale 0.1->1.0.",
    )
    g.add_argument("--ctc-loss-scale", type=float, default=0.2, help="Weight of the CTC loss.")
    g.add_argument(
        "--attention-decoder-loss-scale",
        type=float,
        default=0.8,
        help="Weight of the attention-decoder loss.",
    )


def add_gmot_arguments(parser: argparse.ArgumentParser) -> None:
    """GM-OT flags: the loss weight and schedule, and (generated from the dataclasses) the
    bridge's :class:`~gmot.models.config.ModelConfig` fields and every
    :class:`gmot.ot.GMOTConfig` field."""
    g = parser.add_argument_group("GM-OT knowledge transfer")
    g.add_argument(
        "--gmot-loss-scale",
        type=float,
        default=0.0,
        help="Weight of the GM-OT loss (0 = off: no adapter, no OT, no PLM targets needed).",
    )
    add_flags(g, ModelConfig, include=_is_gmot_field)
    g.add_argument(
        "--gmot-warmup-batches",
        type=int,
        default=0,
        help="Ramp the GM-OT weight linearly from 0 over this many batches (0 = no ramp).",
    )
    g.add_argument(
        "--plot-plan-interval",
        type=int,
        default=500,
        help="Every N batches write a transport-plan heatmap to TensorBoard (0 = never).",
    )


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("training")
    g.add_argument("--world-size", type=int, default=1, help="GPUs (or CPU processes) to use.")
    g.add_argument("--master-port", type=int, default=12354, help="Master port for DDP.")
    g.add_argument("--num-epochs", type=int, default=30, help="Train up to this epoch.")
    g.add_argument(
        "--start-epoch",
        type=int,
        default=1,
        help="Resume from exp-dir/epoch-(START_EPOCH-1).pt when > 1.",
    )
    g.add_argument(
        "--start-batch",
        type=int,
        default=0,
        help="> 0: resume from exp-dir/checkpoint-START_BATCH.pt (overrides --start-epoch).",
    )
    add_exp_dir_argument(g)
    g.add_argument(
        "--overwrite-exp-dir",
        type=str2bool,
        default=False,
        help="1: delete the epoch-N.pt / checkpoint-B.pt files (and tensorboard/) of an earlier "
        "run in --exp-dir before a new run, or, when resuming, the files from after the resume "
        "point. 0: refuse to start when such files exist (one run per experiment directory).",
    )
    g.add_argument("--use-fp16", type=str2bool, default=False, help="fp16 autocast + GradScaler.")
    g.add_argument("--use-bf16", type=str2bool, default=False, help="bf16 autocast.")
    g.add_argument(
        "--save-every-n", type=int, default=4000, help="Save checkpoint-B.pt every N batches."
    )
    g.add_argument(
        "--keep-last-k",
        type=int,
        default=30,
        help="Keep only the newest K checkpoint-B.pt of this run (other runs' files are never "
        "deleted); 0 keeps all.",
    )
    g.add_argument(
        "--average-period",
        type=int,
        default=200,
        help="Update the running averaged model every N batches.",
    )
    g.add_argument(
        "--valid-interval", type=int, default=3000, help="Validation every N batches (0 = off)."
    )
    g.add_argument("--log-interval", type=int, default=50, help="Log every N batches.")
    g.add_argument("--reset-interval", type=int, default=200, help="Decay horizon of tot_loss.")
    g.add_argument("--tensorboard", type=str2bool, default=True, help="Write TensorBoard logs.")
    g.add_argument(
        "--inf-check",
        type=str2bool,
        default=False,
        help="Register hooks that report the first module producing inf/nan (slow; debugging).",
    )
    g.add_argument(
        "--scan-oom",
        type=str2bool,
        default=False,
        help="Before training, run the pessimistic (longest) batches to detect OOM early.",
    )
    g.add_argument(
        "--max-nonfinite-batches",
        type=int,
        default=20,
        help="Stop when the loss is non-finite for more than N consecutive batches.",
    )
    g.add_argument(
        "--ref-duration",
        type=float,
        default=600.0,
        help="Seconds of audio that count as one 'batch' for the Zipformer's regularisation "
        "schedules (layer skipping, dropout, bypass floor): batch_count = batches x "
        "max-duration x world-size / ref-duration. Smaller values move the schedules faster "
        "(short CPU demos); 600 is icefall's default.",
    )
    g.add_argument(
        "--max-batches",
        type=int,
        default=0,
        help="Stop training after this many batches in total (0 = no limit; smoke tests).",
    )
    g.add_argument(
        "--device", type=str, default="auto", help="auto (cuda if available), cpu or cuda."
    )


def add_cut_arguments(parser: argparse.ArgumentParser) -> None:
    """Which cut manifests training reads (by default the recipe's ``--corpus`` in its
    directories, see :func:`gmot.training.train.default_data_factory`)."""
    g = parser.add_argument_group("training cuts")
    g.add_argument(
        "--train-cuts",
        type=Path,
        default=None,
        help="Training cuts (default: <plm-manifest-dir>/<corpus>_cuts_train.jsonl.gz with GM-OT "
        "on, <manifest-dir>/<corpus>_cuts_train.jsonl.gz with it off).",
    )
    g.add_argument(
        "--valid-cuts",
        type=Path,
        default=None,
        help="Validation cuts (default: the matching <corpus>_cuts_dev.jsonl.gz).",
    )
    g.add_argument(
        "--plm-manifest-dir",
        type=Path,
        default=Path("data/plm"),
        help="Directory of <corpus>_cuts_{train,dev}.jsonl.gz with PLM targets (prepare.sh stage "
        "5): the default training and validation cuts when --gmot-loss-scale > 0.",
    )


def get_parser() -> argparse.ArgumentParser:
    """The full training parser (model, losses, GM-OT, training, optimiser, data, RNN-T)."""
    parser = argparse.ArgumentParser(
        description="Train a Zipformer ASR model with GM-OT knowledge transfer.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    from gmot.data import AsrDataModule
    from gmot.optim import add_optim_arguments
    from gmot.transducer import add_rnnt_backend_argument

    AsrDataModule.add_arguments(parser)  # --lang-dir, --seed, --max-duration, --corpus, ...
    add_model_arguments(parser)
    add_loss_arguments(parser)
    add_gmot_arguments(parser)
    add_training_arguments(parser)
    add_cut_arguments(parser)
    add_optim_arguments(parser)
    add_rnnt_backend_argument(parser)
    return parser


def read_vocab_size(tokens_txt: Path) -> int:
    """max id + 1 of a ``<sym> <id>`` token table."""
    tokens_txt = Path(tokens_txt)
    if not tokens_txt.is_file():
        raise FileNotFoundError(f"token table not found: {tokens_txt} (see --lang-dir)")
    ids = []
    for n, line in enumerate(tokens_txt.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            ids.append(int(parts[-1]))
        except (ValueError, IndexError):
            raise ValueError(f"{tokens_txt}:{n}: expected '<sym> <id>', got {line!r}") from None
    if not ids:
        raise ValueError(f"{tokens_txt} is empty")
    return max(ids) + 1


def model_config_from_args(args: argparse.Namespace, vocab_size: int) -> dict:
    """The ``model_config`` dict (stored in checkpoints) from the parsed flags.

    Built by :func:`gmot.settings.from_flags` from :class:`ModelConfig`'s own flags; the GM-OT
    adapter is left out (``gmot_plm_dim`` 0) when ``--gmot-loss-scale`` is 0; ``num_features``
    follows the data module's ``--pitch``.
    """
    from gmot.data.pitch import input_dim

    num_features = input_dim(bool(getattr(args, "pitch", False)))
    cfg = from_flags(ModelConfig, args, vocab_size=vocab_size, num_features=num_features)
    if args.gmot_loss_scale <= 0:
        cfg = dataclasses.replace(cfg, gmot_plm_dim=0)
    return cfg.to_dict()
