"""``zipformer_gmot/train.py``: train the Zipformer ASR model with GM-OT knowledge transfer.

Usage (from ``egs/<corpus>/ASR``)::

    ./zipformer_gmot/train.py --world-size 2 --num-epochs 60 --exp-dir zipformer_gmot/exp \\
        --use-fp16 1 --gmot-loss-scale 0.1 --max-duration 1000

Several machines: ``torchrun --nnodes ... --nproc-per-node ... zipformer_gmot/train.py ...``
(RANK/WORLD_SIZE/LOCAL_RANK are taken from the environment).

Resume: ``--start-epoch E`` loads ``exp-dir/epoch-(E-1).pt``; ``--start-batch B`` loads
``exp-dir/checkpoint-B.pt`` and continues inside its epoch with the batch after B (model,
averaged model, optimiser, scheduler, grad scaler, sampler and RNG states). The sampler state is
the one as of batch B even with DataLoader workers (which prefetch ahead); a checkpoint without
that guarantee (``sampler_exact`` False) is refused for ``--start-batch``.

One run per experiment directory: every checkpoint carries the run id. A new run (no
``--start-epoch``/``--start-batch``) refuses an ``--exp-dir`` that already holds ``epoch-N.pt`` or
``checkpoint-B.pt`` files, and a resume refuses one that holds files from after the resume point,
unless ``--overwrite-exp-dir 1`` (which deletes those files first).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import random
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gmot.checkpoint import (
    CheckpointError,
    checkpoint_run_id,
    list_checkpoints,
    load_checkpoint,
    new_run_id,
    peek_checkpoint,
    remove_stale_temp_files,
    save_checkpoint,
)
from gmot.cli import str2bool
from gmot.models.config import ModelConfig
from gmot.settings import add_flags, from_flags
from gmot.training.ddp import cleanup_dist, launched_by_torchrun, setup_dist
from gmot.training.loop import MetricsTracker, compute_loss, train_one_epoch
from gmot.training.safeguards import NonFiniteGuard

# ------------------------------------------------------------------ arguments


def schedule_batch_count_scale(
    max_duration: float, world_size: int, ref_duration: float = 600.0
) -> float:
    """Zipformer schedule units per training batch: ``max_duration * world_size / ref_duration``.

    The encoder's regularisation schedules (layer skipping, module dropout, bypass floor) are
    keyed on a batch count normalised to batches of ``ref_duration`` seconds (icefall: 600 s), so
    the schedule position after ``b`` batches is ``b`` times this value.
    """
    if ref_duration <= 0:
        raise ValueError(f"--ref-duration must be > 0 seconds; got {ref_duration}")
    if max_duration <= 0 or world_size < 1:
        raise ValueError(
            f"max_duration must be > 0 and world_size >= 1; got {max_duration}, {world_size}"
        )
    return max_duration * world_size / ref_duration


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
    g.add_argument(
        "--exp-dir", type=Path, default=Path("zipformer_gmot/exp"), help="Experiment dir."
    )
    g.add_argument(
        "--overwrite-exp-dir",
        type=str2bool,
        default=False,
        help="1: delete the epoch-N.pt / checkpoint-B.pt files (and tensorboard/) of an earlier "
        "run in --exp-dir before a new run, or, when resuming, the files from after the resume "
        "point. 0: refuse to start when such files exist (one run per experiment directory).",
    )
    _add_if_new(g, "--lang-dir", type=Path, default=Path("data/lang_char"), help="tokens.txt dir")
    g.add_argument(
        "--train-cuts",
        type=Path,
        default=None,
        help="Training cuts (default: data/plm/<corpus>_cuts_train.jsonl.gz with GM-OT on, "
        "<manifest-dir>/<corpus>_cuts_train.jsonl.gz with it off).",
    )
    g.add_argument(
        "--valid-cuts",
        type=Path,
        default=None,
        help="Validation cuts (default: the matching <corpus>_cuts_dev.jsonl.gz).",
    )
    g.add_argument("--use-fp16", type=str2bool, default=False, help="fp16 autocast + GradScaler.")
    g.add_argument("--use-bf16", type=str2bool, default=False, help="bf16 autocast.")
    _add_if_new(g, "--seed", type=int, default=42, help="Random seed.")
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
    add_optim_arguments(parser)
    add_rnnt_backend_argument(parser)
    return parser


def _add_if_new(g: Any, flag: str, **kw: Any) -> None:
    """Add ``flag`` unless another module (the data module) already defines it."""
    parser = g._container if hasattr(g, "_container") else g
    if flag not in parser._option_string_actions:
        g.add_argument(flag, **kw)


# ------------------------------------------------------------------ model config


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
    adapter is left out (``gmot_plm_dim`` 0) when ``--gmot-loss-scale`` is 0.
    """
    cfg = from_flags(ModelConfig, args, vocab_size=vocab_size)
    if args.gmot_loss_scale <= 0:
        cfg = dataclasses.replace(cfg, gmot_plm_dim=0)
    return cfg.to_dict()


# ------------------------------------------------------------------ helpers


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


def register_inf_check_hooks(model: nn.Module) -> None:
    """Log the first modules whose forward output or input gradient is not finite."""

    def _fwd(name):
        def hook(_m, _inp, out):
            if isinstance(out, torch.Tensor) and not torch.isfinite(out).all():
                logging.warning("inf-check: non-finite forward output in %s", name)

        return hook

    def _bwd(name):
        def hook(_m, grad_in, _grad_out):
            for g in grad_in:
                if isinstance(g, torch.Tensor) and not torch.isfinite(g).all():
                    logging.warning("inf-check: non-finite gradient in %s", name)
                    break

        return hook

    for name, m in model.named_modules():
        m.register_forward_hook(_fwd(name or "model"))
        m.register_full_backward_hook(_bwd(name or "model"))


def default_data_factory(
    params: Any, sampler_state: dict | None, world_size: int, rank: int
) -> tuple[Any, Any]:
    """(train_dl, valid_dl) from :class:`gmot.data.AsrDataModule` and the cut manifests."""
    from lhotse import load_manifest_lazy

    from gmot.data import AsrDataModule

    corpus = getattr(params, "corpus", None) or "hsk"
    # GM-OT needs the cuts with PLM targets (data/plm/); otherwise --manifest-dir's cuts
    cut_dir = Path("data/plm") if params.gmot_loss_scale > 0 else Path(params.manifest_dir)
    if params.train_cuts is None:
        params.train_cuts = cut_dir / f"{corpus}_cuts_train.jsonl.gz"
    if params.valid_cuts is None:
        params.valid_cuts = cut_dir / f"{corpus}_cuts_dev.jsonl.gz"
    for flag, p in (("--train-cuts", params.train_cuts), ("--valid-cuts", params.valid_cuts)):
        if p is not None and not Path(p).is_file():
            raise FileNotFoundError(f"{flag}: {p} does not exist")
    dm = AsrDataModule(params)
    train_cuts = load_manifest_lazy(params.train_cuts)
    train_dl = dm.train_dataloader(train_cuts, sampler_state_dict=sampler_state)
    valid_dl = None
    if params.valid_cuts is not None:
        valid_dl = dm.valid_dataloader(load_manifest_lazy(params.valid_cuts))
    return train_dl, valid_dl


def scan_pessimistic_batches(
    params: Any, model: nn.Module, optimizer: Any, train_dl: Any, device: torch.device
) -> None:
    """Run forward+backward on the sampler's pessimistic (longest) batches first (no update)."""
    sampler = getattr(train_dl, "sampler", None)
    from lhotse.dataset.sampling.base import CutSampler
    from lhotse.dataset.sampling.utils import find_pessimistic_batches

    if not isinstance(sampler, CutSampler):
        logging.warning("--scan-oom: the training sampler is not a lhotse CutSampler; skipped")
        return
    ds = train_dl.dataset
    state = sampler.state_dict()
    batches, _ = find_pessimistic_batches(sampler)
    sampler.load_state_dict(state)  # the scan iterated the sampler: put it back
    if getattr(train_dl, "cut_filter", None) is not None:
        train_dl.cut_filter.reset_pass()  # and its filter, whose epoch report would double
    for crit, cuts in batches.items():
        batch = ds[cuts]
        if batch is None:
            continue
        logging.info("--scan-oom: criterion %s: %d cuts", crit, len(batch["cut_ids"]))
        try:
            loss, _, _ = compute_loss(params, model, batch, device, is_training=True)
            loss.backward()
            optimizer.zero_grad(set_to_none=True)
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                logging.error(
                    "OOM on the pessimistic batch (criterion %s, %d cuts); lower --max-duration",
                    crit,
                    len(cuts),
                )
            raise
    logging.info("--scan-oom: pessimistic batches ran without OOM")


def _remove_old_checkpoints(exp_dir: Path, keep_last_k: int, run_id: str | None) -> None:
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


class _RestoreRngAfterIter:
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


# ------------------------------------------------------------------ main


def run(
    rank: int,
    world_size: int,
    args: argparse.Namespace,
    data_factory: Callable | None = None,
) -> None:
    """Train on one rank (process)."""
    params = argparse.Namespace(**vars(args))
    setup_dist(rank, world_size, params.master_port)
    try:
        _run(rank, world_size, params, data_factory or default_data_factory)
    finally:
        cleanup_dist()


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


def _device(params: Any, rank: int) -> torch.device:
    if params.device == "cpu" or (params.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    local = int(os.environ.get("LOCAL_RANK", rank))
    return torch.device("cuda", local)


def _run(rank: int, world_size: int, params: Any, data_factory: Callable) -> None:
    from gmot import env_info, format_env_info
    from gmot.models.asr_model import build_model
    from gmot.optim import Eden, ScaledAdam
    from gmot.training.model_avg import make_averaged_model
    from gmot.transducer import set_rnnt_backend

    params.exp_dir = Path(params.exp_dir)
    setup_logging(params.exp_dir, rank, world_size)
    if params.use_fp16 and params.use_bf16:
        raise ValueError("--use-fp16 and --use-bf16 are mutually exclusive")
    set_rnnt_backend(params.rnnt_backend)
    fix_random_seed(params.seed + rank)
    device = _device(params, rank)
    logging.info("training on %s, world size %d, rank %d", device, world_size, rank)
    logging.info("environment:\n%s", format_env_info())
    if rank == 0:
        (params.exp_dir / "env.txt").write_text(format_env_info() + "\n", encoding="utf-8")
        for p in remove_stale_temp_files(params.exp_dir):
            logging.warning("removed %s, left by an interrupted checkpoint save", p)

    resume = None
    if params.start_batch > 0:
        resume = load_checkpoint(params.exp_dir / f"checkpoint-{params.start_batch}.pt")
        check_exact_sampler_state(resume, params.exp_dir / f"checkpoint-{params.start_batch}.pt")
    elif params.start_epoch > 1:
        resume = load_checkpoint(params.exp_dir / f"epoch-{params.start_epoch - 1}.pt")
    if resume is None:
        params.run_id = new_run_id()
        logging.info("new training run %s", params.run_id)
    else:
        params.run_id = resume.get("run_id")
        if params.run_id is None:
            logging.warning(
                "the resume checkpoint has no run id (saved by an older gmot): this run's "
                "files cannot be told apart from other runs' in %s",
                params.exp_dir,
            )
        else:
            logging.info("resuming training run %s", params.run_id)

    if resume is not None:
        model_config = resume["model_config"]
    else:
        model_config = model_config_from_args(
            params, read_vocab_size(params.lang_dir / "tokens.txt")
        )
    model = build_model(model_config)
    num_param = sum(p.numel() for p in model.parameters())
    logging.info("model parameters: %d; config: %s", num_param, model_config)
    if params.inf_check:
        register_inf_check_hooks(model)
    model_avg = make_averaged_model(model) if rank == 0 else None
    model.to(device)

    params.batch_idx_train = 0
    params.batch_idx_epoch = 0
    params.cur_epoch = params.start_epoch
    params.best_valid_loss = float("inf")
    params.ref_batch_count_scale = schedule_batch_count_scale(
        float(getattr(params, "max_duration", 600.0) or 600.0),
        world_size,
        float(getattr(params, "ref_duration", 600.0)),
    )
    if resume is not None:
        model.load_state_dict(resume["model"])
        if model_avg is not None and resume.get("model_avg") is not None:
            model_avg.load_state_dict(resume["model_avg"])
        saved = resume["params"]
        params.batch_idx_train = int(saved["batch_idx_train"])
        params.best_valid_loss = float(saved.get("best_valid_loss", float("inf")))
        if params.start_batch > 0:
            params.cur_epoch = int(saved["cur_epoch"])
            params.batch_idx_epoch = int(saved["batch_idx_epoch"])
        logging.info(
            "resumed at epoch %d, global batch %d", params.cur_epoch, params.batch_idx_train
        )

    if world_size > 1:
        ddp_model: nn.Module = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    else:
        ddp_model = model
    optimizer = ScaledAdam(list(model.named_parameters()), lr=params.base_lr)
    scheduler = Eden(
        optimizer,
        params.lr_batches,
        params.lr_epochs,
        warmup_batches=params.warmup_batches,
        warmup_start=params.warmup_start,
    )
    scaler = None
    if params.use_fp16:
        scaler = torch.amp.GradScaler(device.type, init_scale=1.0, enabled=True)
    sampler_state = None
    resume_rng = None
    if resume is not None:
        if resume.get("optimizer") is not None:
            optimizer.load_state_dict(resume["optimizer"])
        if resume.get("scheduler") is not None:
            scheduler.load_state_dict(resume["scheduler"])
        if scaler is not None and resume.get("grad_scaler") is not None:
            scaler.load_state_dict(resume["grad_scaler"])
        if params.start_batch > 0:
            sampler_state = resume.get("sampler")
        if resume.get("rng") is not None and rank == 0:
            set_rng_state(resume["rng"])
            resume_rng = resume["rng"]
    del resume

    train_dl, valid_dl = data_factory(params, sampler_state, world_size, rank)
    tb = None
    if params.tensorboard and rank == 0:
        from torch.utils.tensorboard import SummaryWriter

        tb = SummaryWriter(log_dir=str(params.exp_dir / "tensorboard"))
        tb.add_text("env", format_env_info().replace("\n", "  \n"), 0)
    if params.scan_oom and params.start_batch == 0:
        scan_pessimistic_batches(params, ddp_model, optimizer, train_dl, device)

    def state_params() -> dict:
        out = {}
        for k, v in vars(params).items():
            if isinstance(v, (int, float, str, bool, type(None))):
                out[k] = v
            elif isinstance(v, Path):
                out[k] = str(v)
        return out

    def save(path: Path) -> None:
        state, exact = sampler_state_for_resume(train_dl)
        save_checkpoint(
            path,
            model=model,
            params=state_params(),
            model_avg=model_avg,
            optimizer=optimizer,
            scheduler=scheduler,
            grad_scaler=scaler,
            sampler_state=state,
            rank=rank,
            model_config=model_config,
            extra={"rng": rng_state(), "run_id": params.run_id, "sampler_exact": exact},
        )
        if rank == 0:
            logging.info("saved %s", path)
            _remove_old_checkpoints(params.exp_dir, params.keep_last_k, params.run_id)

    guard = NonFiniteGuard(params.max_nonfinite_batches)
    env = env_info()
    logging.info("gmot git revision %s", env.get("gmot_git", "?"))
    first_epoch = params.cur_epoch
    for epoch in range(first_epoch, params.num_epochs + 1):
        params.cur_epoch = epoch
        resuming_mid_epoch = epoch == first_epoch and params.batch_idx_epoch > 0
        if not resuming_mid_epoch:
            params.batch_idx_epoch = 0
            scheduler.step_epoch(epoch - 1)
            sampler = getattr(train_dl, "sampler", None)
            if sampler is not None and hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch - 1)
            fix_random_seed(params.seed + epoch - 1 + 1000 * rank)
        if tb is not None:
            tb.add_scalar("train/epoch", epoch, params.batch_idx_train)
        epoch_dl = train_dl
        if resuming_mid_epoch and resume_rng is not None:
            epoch_dl = _RestoreRngAfterIter(train_dl, resume_rng)
        tot = train_one_epoch(
            params,
            ddp_model,
            model_avg,
            optimizer,
            scheduler,
            epoch_dl,
            valid_dl,
            device,
            scaler=scaler,
            tb_writer=tb,
            rank=rank,
            world_size=world_size,
            guard=guard,
            save_fn=save,
        )
        logging.info("epoch %d done: %s", epoch, tot if isinstance(tot, MetricsTracker) else "")
        if params.batch_idx_epoch == 0:
            logging.warning(
                "epoch %d produced no training batch: every cut was filtered out, or the "
                "sampler dropped every incomplete batch (small data with --drop-last 1 and "
                "many --num-buckets). Try --drop-last 0 or fewer buckets.",
                epoch,
            )
        save(params.exp_dir / f"epoch-{epoch}.pt")
        if params.max_batches > 0 and params.batch_idx_train >= params.max_batches:
            logging.info("--max-batches %d reached; stopping", params.max_batches)
            break
    if tb is not None:
        tb.close()
    logging.info("done (%d non-finite batches skipped)", guard.total)


def main(
    argv: list[str] | None = None,
    defaults: dict | None = None,
    data_factory: Callable | None = None,
) -> None:
    """Parse ``argv`` (``defaults`` override the parser's defaults, e.g. recipe paths) and train."""
    parser = get_parser()
    if defaults:
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    torchrun_rank = int(os.environ.get("RANK", 0)) if launched_by_torchrun() else 0
    # before any process group exists: every torchrun process checks, rank 0 deletes
    check_exp_dir(args, delete=torchrun_rank == 0)
    if launched_by_torchrun():
        run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args, data_factory)
    elif args.world_size > 1:
        import torch.multiprocessing as mp

        mp.spawn(run, args=(args.world_size, args, data_factory), nprocs=args.world_size, join=True)
    else:
        run(0, 1, args, data_factory)


if __name__ == "__main__":
    main()
