"""``pretrained.py``: transcribe wav files with a checkpoint and a token table (no manifests).

Usage::

    ./zipformer_gmot/pretrained.py --checkpoint zipformer_gmot/exp/pretrained.pt \\
        --tokens data/lang_char/tokens.txt --decoding-method greedy_search a.wav b.flac

Audio of any sampling rate readable by lhotse/soundfile is resampled to 16 kHz, averaged to
mono, and turned into 80-dim fbank on the fly. Prints ``<file>: <text>`` per input; a file too
short for the encoder (under 9 fbank frames, 0.09 s) is printed as ``<file>: [skipped: ...]``
and counted at the end, and the others are decoded as usual.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from gmot.data.tokens import TokenTable
from gmot.decoding.features import compute_fbank, describe_short, read_wave, too_short
from gmot.decoding.methods import add_decoding_method_arguments, decode_batch, get_method
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
    add_decoding_method_arguments(parser.add_argument_group("decoding"))
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="Device."
    )
    parser.add_argument("sound_files", type=Path, nargs="+", help="Audio files to transcribe.")
    parser.set_defaults(**defaults)
    return parser


def transcribe_files(
    files: Sequence[Path],
    decode: Callable[[torch.Tensor, torch.Tensor], list[list[int]]],
    token_table: TokenTable,
) -> tuple[list[str | None], list[str]]:
    """Decode audio files together; files too short for the encoder are left out.

    Args:
      files: audio files.
      decode: features (B, T, 80) float32 and lens (B,) int64 -> token ids per utterance.
      token_table: maps token ids to text.
    Returns:
      (text per file, None for a skipped file; one description per skipped file).
    """
    waves = [read_wave(f) for f in files]
    feats, lens = compute_fbank(waves)
    short = too_short(lens)
    skipped = [describe_short(str(files[i]), int(lens[i])) for i in short]
    for line in skipped:
        logging.warning("skipping %s", line)
    keep = [i for i in range(len(files)) if i not in set(short)]
    texts: list[str | None] = [None] * len(files)
    if keep:
        kl = lens[keep]
        hyps = decode(feats[keep, : int(kl.max())], kl)
        for i, h in zip(keep, hyps):
            texts[i] = token_table.decode(h)
    return texts, skipped


def print_transcripts(files: Sequence[Path], texts: Sequence[str | None]) -> None:
    """``<file>: <text>`` per file (``<file>: [skipped: too short]`` for None) and a count."""
    for f, text in zip(files, texts):
        print(f"{f}: {text}" if text is not None else f"{f}: [skipped: too short to decode]")
    n_skipped = sum(t is None for t in texts)
    if n_skipped:
        logging.warning(
            "decoded %d of %d files; %d skipped", len(texts) - n_skipped, len(texts), n_skipped
        )


def transcribe(
    model, token_table, files: list[Path], params: argparse.Namespace
) -> list[str | None]:
    """Texts for ``files`` (decoded together as one batch; None for a file too short)."""
    device = next(model.parameters()).device

    def decode(feats: torch.Tensor, lens: torch.Tensor) -> list[list[int]]:
        return decode_batch(model, feats.to(device), lens.to(device), params)

    return transcribe_files(files, decode, token_table)[0]


def main(argv: list[str] | None = None, **defaults) -> list[str | None]:
    """Parse ``argv``, transcribe the files, print them; returns the texts (None: skipped)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    params = get_parser(**defaults).parse_args(argv)
    get_method(params.decoding_method).check_available()  # fail before loading anything
    token_table = TokenTable.load(params.tokens)
    model, _, _ = load_model(params, torch.device(params.device))
    texts = transcribe(model, token_table, params.sound_files, params)
    print_transcripts(params.sound_files, texts)
    return texts
