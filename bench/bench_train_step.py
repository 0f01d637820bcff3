"""Benchmark: one training step of the ASR model with GM-OT on vs off (same run, same batch).

A step is the full training step of ``gmot.training``: ``compute_loss`` (encoder, pruned RNN-T,
and with GM-OT on the adapter + GMOTLoss), backward, ScaledAdam step, Eden step. The reference is
the same step with ``--gmot-loss-scale 0`` (GM-OT off); the printed ratio on/off is the overhead
of the knowledge transfer (goal <= 1.05). Throughput is seconds of audio per second of training.

Usage::

    python bench/bench_train_step.py --device cuda            # medium, bf16, B=32 x 10 s
    python bench/bench_train_step.py --device cpu --batch-size 2 --seconds 4 --repeat 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batch(B: int, seconds: float, plm_dim: int, vocab: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    T = int(seconds * 100)
    n_tok = max(2, int(seconds * 3))  # ~3 Mandarin characters per second
    return {
        "features": torch.randn(B, T, 80, generator=g).to(device),
        "feature_lens": torch.full((B,), T, dtype=torch.int64, device=device),
        "token_ids": [torch.randint(3, vocab, (n_tok,), generator=g).tolist() for _ in range(B)],
        "plm_feats": torch.randn(B, n_tok, plm_dim, generator=g).to(device),
        "plm_lens": torch.full((B,), n_tok, dtype=torch.int64, device=device),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="medium", help="Zipformer config name.")
    ap.add_argument("--batch-size", type=int, default=None, help="32 on GPU, 2 on CPU.")
    ap.add_argument("--seconds", type=float, default=None, help="Utterance length (10 GPU, 4 CPU).")
    ap.add_argument("--vocab", type=int, default=4336)
    ap.add_argument("--plm-dim", type=int, default=768)
    ap.add_argument("--gmot-loss-scale", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=None, help="Timed steps per setting.")
    ap.add_argument("--dtype", default=None, choices=["bf16", "fp16", "fp32"])
    args = ap.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    B = args.batch_size or (32 if gpu else 2)
    secs = args.seconds or (10.0 if gpu else 4.0)
    repeat = args.repeat or (10 if gpu else 2)
    dtype = args.dtype or ("bf16" if gpu else "fp32")

    from gmot.models.asr_model import build_model
    from gmot.optim import Eden, ScaledAdam
    from gmot.training.loop import compute_loss

    torch.manual_seed(0)
    model = build_model(
        {"vocab_size": args.vocab, "encoder": args.model, "gmot_plm_dim": args.plm_dim}
    ).to(device)
    model.train()
    opt = ScaledAdam(list(model.named_parameters()), lr=0.045)
    sched = Eden(opt, 7500, 3.5)
    batch = make_batch(B, secs, args.plm_dim, args.vocab, device)
    params = argparse.Namespace(
        batch_idx_train=0, warm_step=2000, prune_range=5, am_scale=0.0, lm_scale=0.25,
        ctc_loss_scale=0.2, attention_decoder_loss_scale=0.8, gmot_loss_scale=0.0,
        gmot_warmup_batches=0, use_fp16=dtype == "fp16", use_bf16=dtype == "bf16",
    )  # fmt: skip

    from gmot.models.zipformer import set_batch_count

    # steady-state schedules (layer-skip, dropout rates at their final values), and the same
    # random stream for the on and off step of each pair (same skipped layers)
    set_batch_count(model, 1e6)

    def step(gmot: float, seed: int = 0) -> float:
        torch.manual_seed(seed)
        params.gmot_loss_scale = gmot
        params.batch_idx_train += 1
        _sync(device)
        t = time.perf_counter()
        loss, _, _ = compute_loss(params, model, batch, device, is_training=True)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step_batch(params.batch_idx_train)
        _sync(device)
        return time.perf_counter() - t

    step(0.0)  # warm-up both paths
    step(args.gmot_loss_scale)
    off, on = [], []
    for i in range(repeat):  # interleaved, so drift affects both equally
        off.append(step(0.0, seed=i))
        on.append(step(args.gmot_loss_scale, seed=i))
    t_off, t_on = statistics.median(off), statistics.median(on)
    audio = B * secs
    n_params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name(device) if gpu else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; model {args.model} ({n_params / 1e6:.2f}M params), {dtype}")
    print(f"batch: {B} x {secs:.1f} s, vocab {args.vocab}, PLM dim {args.plm_dim}; {repeat} steps")
    print(f"GM-OT off (reference): {t_off * 1e3:9.1f} ms/step  {audio / t_off:8.1f} s audio/s")
    print(f"GM-OT on  (ours)     : {t_on * 1e3:9.1f} ms/step  {audio / t_on:8.1f} s audio/s")
    print(f"ratio on/off: {t_on / t_off:.3f} (goal <= 1.05)")


if __name__ == "__main__":
    main()
