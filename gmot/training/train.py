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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gmot.checkpoint import load_checkpoint, new_run_id, remove_stale_temp_files, save_checkpoint
from gmot.training.cli import (  # noqa: F401  (re-exported: the train.py API)
    add_cut_arguments,
    add_gmot_arguments,
    add_loss_arguments,
    add_model_arguments,
    add_training_arguments,
    get_parser,
    model_config_from_args,
    read_vocab_size,
)
from gmot.training.ddp import (
    cleanup_dist,
    exit_with_launcher,
    launched_by_torchrun,
    launcher_marked,
    setup_dist,
)
from gmot.training.loop import TrainState, compute_loss, train_one_epoch
from gmot.training.run_dir import (  # noqa: F401  (re-exported)
    RestoreRngAfterIter,
    check_exact_sampler_state,
    check_exp_dir,
    fix_random_seed,
    remove_old_checkpoints,
    rng_state,
    sampler_state_for_resume,
    set_rng_state,
    setup_logging,
)
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


# ------------------------------------------------------------------ helpers


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


def default_cut_paths(corpus: str | None, cut_dir: str | Path) -> tuple[Path, Path]:
    """The training and validation cuts of ``corpus`` in ``cut_dir``:
    ``<cut_dir>/<corpus>_cuts_train.jsonl.gz`` and ``..._dev.jsonl.gz``."""
    if not corpus:
        raise ValueError(
            "--corpus is not set: pass --corpus NAME (the recipe's train.py sets it) or give "
            "--train-cuts and --valid-cuts"
        )
    cut_dir = Path(cut_dir)
    return cut_dir / f"{corpus}_cuts_train.jsonl.gz", cut_dir / f"{corpus}_cuts_dev.jsonl.gz"


def default_data_factory(
    params: Any, sampler_state: dict | None, world_size: int, rank: int
) -> tuple[Any, Any]:
    """(train_dl, valid_dl) from :class:`gmot.data.AsrDataModule` and the cut manifests:
    ``--train-cuts``/``--valid-cuts``, by default those of ``--corpus`` in
    ``--plm-manifest-dir`` (GM-OT on: the cuts need PLM targets) or ``--manifest-dir``."""
    from lhotse import load_manifest_lazy

    from gmot.data import AsrDataModule

    if params.train_cuts is None or params.valid_cuts is None:
        cut_dir = params.plm_manifest_dir if params.gmot_loss_scale > 0 else params.manifest_dir
        train, valid = default_cut_paths(params.corpus, cut_dir)
        if params.train_cuts is None:
            params.train_cuts = train
        if params.valid_cuts is None:
            params.valid_cuts = valid
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
    params: Any,
    model: nn.Module,
    optimizer: Any,
    train_dl: Any,
    device: torch.device,
    batch_idx_train: int = 0,
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
            loss, _, _ = compute_loss(params, model, batch, device, True, batch_idx_train)
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


# ------------------------------------------------------------------ main


def run(
    rank: int,
    world_size: int,
    args: argparse.Namespace,
    data_factory: Callable | None = None,
) -> None:
    """Train on one rank (process)."""
    params = argparse.Namespace(**vars(args))
    if world_size > 1 and not launched_by_torchrun():
        exit_with_launcher()  # a spawned rank must not outlive a killed launcher
    setup_dist(rank, world_size, params.master_port)
    try:
        _run(rank, world_size, params, data_factory or default_data_factory)
    finally:
        cleanup_dist()


def _device(params: argparse.Namespace, rank: int) -> torch.device:
    if params.device == "cpu" or (params.device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    local = int(os.environ.get("LOCAL_RANK", rank))
    return torch.device("cuda", local)


@dataclasses.dataclass
class Trainables:
    """What training updates and saves: the model (and its DDP wrapper), the running averaged
    model (rank 0 only), optimiser, scheduler and fp16 grad scaler, and the model config."""

    model: nn.Module
    ddp_model: nn.Module
    model_avg: nn.Module | None
    optimizer: Any
    scheduler: Any
    scaler: Any
    model_config: dict


def start_rank(params: argparse.Namespace, rank: int, world_size: int) -> torch.device:
    """Logging, flag checks, RNN-T backend and seed for this rank; returns its device."""
    from gmot import format_env_info
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
    return device


def load_resume_checkpoint(params: argparse.Namespace) -> dict | None:
    """The checkpoint ``--start-batch`` / ``--start-epoch`` resumes from (None: a new run)."""
    if params.start_batch > 0:
        path = params.exp_dir / f"checkpoint-{params.start_batch}.pt"
        resume = load_checkpoint(path)
        check_exact_sampler_state(resume, path)
        return resume
    if params.start_epoch > 1:
        return load_checkpoint(params.exp_dir / f"epoch-{params.start_epoch - 1}.pt")
    return None


def new_train_state(params: argparse.Namespace, resume: dict | None, world_size: int) -> TrainState:
    """The run's counters: fresh, or those of the resume checkpoint (mid-epoch for
    ``--start-batch``)."""
    state = TrainState(
        cur_epoch=params.start_epoch,
        ref_batch_count_scale=schedule_batch_count_scale(
            float(params.max_duration), world_size, float(params.ref_duration)
        ),
    )
    if resume is None:
        state.run_id = new_run_id()
        logging.info("new training run %s", state.run_id)
        return state
    state.run_id = resume.get("run_id")
    if state.run_id is None:
        logging.warning(
            "the resume checkpoint has no run id (saved by an older gmot): this run's "
            "files cannot be told apart from other runs' in %s",
            params.exp_dir,
        )
    else:
        logging.info("resuming training run %s", state.run_id)
    saved = resume["params"]
    state.batch_idx_train = int(saved["batch_idx_train"])
    state.best_valid_loss = float(saved.get("best_valid_loss", float("inf")))
    if params.start_batch > 0:
        state.cur_epoch = int(saved["cur_epoch"])
        state.batch_idx_epoch = int(saved["batch_idx_epoch"])
    logging.info("resumed at epoch %d, global batch %d", state.cur_epoch, state.batch_idx_train)
    return state


def build_trainables(
    params: argparse.Namespace,
    resume: dict | None,
    device: torch.device,
    rank: int,
    world_size: int,
) -> Trainables:
    """Model (from the flags, or the resume checkpoint's config and weights), averaged model,
    DDP wrapper, optimiser, scheduler and grad scaler (their states restored on a resume)."""
    from gmot.data.pitch import feature_kind, input_dim
    from gmot.models.asr_model import build_model
    from gmot.optim import Eden, ScaledAdam
    from gmot.training.model_avg import make_averaged_model

    if resume is not None:
        model_config = resume["model_config"]
        # a new model takes its width from --pitch (model_config_from_args); a resumed one has
        # its own, which the data module's features must match
        want = input_dim(bool(getattr(params, "pitch", False)))
        if int(model_config.get("num_features", 80)) != want:
            raise ValueError(
                f"the checkpoint's model reads {model_config.get('num_features', 80)} features "
                f"per frame, but --pitch {int(bool(getattr(params, 'pitch', False)))} gives "
                f"{want} ({feature_kind(want)}); resume with the --pitch it was trained with"
            )
    else:
        vocab_size = read_vocab_size(params.lang_dir / "tokens.txt")
        model_config = model_config_from_args(params, vocab_size)
    model = build_model(model_config)
    num_param = sum(p.numel() for p in model.parameters())
    logging.info("model parameters: %d; config: %s", num_param, model_config)
    if params.inf_check:
        register_inf_check_hooks(model)
    model_avg = make_averaged_model(model) if rank == 0 else None
    model.to(device)
    if resume is not None:
        model.load_state_dict(resume["model"])
        if model_avg is not None and resume.get("model_avg") is not None:
            model_avg.load_state_dict(resume["model_avg"])
    ddp_model: nn.Module = model
    if world_size > 1:
        ddp_model = nn.parallel.DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )
    optimizer = ScaledAdam(list(model.named_parameters()), lr=params.base_lr)
    scheduler = Eden(
        optimizer,
        params.lr_batches,
        params.lr_epochs,
        warmup_batches=params.warmup_batches,
        warmup_start=params.warmup_start,
        cooldown_epochs=params.lr_cooldown_epochs,
        num_epochs=params.num_epochs,
        cooldown_final=params.lr_cooldown_final,
    )
    scaler = None
    if params.use_fp16:
        scaler = torch.amp.GradScaler(device.type, init_scale=1.0, enabled=True)
    if resume is not None:
        if resume.get("optimizer") is not None:
            optimizer.load_state_dict(resume["optimizer"])
        if resume.get("scheduler") is not None:
            scheduler.load_state_dict(resume["scheduler"])
        if scaler is not None and resume.get("grad_scaler") is not None:
            scaler.load_state_dict(resume["grad_scaler"])
    return Trainables(model, ddp_model, model_avg, optimizer, scheduler, scaler, model_config)


def open_tensorboard(params: argparse.Namespace, rank: int) -> Any:
    """The TensorBoard writer of rank 0 with ``--tensorboard 1``, else None."""
    if not params.tensorboard or rank != 0:
        return None
    from torch.utils.tensorboard import SummaryWriter

    from gmot import format_env_info

    tb = SummaryWriter(log_dir=str(params.exp_dir / "tensorboard"))
    tb.add_text("env", format_env_info().replace("\n", "  \n"), 0)
    return tb


class CheckpointSaver:
    """``save(path)``: a checkpoint of the trainables, the flags and the counters (with the RNG
    and sampler states a resume needs); rank 0 writes, then prunes old ``checkpoint-B.pt``."""

    def __init__(
        self,
        params: argparse.Namespace,
        state: TrainState,
        tr: Trainables,
        train_dl: Any,
        rank: int,
    ) -> None:
        self.params, self.state, self.tr, self.train_dl, self.rank = (
            params,
            state,
            tr,
            train_dl,
            rank,
        )

    def saved_params(self) -> dict:
        """The flags (plain values) and the counters, as checkpoints store them."""
        out: dict[str, Any] = {}
        for k, v in vars(self.params).items():
            if isinstance(v, (int, float, str, bool, type(None))):
                out[k] = v
            elif isinstance(v, Path):
                out[k] = str(v)
        out.update(dataclasses.asdict(self.state))
        return out

    def __call__(self, path: Path) -> None:
        tr = self.tr
        sampler_state, exact = sampler_state_for_resume(self.train_dl)
        save_checkpoint(
            path,
            model=tr.model,
            params=self.saved_params(),
            model_avg=tr.model_avg,
            optimizer=tr.optimizer,
            scheduler=tr.scheduler,
            grad_scaler=tr.scaler,
            sampler_state=sampler_state,
            rank=self.rank,
            model_config=tr.model_config,
            extra={"rng": rng_state(), "run_id": self.state.run_id, "sampler_exact": exact},
        )
        if self.rank == 0:
            logging.info("saved %s", path)
            remove_old_checkpoints(self.params.exp_dir, self.params.keep_last_k, self.state.run_id)


def fit_one_epoch(
    params: argparse.Namespace,
    state: TrainState,
    tr: Trainables,
    loaders: tuple[Any, Any],
    device: torch.device,
    *,
    first_epoch: bool,
    resume_rng: dict | None,
    tb: Any,
    guard: NonFiniteGuard,
    save: CheckpointSaver,
    rank: int,
    world_size: int,
) -> None:
    """Train epoch ``state.cur_epoch`` (its remainder when resuming inside it) and save
    ``epoch-N.pt``."""
    train_dl, valid_dl = loaders
    epoch = state.cur_epoch
    resuming_mid_epoch = first_epoch and state.batch_idx_epoch > 0
    if not resuming_mid_epoch:
        state.batch_idx_epoch = 0
        tr.scheduler.step_epoch(epoch - 1)
        sampler = getattr(train_dl, "sampler", None)
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch - 1)
        fix_random_seed(params.seed + epoch - 1 + 1000 * rank)
    if tb is not None:
        tb.add_scalar("train/epoch", epoch, state.batch_idx_train)
    epoch_dl = train_dl
    if resuming_mid_epoch and resume_rng is not None:
        epoch_dl = RestoreRngAfterIter(train_dl, resume_rng)
    tot = train_one_epoch(
        params,
        tr.ddp_model,
        tr.model_avg,
        tr.optimizer,
        tr.scheduler,
        epoch_dl,
        valid_dl,
        device,
        scaler=tr.scaler,
        tb_writer=tb,
        rank=rank,
        world_size=world_size,
        guard=guard,
        save_fn=save,
        state=state,
    )
    logging.info("epoch %d done: %s", epoch, tot)
    if state.batch_idx_epoch == 0:
        logging.warning(
            "epoch %d produced no training batch: every cut was filtered out, or the "
            "sampler dropped every incomplete batch (small data with --drop-last 1 and "
            "many --num-buckets). Try --drop-last 0 or fewer buckets.",
            epoch,
        )
    save(params.exp_dir / f"epoch-{epoch}.pt")


def _run(rank: int, world_size: int, params: argparse.Namespace, data_factory: Callable) -> None:
    from gmot import env_info

    device = start_rank(params, rank, world_size)
    resume = load_resume_checkpoint(params)
    state = new_train_state(params, resume, world_size)
    tr = build_trainables(params, resume, device, rank, world_size)
    sampler_state = resume_rng = None
    if resume is not None:
        if params.start_batch > 0:
            sampler_state = resume.get("sampler")
        if resume.get("rng") is not None and rank == 0:
            set_rng_state(resume["rng"])
            resume_rng = resume["rng"]
    del resume

    train_dl, valid_dl = data_factory(params, sampler_state, world_size, rank)
    tb = open_tensorboard(params, rank)
    if params.scan_oom and params.start_batch == 0:
        scan_pessimistic_batches(
            params, tr.ddp_model, tr.optimizer, train_dl, device, state.batch_idx_train
        )
    save = CheckpointSaver(params, state, tr, train_dl, rank)
    guard = NonFiniteGuard(params.max_nonfinite_batches)
    logging.info("gmot git revision %s", env_info().get("gmot_git", "?"))
    first_epoch = state.cur_epoch
    for epoch in range(first_epoch, params.num_epochs + 1):
        state.cur_epoch = epoch
        fit_one_epoch(
            params,
            state,
            tr,
            (train_dl, valid_dl),
            device,
            first_epoch=epoch == first_epoch,
            resume_rng=resume_rng,
            tb=tb,
            guard=guard,
            save=save,
            rank=rank,
            world_size=world_size,
        )
        if params.max_batches > 0 and state.batch_idx_train >= params.max_batches:
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

        with launcher_marked():
            mp.spawn(
                run, args=(args.world_size, args, data_factory), nprocs=args.world_size, join=True
            )
    else:
        run(0, 1, args, data_factory)


if __name__ == "__main__":
    main()
