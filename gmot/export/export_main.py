"""``export.py``: write an averaged ``pretrained.pt`` and ONNX encoder/decoder/joiner.

Usage (from a recipe folder)::

    ./zipformer_gmot/export.py --epoch 30 --avg 9 --use-averaged-model 1 \\
        --exp-dir zipformer_gmot/exp --onnx 1

Writes ``<exp-dir>/pretrained.pt`` (``{"model": state_dict, "model_config": dict}``; load it
with ``pretrained.py --checkpoint`` or ``decode.py --checkpoint``) and, with ``--onnx 1``,
``<exp-dir>/{encoder,decoder,joiner}-<suffix>.onnx`` plus a copy of tokens.txt.

A causal (streaming) model: ``--streaming 1`` exports the chunk-by-chunk encoder (one chunk, the
states as inputs and outputs; :func:`gmot.export.onnx_export.export_streaming_transducer_onnx`)
as ``encoder-<suffix>-streaming-chunk-<C>-left-<L>.onnx`` (decoder and joiner with the same
suffix), with ``--chunk-size`` / ``--left-context-frames`` (default: the model's first training
values); ``--streaming 0`` (default) exports the whole-utterance encoder with the same chunk masks
(simulated streaming), suffix ``<suffix>-chunk-<C>-left-<L>``. ``--streaming 1`` on a non-causal
checkpoint is refused, naming the checkpoint.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from torch import nn

from gmot.checkpoint import atomic_torch_save
from gmot.cli import add_lang_dir_argument, str2bool
from gmot.decoding.model_loading import (
    add_model_loading_arguments,
    checkpoint_description,
    load_model,
)
from gmot.decoding.streaming import add_chunk_arguments, apply_chunk_flags
from gmot.export.onnx_export import export_streaming_transducer_onnx, export_transducer_onnx


def get_parser(**defaults) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Export an (averaged) gmot model: pretrained.pt and ONNX graphs.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_model_loading_arguments(parser)
    add_lang_dir_argument(parser)
    parser.add_argument(
        "--onnx",
        type=str2bool,
        default=True,
        help="Also export encoder/decoder/joiner ONNX graphs.",
    )
    parser.add_argument(
        "--streaming",
        type=str2bool,
        default=False,
        help="Causal models: export the streaming encoder (one chunk per call, states as "
        "inputs and outputs) for onnx_pretrained.py / a streaming runtime.",
    )
    add_chunk_arguments(parser)
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset version.")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="pretrained.pt path (default: <exp-dir>/pretrained.pt).",
    )
    parser.set_defaults(**defaults)
    return parser


def save_pretrained(model: nn.Module, model_config: dict, path: str | Path) -> Path:
    """Atomically write ``{"model": state_dict, "model_config": model_config}`` to ``path`` (same
    write and file mode as the training checkpoints)."""
    return atomic_torch_save({"model": model.state_dict(), "model_config": model_config}, path)


def _is_causal(model: nn.Module) -> bool:
    return bool(getattr(getattr(getattr(model, "encoder", None), "config", None), "causal", False))


def main(argv: list[str] | None = None, **defaults) -> dict[str, Path]:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", level=logging.INFO)
    params = get_parser(**defaults).parse_args(argv)
    model, config, suffix = load_model(params, "cpu")
    checkpoint = checkpoint_description(params)
    if params.streaming and not _is_causal(model):
        raise ValueError(
            f"--streaming 1 needs a causal (streaming) model, but {checkpoint} holds a non-causal "
            "one: train with --causal 1 (docs/streaming.md), or export with --streaming 0"
        )
    chunk_tag = apply_chunk_flags(
        model, params.chunk_size, params.left_context_frames, checkpoint, params.streaming
    )
    out = params.output or Path(params.exp_dir) / "pretrained.pt"
    written = {"pretrained": save_pretrained(model, config, out)}
    logging.info("wrote %s", written["pretrained"])
    if params.onnx:
        if params.streaming:
            exported = export_streaming_transducer_onnx(
                model, params.exp_dir, f"{suffix}-streaming{chunk_tag}", opset=params.opset
            )
        else:
            exported = export_transducer_onnx(
                model, params.exp_dir, suffix + chunk_tag, opset=params.opset
            )
        written.update(exported)
        tokens = Path(params.lang_dir) / "tokens.txt"
        if tokens.is_file():
            shutil.copyfile(tokens, Path(params.exp_dir) / "tokens.txt")
        else:
            logging.warning("no %s to copy next to the ONNX files", tokens)
        for k in ("encoder", "decoder", "joiner"):
            logging.info("wrote %s", written[k])
    return written
