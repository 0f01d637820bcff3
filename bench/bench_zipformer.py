"""Benchmark: Zipformer encoder forward + backward time and peak memory.

Ours: ``gmot.models.zipformer.build_encoder(--model)`` on random fbank. Reference (same run, same
batch): torchaudio's Conformer (``--ref-layers`` layers of ``--ref-dim`` channels, 8 heads,
ffn 4x, kernel 31) run on the same features after a x4 frame stacking + linear front end
(25 Hz, like the Zipformer output), i.e. the classic encoder the Zipformer paper compares with.

Time: median over ``--repeat`` timed runs after ``--warmup`` runs. Memory: on CUDA
``torch.cuda.max_memory_allocated`` minus the memory held before the runs (parameters and
gradients excluded); on CPU the size of the activations saved for backward (a deterministic
proxy, since RSS is unreliable on a shared host).

Usage::

    python bench/bench_zipformer.py --device cpu          # small batch (2 x 4 s), fp32
    python bench/bench_zipformer.py --device cuda         # 600 s of audio (60 x 10 s), bf16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.models.zipformer import build_encoder, set_batch_count


def _saved_activation_mb(fn: Callable[[], None]) -> float:
    """MB of distinct tensors autograd saves for backward during one call of ``fn``."""
    seen: dict[tuple, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = (t.untyped_storage().data_ptr(), t.device)
        seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values()) / 2**20


def measure(fn: Callable[[], None], device: torch.device, warmup: int, repeat: int):
    """Return (median seconds, peak MB).

    CUDA: ``max_memory_allocated`` above the memory held before the timed runs. CPU: MB of the
    activations saved for backward (a deterministic proxy; RSS is unreliable on a shared host).
    """
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    if device.type == "cuda":
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = _saved_activation_mb(fn)
    return statistics.median(times), peak


class ConformerRef(torch.nn.Module):
    """x4 frame stacking + linear + torchaudio Conformer (reference encoder)."""

    def __init__(self, num_features: int, dim: int, layers: int) -> None:
        super().__init__()
        from torchaudio.models import Conformer

        self.proj = torch.nn.Linear(4 * num_features, dim)
        self.conformer = Conformer(
            input_dim=dim,
            num_heads=8,
            ffn_dim=4 * dim,
            num_layers=layers,
            depthwise_conv_kernel_size=31,
        )

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor):
        b, t, f = x.shape
        t4 = t // 4
        h = self.proj(x[:, : 4 * t4].reshape(b, t4, 4 * f))
        return self.conformer(h, torch.div(x_lens, 4, rounding_mode="floor").clamp_min(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--model", default="medium")
    p.add_argument("--batch-seconds", type=float, default=None, help="total audio per batch")
    p.add_argument("--utt-seconds", type=float, default=None, help="length of each utterance")
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--ref-dim", type=int, default=512)
    p.add_argument("--ref-layers", type=int, default=12)
    p.add_argument("--no-reference", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    gpu = device.type == "cuda"
    batch_s = args.batch_seconds or (600.0 if gpu else 8.0)
    utt_s = args.utt_seconds or (10.0 if gpu else 4.0)
    dtype = getattr(torch, args.dtype or ("bfloat16" if gpu else "float32"))
    warmup = args.warmup if args.warmup is not None else (3 if gpu else 1)
    repeat = args.repeat if args.repeat is not None else (10 if gpu else 2)
    if args.threads:
        torch.set_num_threads(args.threads)

    n_utt = max(1, round(batch_s / utt_s))
    t = int(utt_s * 100)
    torch.manual_seed(0)
    x = torch.randn(n_utt, t, 80, device=device)
    x_lens = torch.full((n_utt,), t, device=device, dtype=torch.int64)
    x_lens[1::2] = int(t * 0.8)  # some padding, as in real batches

    def make_step(model: torch.nn.Module) -> Callable[[], None]:
        def step() -> None:
            model.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                out = model(x, x_lens)[0]
            out.float().pow(2).mean().backward()

        return step

    enc = build_encoder(args.model).to(device).train()
    set_batch_count(enc, 1e5)  # steady-state schedules (little layer skipping)
    n_params = sum(q.numel() for q in enc.parameters())
    ours, ours_mem = measure(make_step(enc), device, warmup, repeat)
    mem_label = "peak mem" if gpu else "saved activations"
    name = torch.cuda.get_device_name() if gpu else f"cpu ({torch.get_num_threads()} threads)"
    print(f"device: {name}; dtype {dtype}; batch {n_utt} x {utt_s:g} s = {n_utt * utt_s:g} s")
    print(
        f"zipformer-{args.model} ({n_params / 1e6:.2f}M params) fwd+bwd: "
        f"{ours * 1e3:.1f} ms, {mem_label} {ours_mem:.0f} MB"
    )
    del enc
    if args.no_reference:
        return
    ref = ConformerRef(80, args.ref_dim, args.ref_layers).to(device).train()
    n_ref = sum(q.numel() for q in ref.parameters())
    ref_t, ref_mem = measure(make_step(ref), device, warmup, repeat)
    print(
        f"reference torchaudio Conformer {args.ref_layers}x{args.ref_dim} "
        f"({n_ref / 1e6:.2f}M params) fwd+bwd: {ref_t * 1e3:.1f} ms, {mem_label} {ref_mem:.0f} MB"
    )
    print(f"ratio ours/reference: time {ours / ref_t:.2f}, memory {ours_mem / max(ref_mem, 1):.2f}")


if __name__ == "__main__":
    main()
