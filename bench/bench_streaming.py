"""Benchmark: real-time factor and per-chunk latency of streaming transducer decoding.

A causal model (``--checkpoint``: a causal training checkpoint, e.g.
``egs/hsk/ASR/zipformer_gmot/exp_stream_s42_on/epoch-4.pt``; without it a random tiny causal
model of the hsk demo's sizes) decodes the same utterances (``--cuts``: a manifest with
precomputed fbank; without it random features of 2-4 s) in four ways, all with greedy search and
no feature extraction in the timings:

* ``offline``: the **reference**. Each utterance whole: one encoder call on all its frames
  (a causal model in eval mode runs simulated streaming, the same arithmetic as a full-context
  encoder of its size) and ``greedy_search_batch``; batch 1.
* ``torch 1 stream``: :class:`gmot.decoding.streaming.DecodeStream` fed chunk by chunk
  (:func:`~gmot.decoding.streaming.decode_one_chunk`), one utterance at a time. Each chunk's
  wall time (encoder + search) is its compute latency.
* ``torch N streams``: the utterances as ``--num-streams`` concurrent streams
  (:func:`~gmot.decoding.streaming.decode_streams`, one encoder call per chunk for all).
* ``onnxruntime 1 stream`` (``--onnx 1``): the streaming ONNX export of the same model
  (:func:`gmot.export.export_streaming_transducer_onnx`) through
  :class:`gmot.export.OnnxStreamingTransducer`, one utterance at a time.

Printed per chunk size: RTF (compute seconds / audio seconds) of each way and its ratio to the
offline reference of the same run, the per-chunk latency (median, 95th percentile, max, in ms)
against the chunk's audio duration, and how many streaming hypotheses equal the offline ones.

Usage (the second from the recipe folder, whose manifests hold relative feature paths)::

    .venv/bin/python bench/bench_streaming.py --threads 1 --onnx 1
    cd egs/hsk/ASR && ../../../.venv/bin/python ../../../bench/bench_streaming.py --threads 1 \\
        --onnx 1 --num-utts 100 --checkpoint zipformer_gmot/exp_stream_s42_on/epoch-4.pt \\
        --cuts data/fbank/hsk_cuts_test.jsonl.gz --chunk-size 16,32 --left-context-frames 128
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

_root = Path(__file__).resolve().parents[1]  # the repository this script is in
if (_root / "gmot" / "__init__.py").is_file():  # its gmot wins over the venv and PYTHONPATH
    sys.path.insert(0, str(_root))

from gmot.decoding.streaming import (  # noqa: E402
    DecodeStream,
    apply_chunk_flags,
    decode_one_chunk,
    decode_streams,
)
from gmot.decoding.transducer_search import greedy_search_batch  # noqa: E402
from gmot.models.asr_model import build_model  # noqa: E402

FRAME_S = 0.01  # fbank frame shift (s)


def random_causal_model(vocab_size: int, seed: int = 0) -> torch.nn.Module:
    """A random causal tiny model with the hsk demo's decoder/joiner sizes (eval mode)."""
    torch.manual_seed(seed)
    cfg = {"vocab_size": vocab_size, "encoder": "tiny", "context_size": 2, "decoder_dim": 256,
           "joiner_dim": 256, "causal": True, "chunk_size": (16, 32),
           "left_context_frames": (128,)}  # fmt: skip
    return build_model(cfg).eval()


def load_utterances(cuts: str | None, num: int, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """``num`` (id, fbank (T, 80)) pairs: the first cuts of a manifest, or random 2-4 s."""
    if cuts is None:
        g = torch.Generator().manual_seed(seed)
        lens = torch.randint(200, 400, (num,), generator=g).tolist()
        return [(f"rand{i}", torch.randn(n, 80, generator=g)) for i, n in enumerate(lens)]
    from lhotse import load_manifest_lazy

    utts = []
    for cut in load_manifest_lazy(cuts):
        if len(utts) == num:
            break
        utts.append((cut.id, torch.from_numpy(cut.load_features()).float()))
    return utts


@torch.no_grad()
def offline(model, utts) -> tuple[float, dict[str, list[int]]]:
    """Reference: whole-utterance encoder + batched greedy search, batch 1."""
    hyps, total = {}, 0.0
    for key, feats in utts:
        t0 = time.perf_counter()
        enc, lens = model.forward_encoder(feats[None], torch.tensor([feats.shape[0]]))
        hyps[key] = greedy_search_batch(model, enc, lens)[0]
        total += time.perf_counter() - t0
    return total, hyps


@torch.no_grad()
def one_stream(model, utts) -> tuple[float, list[float], dict[str, list[int]]]:
    """Each utterance as one stream, chunk by chunk: total seconds, per-chunk seconds, hyps."""
    hyps, chunk_s, total = {}, [], 0.0
    for key, feats in utts:
        stream = DecodeStream(model, "greedy_search", stream_id=key)
        stream.accept_features(feats)
        stream.input_finished()
        while not stream.done:
            t0 = time.perf_counter()
            decode_one_chunk(model, [stream])
            dt = time.perf_counter() - t0
            chunk_s.append(dt)
            total += dt
        hyps[key] = stream.hyp
    return total, chunk_s, hyps


@torch.no_grad()
def many_streams(model, utts, num_streams: int) -> tuple[float, dict[str, list[int]]]:
    t0 = time.perf_counter()
    hyps = dict(decode_streams(model, utts, "greedy_search", num_decode_streams=num_streams))
    return time.perf_counter() - t0, hyps


def _ms(values: list[float], q: float) -> float:
    s = sorted(values)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default=None, help="causal training checkpoint (.pt)")
    p.add_argument("--cuts", default=None, help="cut manifest with precomputed fbank")
    p.add_argument("--num-utts", type=int, default=40, help="utterances decoded by each way")
    p.add_argument("--chunk-size", default="16,32", help="chunk sizes, 50 Hz frames (16 = 320 ms)")
    p.add_argument("--left-context-frames", type=int, default=128, help="50 Hz frames")
    p.add_argument("--num-streams", type=int, default=20, help="concurrent streams (batched way)")
    p.add_argument("--onnx", type=int, default=1, help="1: also time onnxruntime (needs onnx)")
    p.add_argument("--vocab-size", type=int, default=301, help="random model only")
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        from gmot.decoding.model_loading import load_checkpoint_model

        model, _, key = load_checkpoint_model(args.checkpoint)
        label = f"{args.checkpoint} ({key})"
        if not getattr(model.encoder.config, "causal", False):
            raise SystemExit(f"{args.checkpoint} holds a non-causal model: train with --causal 1")
    else:
        model, label = random_causal_model(args.vocab_size), "random tiny causal model"
    utts = load_utterances(args.cuts, args.num_utts)
    audio_s = sum(f.shape[0] for _, f in utts) * FRAME_S
    print(f"model: {label}; {len(utts)} utterances, {audio_s:.1f} s of audio "
          f"({args.cuts or 'random features'}); threads {args.threads}; "
          f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}")  # fmt: skip
    for chunk in [int(c) for c in args.chunk_size.split(",")]:
        apply_chunk_flags(model, chunk, args.left_context_frames, label, streaming=True)
        chunk_ms = model.encoder.chunk_shift * FRAME_S * 1000
        print(f"\nchunk {chunk} frames = {chunk_ms:.0f} ms of audio, left context "
              f"{args.left_context_frames} frames, look-ahead "
              f"{model.encoder.right_padding * FRAME_S * 1000:.0f} ms")  # fmt: skip
        offline(model, utts[:2])  # warm-up
        ref_s, ref_hyps = offline(model, utts)
        rows = [("offline (reference)", ref_s, None, ref_hyps)]
        one_stream(model, utts[:2])
        s, chunks, hyps = one_stream(model, utts)
        rows.append(("torch 1 stream", s, chunks, hyps))
        s, hyps = many_streams(model, utts, args.num_streams)
        rows.append((f"torch {args.num_streams} streams", s, None, hyps))
        if args.onnx:
            from gmot.export import OnnxStreamingTransducer, export_streaming_transducer_onnx

            with tempfile.TemporaryDirectory() as tmp:
                paths = export_streaming_transducer_onnx(model, tmp, f"c{chunk}")
                onnx_model = OnnxStreamingTransducer(
                    paths["encoder"], paths["decoder"], paths["joiner"], num_threads=args.threads
                )
                one_stream(onnx_model, utts[:2])
                s, chunks, hyps = one_stream(onnx_model, utts)
                rows.append(("onnxruntime 1 stream", s, chunks, hyps))
        print(f"{'way':<22} {'RTF':>7} {'ratio':>6} {'chunk ms p50':>12} {'p95':>6} {'max':>6}"
              f"  {'hyps = offline':>14}")  # fmt: skip
        for name, secs, chunk_s, hyps in rows:
            same = sum(hyps[k] == ref_hyps[k] for k in ref_hyps)
            lat = (
                f"{1000 * statistics.median(chunk_s):12.1f} {_ms(chunk_s, 0.95):6.1f} "
                f"{1000 * max(chunk_s):6.1f}"
                if chunk_s
                else f"{'':12} {'':6} {'':6}"
            )
            print(f"{name:<22} {secs / audio_s:7.4f} {secs / ref_s:6.2f} {lat}  "
                  f"{same:>6}/{len(ref_hyps)}")  # fmt: skip


if __name__ == "__main__":
    main()
