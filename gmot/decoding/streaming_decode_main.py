"""``streaming_decode.py``: decode test sets chunk by chunk with a causal model (issue 23).

Usage (from a recipe folder, e.g. egs/hsk/ASR)::

    ./zipformer_gmot/streaming_decode.py --epoch 30 --avg 9 --use-averaged-model 1 \\
        --exp-dir zipformer_gmot/exp --decoding-method greedy_search --num-decode-streams 100

Each cut is a stream (:class:`gmot.decoding.streaming.DecodeStream`); up to
``--num-decode-streams`` streams are decoded together, one encoder call per chunk for all of
them, and a finished stream's place goes to the next cut. The model must have been trained with
``--causal 1``; ``--chunk-size`` / ``--left-context-frames`` (default: the model's first values)
set the chunk and left context. Writes, per test set, into
``<exp-dir>/streaming/<decoding-method>/`` the files of ``decode.py``
(``recogs-<set>-<setting>-<suffix>-chunk-<C>-left-<L>.txt``, ``errs-...``, ``wer-summary-...``)
and logs the CER and the real-time factor. Cuts under the encoder's 9 fbank frames are skipped
and listed, as in ``decode.py``.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch
from torch import nn

from gmot.cli import add_lang_dir_argument
from gmot.data import AsrDataModule
from gmot.data.tokens import TokenTable
from gmot.decoding.decode_main import (
    add_test_set_arguments,
    cut_paths_to_decode,
    decodable,
    decode_test_sets,
)
from gmot.decoding.features import FRAME_SHIFT_S
from gmot.decoding.methods import add_blank_penalty_argument, get_method
from gmot.decoding.model_loading import (
    add_model_loading_arguments,
    checkpoint_description,
    load_model,
)
from gmot.decoding.streaming import (
    STREAMING_METHODS,
    add_chunk_arguments,
    apply_chunk_flags,
    decode_streams,
)


def get_parser(**defaults) -> argparse.ArgumentParser:
    """The streaming_decode.py parser; ``defaults`` override argument defaults (recipe
    settings)."""
    parser = argparse.ArgumentParser(
        description="Decode test sets chunk by chunk with a causal (streaming) gmot model and "
        "compute the CER.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        conflict_handler="resolve",  # the data module's --lang-dir wins, as in decode.py
    )
    add_model_loading_arguments(parser)
    g = parser.add_argument_group("streaming decoding")
    g.add_argument(
        "--decoding-method",
        default="greedy_search",
        choices=STREAMING_METHODS,
        help="greedy_search: at most --max-sym-per-frame symbols per frame; "
        "modified_beam_search: one symbol per frame, --beam-size hypotheses.",
    )
    g.add_argument("--beam-size", type=int, default=4, help="modified_beam_search's beam.")
    g.add_argument(
        "--max-sym-per-frame", type=int, default=1, help="Most symbols per frame (greedy_search)."
    )
    add_blank_penalty_argument(g)
    g.add_argument(
        "--num-decode-streams",
        type=int,
        default=100,
        help="Streams (cuts) decoded together: one encoder call per chunk for all of them.",
    )
    add_chunk_arguments(g)
    add_lang_dir_argument(g)
    add_test_set_arguments(g)
    AsrDataModule.add_arguments(parser)
    parser.set_defaults(**defaults)
    return parser


class _Timed:
    """Iterate ``source`` and add the seconds spent in it to :attr:`seconds`."""

    def __init__(self, source) -> None:
        self.source, self.seconds = iter(source), 0.0

    def __iter__(self):
        return self

    def __next__(self):
        t0 = time.perf_counter()
        try:
            return next(self.source)
        finally:
            self.seconds += time.perf_counter() - t0


def decode_dataset_streaming(
    dataloader, model: nn.Module, token_table: TokenTable, params: argparse.Namespace
) -> tuple[list[tuple[str, str, str]], float, float, list[str]]:
    """Decode every cut of ``dataloader`` (data-module batches) as a stream.

    Returns:
      (results: (cut_id, ref text, hyp text) per cut, audio seconds, decoding seconds (data
      loading excluded), skipped: one description per cut too short for the encoder).
    """
    from tqdm import tqdm

    device = next(model.parameters()).device
    skipped: list[str] = []
    texts: dict[str, str] = {}
    audio_s = 0.0

    def utterances():
        nonlocal audio_s
        for batch in tqdm(dataloader, desc=f"streaming {params.decoding_method}", unit="batch"):
            for i in decodable(batch, skipped):
                n = int(batch["feature_lens"][i])
                texts[batch["cut_ids"][i]] = batch["texts"][i]
                audio_s += n * FRAME_SHIFT_S
                yield batch["cut_ids"][i], batch["features"][i, :n].to(device)

    source = _Timed(utterances())
    t0 = time.perf_counter()
    hyps = decode_streams(
        model,
        source,
        params.decoding_method,
        num_decode_streams=params.num_decode_streams,
        beam_size=params.beam_size,
        max_sym_per_frame=params.max_sym_per_frame,
        blank_penalty=params.blank_penalty,
    )
    results = [(cut_id, texts[cut_id], token_table.decode(hyp)) for cut_id, hyp in hyps]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - t0 - source.seconds
    return results, audio_s, elapsed, skipped


def main(argv: list[str] | None = None, **defaults) -> dict[str, float]:
    """Parse ``argv`` (with recipe ``defaults``), decode each test set chunk by chunk, write the
    result files into ``<exp-dir>/streaming/<decoding-method>/``.

    Returns {test set name: CER in percent}.
    Raises:
      ValueError naming the checkpoint for a non-causal model, or the flag for a chunk size or
      left context the model does not allow.
    """
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    params = get_parser(**defaults).parse_args(argv)
    for flag in ("beam_size", "max_sym_per_frame", "num_decode_streams"):
        if getattr(params, flag) < 1:
            name = "--" + flag.replace("_", "-")
            raise ValueError(f"{name} must be >= 1; got {getattr(params, flag)}")
    params.test_cuts = cut_paths_to_decode(params)
    model, _, suffix = load_model(params, torch.device(params.device))
    method = get_method(params.decoding_method)
    method.check_model(model)
    suffix += apply_chunk_flags(
        model,
        params.chunk_size,
        params.left_context_frames,
        checkpoint_description(params),
        streaming=True,
    )
    out_dir = Path(params.exp_dir) / "streaming" / params.decoding_method
    return decode_test_sets(
        params, model, out_dir, method.setting_name(params), suffix, decode_dataset_streaming
    )
