"""Loss composition (icefall's schedules), metrics, one training epoch, validation.

``compute_loss`` turns the model's per-term sums into the training objective::

    loss = simple_scale * simple + pruned_scale * pruned          (transducer)
         + ctc_loss_scale * ctc + attention_decoder_loss_scale * attention
         + gmot_scale(batch) * gmot

with simple_scale 1.0 -> 0.5 and pruned_scale 0.1 -> 1.0 linearly over ``warm_step`` batches and
``gmot_scale(b) = gmot_loss_scale * min(1, b / gmot_warmup_batches)``. Metrics are kept as sums
and reported per encoder output frame.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gmot.training.ddp import all_reduce_sum
from gmot.training.safeguards import NonFiniteGuard, grad_scale_watchdog, save_bad_batch

LOSS_TERMS = ("simple", "pruned", "ctc", "attention", "gmot")


@dataclass
class TrainState:
    """The counters of a training run, saved in every checkpoint's ``"params"`` under these names.

    Attributes:
        cur_epoch: the epoch being trained (1-based).
        batch_idx_train: batches trained so far over all epochs (the global batch index of the
            last one; the scheduler, the GM-OT ramp and ``checkpoint-B.pt`` use it).
        batch_idx_epoch: batches trained so far in ``cur_epoch`` (> 0 at the start of an epoch
            only when resuming inside it).
        best_valid_loss: lowest validation loss per frame seen (``inf`` before any).
        ref_batch_count_scale: Zipformer schedule units per batch, constant for the run
            (``max_duration * world_size / ref_duration``, see ``schedule_batch_count_scale``).
        run_id: the run id every checkpoint of this run carries (``None``: an old run's resume).
    """

    cur_epoch: int = 1
    batch_idx_train: int = 0
    batch_idx_epoch: int = 0
    best_valid_loss: float = math.inf
    ref_batch_count_scale: float = 1.0
    run_id: str | None = None


def transducer_scales(batch_idx_train: int, warm_step: int) -> tuple[float, float]:
    """(simple_scale, pruned_scale): 1.0 -> 0.5 and 0.1 -> 1.0 over ``warm_step`` batches."""
    if warm_step <= 0 or batch_idx_train >= warm_step:
        return 0.5, 1.0
    r = batch_idx_train / warm_step
    return 1.0 - 0.5 * r, 0.1 + 0.9 * r


def gmot_scale(params: Any, batch_idx_train: int) -> float:
    """The GM-OT loss weight at this batch (0 means: do not compute GM-OT at all)."""
    s = float(params.gmot_loss_scale)
    if s == 0.0:
        return 0.0
    w = int(params.gmot_warmup_batches)
    if w > 0:
        s *= min(1.0, batch_idx_train / w)
    return s


def autocast_ctx(params: Any, device: torch.device):
    """autocast(fp16 | bf16) per the flags, else a null context."""
    if getattr(params, "use_bf16", False):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if getattr(params, "use_fp16", False):
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    return nullcontext()


def compute_loss(
    params: Any,
    model: nn.Module,
    batch: dict,
    device: torch.device,
    is_training: bool,
    batch_idx_train: int = 0,
) -> tuple[Tensor, dict[str, float], dict]:
    """Run the model on ``batch`` and combine the terms.

    ``batch_idx_train`` (the global index of this batch) sets the training-time schedules (the
    transducer scales, the GM-OT ramp); evaluation uses the final scales.

    Returns:
      (loss scalar float32 (sum over the batch), metric sums {term: value, "loss", "frames",
      "utterances", GM-OT diagnostics sums}, info dict from the model).
    """
    b = int(batch_idx_train)
    g = gmot_scale(params, b) if is_training else float(params.gmot_loss_scale)
    feats = batch["features"].to(device)
    lens = batch["feature_lens"].to(device)
    plm_feats = batch.get("plm_feats")
    plm_lens = batch.get("plm_lens")
    use_gmot = g > 0.0
    if use_gmot and plm_feats is None:
        raise ValueError(
            "--gmot-loss-scale > 0 but the batch has no 'plm_feats': train on cuts with PLM "
            "targets (prepare.sh stage 5; --plm-manifest-dir or --train-cuts) or set "
            "--gmot-loss-scale 0"
        )
    with autocast_ctx(params, device), torch.set_grad_enabled(is_training):
        out = model(
            feats,
            lens,
            batch["token_ids"],
            None if not use_gmot else plm_feats.to(device),
            None if not use_gmot else plm_lens.to(device),
            compute_gmot=use_gmot,
            prune_range=params.prune_range,
            am_scale=params.am_scale,
            lm_scale=params.lm_scale,
        )
    info = out.pop("info")
    loss = torch.zeros((), device=device, dtype=torch.float32)
    m: dict[str, float] = {}
    if "simple" in out:
        ss, ps = transducer_scales(b, params.warm_step) if is_training else (0.5, 1.0)
        loss = loss + ss * out["simple"].float() + ps * out["pruned"].float()
    if "ctc" in out:
        loss = loss + params.ctc_loss_scale * out["ctc"].float()
    if "attention" in out:
        loss = loss + params.attention_decoder_loss_scale * out["attention"].float()
    if "gmot" in out:
        loss = loss + g * out["gmot"].float()
    for k, v in out.items():
        m[k] = float(v.detach())
    m["loss"] = float(loss.detach())
    m["frames"] = float(info["frames"])
    m["utterances"] = float(info["utterances"])
    if "gmot_per_utt" in info:
        m["gmot_distance"] = float(info["gmot_per_utt"].sum())
        if "gmot_plan_entropy" in info:
            m["gmot_plan_entropy"] = float(info["gmot_plan_entropy"].sum())
        m["gmot_utts"] = float(info["utterances"])
        if "gmot_unconverged" in info:  # per batch: one batched solve
            m["gmot_unconverged"] = float(info["gmot_unconverged"])
            m["gmot_outer_iters"] = float(info["gmot_outer_iters"])
            m["gmot_batches"] = 1.0
    return loss, m, info


class MetricsTracker(dict):
    """Sums of metrics; :meth:`norm` gives loss terms per frame, GM-OT distance and entropy per
    utterance, and per GM-OT solve (batch) the share of solves that stopped at the outer
    iteration limit before reaching the tolerance (``gmot_unconverged``) and the mean outer
    iterations."""

    def add(self, other: dict[str, float], decay: float | None = None) -> None:
        if decay is not None:
            for k in list(self):
                self[k] *= decay
        for k, v in other.items():
            self[k] = self.get(k, 0.0) + v

    def norm(self) -> dict[str, float]:
        fr = max(self.get("frames", 0.0), 1.0)
        nu = max(self.get("gmot_utts", 0.0), 1.0)
        nb = max(self.get("gmot_batches", 0.0), 1.0)
        out = {}
        for k, v in self.items():
            if k in ("frames", "utterances", "gmot_utts", "gmot_batches"):
                continue
            if k in ("gmot_distance", "gmot_plan_entropy"):
                out[k] = v / nu
            elif k in ("gmot_unconverged", "gmot_outer_iters"):
                out[k] = v / nb
            else:
                out[k] = v / fr
        return out

    def all_reduce(self, device: torch.device) -> None:
        keys = sorted(self)
        t = torch.tensor([self[k] for k in keys], dtype=torch.float64, device=device)
        all_reduce_sum(t)
        for k, v in zip(keys, t.tolist()):
            self[k] = v

    def __str__(self) -> str:
        return ", ".join(f"{k}={v:.4g}" for k, v in self.norm().items())


def validate(params: Any, model: nn.Module, valid_dl: Any, device: torch.device) -> MetricsTracker:
    """Validation metrics (sums all-reduced over ranks)."""
    model.eval()
    tot = MetricsTracker()
    with torch.no_grad():
        for batch in valid_dl:
            _, m, _ = compute_loss(params, model, batch, device, is_training=False)
            tot.add(m)
    tot.all_reduce(device)
    model.train()
    return tot


def _log_plan(params: Any, tb: Any, info: dict, batch: dict, b: int) -> None:
    """Write a transport-plan heatmap of utterance 0 to TensorBoard."""
    try:
        import numpy as np
        from PIL import Image

        from gmot.ot import plot_transport_plan

        plan = info["gmot_plan"].float().cpu()
        lt = int(batch["plm_lens"][0])
        la = int((plan[:, :lt].sum(-1) > 0).sum()) or plan.shape[0]
        tokens = batch.get("plm_tokens")
        toks = list(tokens[0])[:lt] if tokens else [str(i) for i in range(lt)]
        path = Path(params.exp_dir) / "plans" / f"plan-{b}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_transport_plan(plan[:la, :lt], toks, path, title=f"batch {b}")
        img = np.asarray(Image.open(path).convert("RGB"))
        tb.add_image("train/transport_plan", img, b, dataformats="HWC")
    except Exception as exc:  # plotting must never stop training
        logging.warning("could not plot the transport plan: %s", exc)


def train_step(
    params: Any,
    model: nn.Module,
    optimizer: Any,
    scheduler: Any,
    batch: dict,
    b: int,
    device: torch.device,
    *,
    scaler: Any,
    guard: NonFiniteGuard,
    rank: int,
    world_size: int,
) -> tuple[bool, dict[str, float], dict]:
    """Forward, backward and update on global batch ``b`` (``optimizer`` and ``scheduler`` step).

    A non-finite loss is skipped (on every rank when any rank's is, see ``guard``). An exception
    saves the batch to ``exp_dir/bad-batch-B.pt`` and propagates.

    Returns:
      (whether the batch was used, its metric sums, the model's info dict).
    """
    try:
        loss, m, info = compute_loss(params, model, batch, device, True, batch_idx_train=b)
        ok = guard.check(loss, b, batch.get("cut_ids"))
        if world_size > 1:  # skip together: one rank's nan must not reach the others
            flag = torch.tensor([float(ok)], device=device)
            ok = bool(all_reduce_sum(flag).item() == world_size)
        if ok:
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
        elif world_size > 1:  # finish DDP's pending reduction; the result is discarded
            (loss.nan_to_num(0.0, 0.0, 0.0) * 0.0).backward()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step_batch(b)
    except Exception:
        if rank == 0:
            logging.exception("exception at batch %d", b)
        save_bad_batch(params.exp_dir, batch, model, b, rank if world_size > 1 else None)
        raise
    return ok, m, info


def log_progress(
    params: Any,
    st: TrainState,
    m: dict[str, float],
    tot: MetricsTracker,
    scheduler: Any,
    scaler: Any,
    tb_writer: Any,
    elapsed: float,
) -> None:
    """Log this batch's and the running (``tot``) losses, lr and grad scale; to TensorBoard too
    when ``tb_writer`` is given."""
    b = st.batch_idx_train
    lr = scheduler.get_last_lr()[0]
    gs = scaler.get_scale() if scaler is not None and scaler.is_enabled() else 1.0
    cur = MetricsTracker(m).norm()
    logging.info(
        "epoch %d, batch %d (global %d), loss[%s], tot_loss[%s], lr %.3g, grad_scale %g, %.2f s",
        st.cur_epoch,
        st.batch_idx_epoch,
        b,
        ", ".join(f"{k}={v:.4g}" for k, v in cur.items()),
        tot,
        lr,
        gs,
        elapsed,
    )
    if tb_writer is not None:
        for k, v in cur.items():
            tb_writer.add_scalar(f"train/current_{k}", v, b)
        for k, v in tot.norm().items():
            tb_writer.add_scalar(f"train/tot_{k}", v, b)
        tb_writer.add_scalar("train/lr", lr, b)
        tb_writer.add_scalar("train/grad_scale", gs, b)
        tb_writer.add_scalar("train/gmot_scale", gmot_scale(params, b), b)


def validate_and_log(
    params: Any,
    model: nn.Module,
    valid_dl: Any,
    device: torch.device,
    st: TrainState,
    rank: int,
    tb_writer: Any,
) -> None:
    """Validate (all ranks), log the result on rank 0 and keep ``st.best_valid_loss``."""
    b = st.batch_idx_train
    v = validate(params, model, valid_dl, device)
    if rank == 0:
        logging.info("epoch %d, batch %d: validation %s", st.cur_epoch, b, v)
        if tb_writer is not None:
            for k, val in v.norm().items():
                tb_writer.add_scalar(f"valid/{k}", val, b)
    loss_v = v.norm().get("loss", math.inf)
    if loss_v < st.best_valid_loss:
        st.best_valid_loss = loss_v


def train_one_epoch(
    params: Any,
    model: nn.Module,
    model_avg: nn.Module | None,
    optimizer: Any,
    scheduler: Any,
    train_dl: Any,
    valid_dl: Any,
    device: torch.device,
    scaler: Any = None,
    tb_writer: Any = None,
    rank: int = 0,
    world_size: int = 1,
    guard: NonFiniteGuard | None = None,
    save_fn: Any = None,
    state: TrainState | None = None,
) -> MetricsTracker:
    """Train over ``train_dl`` once (or its remainder after a resume).

    ``state`` is advanced: ``batch_idx_train`` (global batch counter), ``batch_idx_epoch``
    (batches done in this epoch), ``best_valid_loss`` (default: a fresh :class:`TrainState`).
    ``params`` (the parsed flags) is only read. ``save_fn(path)`` writes a checkpoint (called on
    every rank; only rank 0 writes) every ``save_every_n`` batches as ``checkpoint-B.pt``.

    Per batch, in this order: :func:`train_step`, the running metrics, the grad-scale watchdog,
    the averaged model, :func:`log_progress`, the transport-plan plot, :func:`validate_and_log`,
    the checkpoint.
    """
    from gmot.models.zipformer import set_batch_count

    model.train()
    st = state if state is not None else TrainState()
    guard = guard or NonFiniteGuard(params.max_nonfinite_batches)
    tot = MetricsTracker()
    t0 = time.time()
    for batch in train_dl:
        st.batch_idx_train += 1
        st.batch_idx_epoch += 1
        b = st.batch_idx_train
        set_batch_count(model, st.ref_batch_count_scale * b)
        ok, m, info = train_step(
            params,
            model,
            optimizer,
            scheduler,
            batch,
            b,
            device,
            scaler=scaler,
            guard=guard,
            rank=rank,
            world_size=world_size,
        )
        if ok:
            tot.add(m, decay=1.0 - 1.0 / params.reset_interval)
        if scaler is not None and b % 100 == 0:
            grad_scale_watchdog(scaler, b)
        if model_avg is not None and rank == 0 and b % params.average_period == 0:
            from gmot.training.model_avg import update_averaged_model

            update_averaged_model(model_avg, model, b, params.average_period)
        if b % params.log_interval == 0 and rank == 0:
            log_progress(params, st, m, tot, scheduler, scaler, tb_writer, time.time() - t0)
        if (
            tb_writer is not None
            and rank == 0
            and "gmot_plan" in info
            and params.plot_plan_interval > 0
            and b % params.plot_plan_interval == 0
        ):
            _log_plan(params, tb_writer, info, batch, b)
        if valid_dl is not None and params.valid_interval > 0 and b % params.valid_interval == 0:
            validate_and_log(params, model, valid_dl, device, st, rank, tb_writer)
        # last: the checkpoint holds the state after everything done at batch b (validation
        # draws from the global RNG), so a resume from it continues exactly
        if save_fn is not None and params.save_every_n > 0 and b % params.save_every_n == 0:
            save_fn(Path(params.exp_dir) / f"checkpoint-{b}.pt")
        if params.max_batches > 0 and b >= params.max_batches:
            break
    return tot
