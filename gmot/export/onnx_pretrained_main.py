"""``onnx_pretrained.py``: transcribe audio files with the ONNX graphs written by ``export.py``
(onnxruntime on the CPU, transducer greedy search; no PyTorch model or manifests needed).

Usage (from a recipe folder)::

    ./zipformer_gmot/onnx_pretrained.py --onnx-dir zipformer_gmot/exp a.wav b.flac
    ./zipformer_gmot/onnx_pretrained.py --encoder enc.onnx --decoder dec.onnx \\
        --joiner join.onnx --tokens data/lang_char/tokens.txt a.wav

Features are computed as in ``pretrained.py`` (16 kHz mono, 80-dim fbank; 83 with the pitch
features when the exported encoder reads 83). Prints
``<file>: <text>`` per input; a file too short for the encoder (under 9 fbank frames, 0.09 s) is
printed as ``<file>: [skipped: ...]`` and counted, and the others are decoded as usual.

A streaming export (``export.py --streaming 1``; the encoder's metadata says so) is decoded
chunk by chunk as ``pretrained.py --streaming 1`` does: ``<file> [partial <s> s]: <text>``
lines as the hypothesis grows, then ``<file>: <text>``
(:class:`gmot.export.onnx_streaming.OnnxStreamingTransducer` runs the torch streaming search on
the ONNX graphs). ``--decoding-method modified_beam_search`` (``--beam-size``) works for both
kinds of export.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from gmot.data.tokens import TokenTable
from gmot.decoding.pretrained_main import (
    print_transcripts,
    transcribe_files,
    transcribe_streaming,
)
from gmot.decoding.streaming import STREAMING_METHODS
from gmot.decoding.transducer_search import modified_beam_search


def get_parser(**defaults) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Transcribe audio files with exported ONNX encoder/decoder/joiner graphs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--onnx-dir",
        type=Path,
        default=None,
        help="Directory written by export.py --onnx 1: encoder-<suffix>.onnx, "
        "decoder-<suffix>.onnx, joiner-<suffix>.onnx and tokens.txt.",
    )
    parser.add_argument(
        "--suffix",
        default=None,
        help="With --onnx-dir holding several exports: which one (e.g. epoch-30-avg-9).",
    )
    for part in ("encoder", "decoder", "joiner"):
        parser.add_argument(
            f"--{part}", type=Path, default=None, help=f"{part} ONNX file (overrides --onnx-dir)."
        )
    parser.add_argument(
        "--tokens",
        type=Path,
        default=None,
        help="tokens.txt ('<symbol> <id>' lines); default: <onnx-dir>/tokens.txt.",
    )
    parser.add_argument(
        "--decoding-method",
        default="greedy_search",
        choices=STREAMING_METHODS,
        help="Transducer search (greedy: at most --max-sym-per-frame symbols per frame).",
    )
    parser.add_argument("--beam-size", type=int, default=4, help="modified_beam_search's beam.")
    parser.add_argument(
        "--max-sym-per-frame", type=int, default=1, help="Greedy search: most symbols per frame."
    )
    parser.add_argument(
        "--num-threads", type=int, default=1, help="onnxruntime intra-op threads per graph."
    )
    parser.add_argument("sound_files", type=Path, nargs="+", help="Audio files to transcribe.")
    parser.set_defaults(**defaults)
    return parser


def find_onnx_files(onnx_dir: Path, suffix: str | None = None) -> tuple[dict[str, Path], str]:
    """The encoder/decoder/joiner files of one export in ``onnx_dir``.

    Returns:
      ({"encoder": path, "decoder": path, "joiner": path}, suffix).
    Raises:
      FileNotFoundError naming the directory and what it holds.
    """
    onnx_dir = Path(onnx_dir)
    suffixes = sorted(
        p.name[len("encoder-") : -len(".onnx")] for p in onnx_dir.glob("encoder-*.onnx")
    )
    if suffix is None:
        if len(suffixes) != 1:
            found = ", ".join(suffixes) or "none"
            raise FileNotFoundError(
                f"--onnx-dir {onnx_dir}: expected one encoder-<suffix>.onnx, found {found}"
                + ("; choose one with --suffix" if suffixes else " (run export.py --onnx 1)")
            )
        suffix = suffixes[0]
    files = {k: onnx_dir / f"{k}-{suffix}.onnx" for k in ("encoder", "decoder", "joiner")}
    for k, p in files.items():
        if not p.is_file():
            raise FileNotFoundError(
                f"{k} ONNX file {p} not found (exports in {onnx_dir}: "
                f"{', '.join(suffixes) or 'none'})"
            )
    return files, suffix


def main(argv: list[str] | None = None, **defaults) -> list[str | None]:
    """Parse ``argv``, transcribe the files, print them; returns the texts (None: skipped)."""
    from gmot.export.onnx_decode import OnnxTransducer
    from gmot.export.onnx_streaming import (
        OnnxSearchModel,
        OnnxStreamingTransducer,
        is_streaming_export,
    )

    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    params = get_parser(**defaults).parse_args(argv)
    files: dict[str, Path] = {}
    if params.onnx_dir is not None:
        files, _ = find_onnx_files(params.onnx_dir, params.suffix)
    for k in ("encoder", "decoder", "joiner"):
        if getattr(params, k) is not None:
            files[k] = getattr(params, k)
    missing = [k for k in ("encoder", "decoder", "joiner") if k not in files]
    if missing:
        raise SystemExit(f"give --onnx-dir or --{' --'.join(missing)}")
    tokens = params.tokens
    if tokens is None:
        if params.onnx_dir is None:
            raise SystemExit("give --tokens (or --onnx-dir holding tokens.txt)")
        tokens = Path(params.onnx_dir) / "tokens.txt"
    token_table = TokenTable.load(tokens)
    paths = (files["encoder"], files["decoder"], files["joiner"])
    logging.info("ONNX graphs: %s", ", ".join(map(str, paths)))
    if is_streaming_export(files["encoder"]):
        streaming = OnnxStreamingTransducer(*paths, num_threads=params.num_threads)
        logging.info(
            "streaming export: chunk %d, left context %d frames at 50 Hz",
            streaming.encoder.chunk_size,
            streaming.encoder.left_context_frames,
        )
        return transcribe_streaming(streaming, token_table, params.sound_files, params)
    search_model = OnnxSearchModel(OnnxTransducer(*paths, num_threads=params.num_threads))
    model = search_model.onnx

    def decode(feats: torch.Tensor, lens: torch.Tensor) -> list[list[int]]:
        if params.decoding_method == "modified_beam_search":
            enc, enc_lens = model.run_encoder(feats.numpy(), lens.numpy())
            enc_t, lens_t = torch.from_numpy(enc), torch.from_numpy(enc_lens)
            return modified_beam_search(search_model, enc_t, lens_t, params.beam_size)
        return model.decode(feats.numpy(), lens.numpy(), params.max_sym_per_frame)

    texts, _ = transcribe_files(params.sound_files, decode, token_table, model.num_features)
    print_transcripts(params.sound_files, texts)
    return texts
