"""Benchmark: real-time factor of transducer greedy and modified beam search (beam 4).

Model: ``gmot.models.zipformer.build_encoder(--encoder)`` (default "medium") with
``gmot.transducer`` Decoder (context 2) / Joiner (dims 512), random weights (search cost does
not depend on training). When the encoder package is not importable a clearly labelled
stand-in encoder (4x frame stacking + 2x subsampling to the same output rate and a
TransformerEncoder) is used instead and the printout says so.

Timed per batch of random 80-dim features (``--batch-size`` utterances of ``--seconds`` s):
the encoder once, then each search on its output. RTF = (encoder + search time) / audio time.
Reference from the same run: per-utterance ``greedy_search`` against the batched
``greedy_search_batch``.

Usage::

    python bench/bench_decode.py --device cpu --batch-size 4 --seconds 8 --repeat 2
    python bench/bench_decode.py --device cuda --batch-size 32 --seconds 10 --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.decoding import greedy_search, greedy_search_batch, modified_beam_search


class StandInEncoder(nn.Module):
    """Output rate of the Zipformer (T' = ((T - 7) // 2 + 1) // 2), 512-dim transformer."""

    def __init__(self, dim: int = 512, layers: int = 6):
        super().__init__()
        self.output_dim = dim
        self.inp = nn.Linear(80 * 4, dim)
        layer = nn.TransformerEncoderLayer(dim, 8, 4 * dim, batch_first=True, dropout=0.0)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor):
        out_lens = ((x_lens - 7) // 2 + 1) // 2
        T_out = int(out_lens.max())
        B = x.shape[0]
        frames = x[:, : T_out * 4].reshape(B, T_out, 4 * 80)
        mask = torch.arange(T_out, device=x.device)[None] >= out_lens[:, None]
        return self.body(self.inp(frames), src_key_padding_mask=mask), out_lens


def build(encoder_name: str, vocab_size: int) -> tuple[nn.Module, str]:
    try:
        from gmot.models.zipformer import build_encoder

        encoder, label = build_encoder(encoder_name), f"zipformer {encoder_name}"
    except ImportError:
        encoder, label = StandInEncoder(), "STAND-IN encoder (gmot.models.zipformer missing)"
    try:
        from gmot.transducer import Decoder, Joiner
    except ImportError:  # same interface, from the decoding tests
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "decoding"))
        from tiny_transducer import LocalDecoder as Decoder
        from tiny_transducer import LocalJoiner as Joiner

        label += ", local decoder/joiner"
    model = nn.Module()
    model.encoder = encoder
    model.decoder = Decoder(vocab_size, 512, 0, 2)
    model.joiner = Joiner(encoder.output_dim, 512, 512, vocab_size)
    return model.eval(), label


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, *args):
    _sync(device)
    t0 = time.perf_counter()
    out = fn(*args)
    _sync(device)
    return out, time.perf_counter() - t0


@torch.no_grad()
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--encoder", default="medium")
    p.add_argument("--vocab-size", type=int, default=4336, help="AISHELL char vocabulary size")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seconds", type=float, default=8.0, help="audio per utterance")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model, label = build(args.encoder, args.vocab_size)
    model.to(device)
    T = int(args.seconds * 100)
    B = args.batch_size
    # slightly different lengths, as in a real batch
    x_lens = torch.tensor([T - 30 * i for i in range(B)], device=device)
    audio_s = float(x_lens.sum()) / 100
    totals = {
        "encoder": 0.0,
        "greedy_search_batch": 0.0,
        "greedy_search (per utt)": 0.0,
        f"modified_beam_search (beam {args.beam})": 0.0,
    }
    for r in range(args.repeat + 1):  # first round = warm-up, not counted
        x = torch.randn(B, T, 80, device=device)
        (enc, enc_lens), t_enc = _timed(model.encoder, device, x, x_lens)
        _, t_g = _timed(greedy_search_batch, device, model, enc, enc_lens)
        _, t_ref = _timed(greedy_search, device, model, enc, enc_lens)
        _, t_mb = _timed(modified_beam_search, device, model, enc, enc_lens, args.beam)
        if r == 0:
            continue
        for k, v in zip(totals, (t_enc, t_g, t_ref, t_mb)):
            totals[k] += v
    audio_total = audio_s * args.repeat
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    n_params = sum(p.numel() for p in model.encoder.parameters()) / 1e6
    print(
        f"device: {device} ({name}), threads {torch.get_num_threads()}; model: {label} "
        f"(encoder {n_params:.1f} M parameters, random weights)"
    )
    print(
        f"vocab {args.vocab_size}; {args.repeat} x batch {B} x {args.seconds:.1f} s "
        f"= {audio_total:.1f} s audio; encoder frames out {int(enc.shape[1])}"
    )
    t_enc = totals.pop("encoder")
    print(f"{'encoder only':40s} time {t_enc:8.3f} s  RTF {t_enc / audio_total:.4f}")
    for k, v in totals.items():
        print(
            f"{'encoder + ' + k:40s} time {t_enc + v:8.3f} s  RTF {(t_enc + v) / audio_total:.4f}"
            f"   (search alone RTF {v / audio_total:.4f})"
        )
    g, ref = totals["greedy_search_batch"], totals["greedy_search (per utt)"]
    print(
        f"greedy search: batched {g:.3f} s vs per-utterance reference {ref:.3f} s "
        f"-> ratio ref/ours {ref / g:.2f}"
    )


if __name__ == "__main__":
    main()
