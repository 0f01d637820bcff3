"""``pretrained.py``: transcribe wav files with a checkpoint and a token table (no manifests).

Usage::

    ./zipformer_gmot/pretrained.py --checkpoint zipformer_gmot/exp/pretrained.pt \\
        --tokens data/lang_char/tokens.txt --decoding-method greedy_search a.wav b.flac

Audio of any sampling rate readable by lhotse/soundfile is resampled to 16 kHz, averaged to
mono, and turned into 80-dim fbank on the fly. Prints ``<file>: <text>`` per input.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from gmot.data.tokens import TokenTable
from gmot.decoding.decode_main import METHODS, decode_batch
from gmot.decoding.features import compute_fbank, read_wave
from gmot.decoding.model_loading import load_model


def get_parser(**defaults) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Transcribe audio files with a gmot checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        required="checkpoint" not in defaults,
        help="Checkpoint with 'model' and 'model_config' (pretrained.pt from export.py, or an "
        "epoch-N.pt).",
    )
    parser.add_argument(
        "--tokens",
        type=Path,
        default=Path("data/lang_char/tokens.txt"),
        help="Token table tokens.txt ('<symbol> <id>' lines).",
    )
    parser.add_argument(
        "--decoding-method",
        default="greedy_search",
        choices=METHODS,
        help="Search method (see decode.py --help).",
    )
    parser.add_argument("--beam-size", type=int, default=4, help="Beam / n-best size.")
    parser.add_argument(
        "--max-sym-per-frame", type=int, default=1, help="greedy_search: most symbols per frame."
    )
    parser.add_argument("--beam", type=float, default=20.0, help="fast_beam_search beam.")
    parser.add_argument("--max-contexts", type=int, default=8, help="fast_beam_search.")
    parser.add_argument("--max-states", type=int, default=64, help="fast_beam_search.")
    parser.add_argument(
        "--attention-scale",
        type=float,
        default=1.0,
        help="Attention-decoder weight for *_attention_rescoring.",
    )
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="Device."
    )
    parser.add_argument("sound_files", type=Path, nargs="+", help="Audio files to transcribe.")
    parser.set_defaults(**defaults)
    return parser


def transcribe(model, token_table, files: list[Path], params: argparse.Namespace) -> list[str]:
    """Texts for ``files`` (decoded together as one batch)."""
    waves = [read_wave(f) for f in files]
    feats, lens = compute_fbank(waves)
    device = next(model.parameters()).device
    hyps = decode_batch(model, feats.to(device), lens.to(device), params)
    return [token_table.decode(h) for h in hyps]


def main(argv: list[str] | None = None, **defaults) -> list[str]:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    params = get_parser(**defaults).parse_args(argv)
    token_table = TokenTable.load(params.tokens)
    model, _, _ = load_model(params, torch.device(params.device))
    texts = transcribe(model, token_table, params.sound_files, params)
    for f, text in zip(params.sound_files, texts):
        print(f"{f}: {text}")
    return texts
