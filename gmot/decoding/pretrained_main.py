"""``pretrained.py``: transcribe wav files with a checkpoint and a token table (no manifests).

Usage::

    ./zipformer_gmot/pretrained.py --checkpoint zipformer_gmot/exp/pretrained.pt \\
        --tokens data/lang_char/tokens.txt --decoding-method greedy_search a.wav b.flac

Audio of any sampling rate readable by lhotse/soundfile is resampled to 16 kHz, averaged to
mono, and turned into 80-dim fbank on the fly. Prints ``<file>: <text>`` per input; a file too
short for the encoder (under 9 fbank frames, 0.09 s) is printed as ``<file>: [skipped: ...]``
and counted at the end, and the others are decoded as usual.

``--streaming 1`` (causal models; ``greedy_search`` or ``modified_beam_search``): each file is
fed to the encoder chunk by chunk as if it arrived in real time (:func:`stream_partials`), and
each time the best hypothesis changes a line ``<file> [partial <seconds received> s]: <text>``
is printed, then the final ``<file>: <text>``. ``--chunk-size`` / ``--left-context-frames``
choose the chunk (default: the model's first training values).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from gmot.cli import str2bool
from gmot.data.tokens import TokenTable
from gmot.decoding.features import (
    FRAME_SHIFT_S,
    compute_fbank,
    describe_short,
    model_num_features,
    read_wave,
    too_short,
)
from gmot.decoding.methods import add_decoding_method_arguments, decode_batch, get_method
from gmot.decoding.model_loading import load_model
from gmot.decoding.streaming import (
    STREAMING_METHODS,
    DecodeStream,
    add_chunk_arguments,
    apply_chunk_flags,
    decode_one_chunk,
)


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
    g = parser.add_argument_group("streaming (causal models)")
    g.add_argument(
        "--streaming",
        type=str2bool,
        default=False,
        help="Decode chunk by chunk as the audio would arrive and print the partial results "
        f"(--decoding-method {' or '.join(STREAMING_METHODS)}).",
    )
    add_chunk_arguments(g)
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
    num_features: int = 80,
) -> tuple[list[str | None], list[str]]:
    """Decode audio files together; files too short for the encoder are left out.

    Args:
      files: audio files.
      decode: features (B, T, F) float32 and lens (B,) int64 -> token ids per utterance.
      token_table: maps token ids to text.
      num_features: F, the model's input features (80 fbank; 83 with pitch).
    Returns:
      (text per file, None for a skipped file; one description per skipped file).
    """
    waves = [read_wave(f) for f in files]
    feats, lens = compute_fbank(waves, num_features=num_features)
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


def transcript_line(file: Path, text: str | None) -> str:
    """``<file>: <text>``, or ``<file>: [skipped: too short to decode]`` for None."""
    return f"{file}: {text}" if text is not None else f"{file}: [skipped: too short to decode]"


def print_transcripts(files: Sequence[Path], texts: Sequence[str | None]) -> None:
    """``<file>: <text>`` per file (``<file>: [skipped: too short]`` for None) and a count."""
    for f, text in zip(files, texts):
        print(transcript_line(f, text))
    _warn_skipped(texts)


def _warn_skipped(texts: Sequence[str | None]) -> None:
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

    return transcribe_files(files, decode, token_table, model_num_features(model))[0]


def stream_partials(
    model: Any,
    feats: torch.Tensor,
    method: str = "greedy_search",
    beam_size: int = 4,
    max_sym_per_frame: int = 1,
    blank_penalty: float = 0.0,
) -> Iterator[tuple[int, list[int]]]:
    """Decode one utterance as if it arrived in real time, ``chunk_shift`` fbank frames at a
    time: a chunk is decoded as soon as its look-ahead frames are in.

    Args:
      model: a causal ``AsrModel`` in eval mode, or an
        :class:`gmot.export.onnx_streaming.OnnxStreamingTransducer`.
      feats: (T, F) fbank frames, T >= 9.
      method, beam_size, max_sym_per_frame, blank_penalty: as in
        :func:`gmot.decoding.streaming.decode_one_chunk`.
    Yields:
      (fbank frames received so far, best token ids) after each decoded chunk; the last one is
      the final hypothesis (that of :func:`gmot.decoding.streaming.decode_streams`).
    """
    assert feats.dim() == 2, f"feats must be (T, F); got {tuple(feats.shape)}"
    stream = DecodeStream(model, method)
    shift, total = stream.chunk_shift, feats.shape[0]
    for start in range(0, total, shift):
        received = min(start + shift, total)
        stream.accept_features(feats[start:received])
        if received == total:
            stream.input_finished()
        while decode_one_chunk(model, [stream], beam_size, max_sym_per_frame, blank_penalty):
            yield received, stream.hyp


def transcribe_streaming(
    model: Any, token_table: TokenTable, files: Sequence[Path], params: argparse.Namespace
) -> list[str | None]:
    """Decode each file chunk by chunk (:func:`stream_partials`), printing
    ``<file> [partial <s> s]: <text>`` whenever the text changes, then ``<file>: <text>``.

    Args:
      model: as for :func:`stream_partials` (CPU or its own device).
      params: ``decoding_method``, ``beam_size``, ``max_sym_per_frame`` and optionally
        ``blank_penalty``.
    Returns:
      the final text per file (None: too short to decode, printed as skipped).
    """
    device = next(model.parameters()).device
    texts: list[str | None] = []
    for f in files:
        feats, lens = compute_fbank([read_wave(f)], num_features=model_num_features(model))
        if too_short(lens):
            logging.warning("skipping %s", describe_short(str(f), int(lens[0])))
            texts.append(None)
            print(transcript_line(f, None))
            continue
        text = ""
        partials = stream_partials(
            model,
            feats[0].to(device),
            params.decoding_method,
            params.beam_size,
            params.max_sym_per_frame,
            getattr(params, "blank_penalty", 0.0),
        )
        for frames, hyp in partials:
            new = token_table.decode(hyp)
            if new != text:
                text = new
                print(f"{f} [partial {frames * FRAME_SHIFT_S:.2f} s]: {text}", flush=True)
        texts.append(text)
        print(transcript_line(f, text), flush=True)
    _warn_skipped(texts)
    return texts


def check_streaming_method(method: str) -> None:
    """Raise ValueError unless ``method`` can decode chunk by chunk."""
    if method not in STREAMING_METHODS:
        raise ValueError(
            f"--streaming 1 decodes with {' or '.join(STREAMING_METHODS)}; got "
            f"--decoding-method {method}"
        )


def main(argv: list[str] | None = None, **defaults) -> list[str | None]:
    """Parse ``argv``, transcribe the files, print them; returns the texts (None: skipped)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    params = get_parser(**defaults).parse_args(argv)
    get_method(params.decoding_method).check_available()  # fail before loading anything
    if params.streaming:
        check_streaming_method(params.decoding_method)
    token_table = TokenTable.load(params.tokens)
    model, _, _ = load_model(params, torch.device(params.device))
    apply_chunk_flags(
        model,
        params.chunk_size,
        params.left_context_frames,
        str(params.checkpoint),
        params.streaming,
    )
    if params.streaming:
        return transcribe_streaming(model, token_table, params.sound_files, params)
    texts = transcribe(model, token_table, params.sound_files, params)
    print_transcripts(params.sound_files, texts)
    return texts
