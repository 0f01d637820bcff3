#!/usr/bin/env python3
"""Time the Zipformer front end (Conv2dSubsampling) forward + backward on CPU, and its ConvNeXt
depthwise 7x7 convolution in the default (contiguous) and channels-last memory formats.

The reference is measured in the same run: PyTorch's depthwise ``Conv2d`` on a contiguous
tensor. Prints milliseconds per forward + backward and the ratio, and the largest difference
between the two outputs (they must agree to float rounding). Then the front end and the whole
encoder with ``embed_activation`` ``"relu"`` against the published ``"swoosh"`` (the reference),
timed interleaved in the same run so that load on the machine affects both alike.

    python bench/bench_conv_embed.py [--config tiny] [--batch 21] [--frames 250] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.models.zipformer import build_encoder


def per_call_ms(fn, x: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:
    """Mean milliseconds of ``fn(x).sum().backward()`` over ``repeats`` (after one warm-up)."""
    times = []
    for _ in range(repeats + 1):
        inp = x.detach().requires_grad_(True)
        t = time.perf_counter()
        y = fn(inp)
        y.sum().backward()
        times.append(time.perf_counter() - t)
    return 1000 * sum(times[1:]) / repeats, y.detach()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="tiny", help="Zipformer configuration name")
    p.add_argument("--batch", type=int, default=21, help="utterances per batch")
    p.add_argument("--frames", type=int, default=250, help="fbank frames per utterance (100 Hz)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    embed = build_encoder(a.config).train().encoder_embed
    x = torch.randn(a.batch, a.frames, 80)
    lens = torch.full((a.batch,), a.frames)
    with torch.no_grad():
        h = embed.conv(x.unsqueeze(1))  # (B, C, T', F') input of the ConvNeXt block
    dw = embed.convnext.depthwise
    ref_ms, ref = per_call_ms(dw, h.contiguous(), a.repeats)
    cl_ms, cl = per_call_ms(
        lambda z: dw(z.contiguous(memory_format=torch.channels_last)), h, a.repeats
    )
    full_ms, _ = per_call_ms(lambda z: embed(z, lens)[0], x, a.repeats)
    print(f"input (B, C, T, F) = {tuple(h.shape)}, {a.threads} thread(s)")
    print(f"depthwise 7x7, contiguous (reference): {ref_ms:8.1f} ms")
    print(f"depthwise 7x7, channels-last:          {cl_ms:8.1f} ms  ratio {ref_ms / cl_ms:.2f}x")
    print(f"max |difference|: {float((ref - cl).abs().max()):.2e}")
    print(f"whole front end as built (fwd + bwd):  {full_ms:8.1f} ms")

    # front end and whole encoder, swoosh (reference) against relu, interleaved
    encoders = {}
    for act in ("swoosh", "relu"):
        torch.manual_seed(0)
        encoders[act] = build_encoder({"base": a.config, "embed_activation": act}).train()
    sums = {(act, part): 0.0 for act in encoders for part in ("embed", "encoder")}
    for r in range(a.repeats + 1):
        for act, enc in encoders.items():
            ms_e, _ = per_call_ms(lambda z, e=enc: e.encoder_embed(z, lens)[0], x, 1)
            ms_w, _ = per_call_ms(lambda z, e=enc: e(z, lens)[0], x, 1)
            if r:  # the first round warms up both
                sums[(act, "embed")] += ms_e / a.repeats
                sums[(act, "encoder")] += ms_w / a.repeats
    for part in ("embed", "encoder"):
        ref_ms, relu_ms = sums[("swoosh", part)], sums[("relu", part)]
        print(
            f"{part:7s} swoosh (reference) {ref_ms:8.1f} ms, relu {relu_ms:8.1f} ms, "
            f"ratio {ref_ms / relu_ms:.2f}x"
        )


if __name__ == "__main__":
    main()
