"""Export a transducer model to three ONNX graphs (encoder, decoder, joiner).

Graphs (N = batch, T = frames, J = joiner_dim, V = vocab_size):

* encoder: ``x`` (N, T, 80) float32, ``x_lens`` (N,) int64 -> ``encoder_out`` (N, T', J)
  (already projected by ``joiner.encoder_proj``), ``encoder_out_lens`` (N,) int64;
* decoder: ``y`` (N, context_size) int64 -> ``decoder_out`` (N, J) (projected by
  ``joiner.decoder_proj``);
* joiner: ``encoder_out`` (N, J), ``decoder_out`` (N, J) -> ``logit`` (N, V).

Each file carries metadata ``vocab_size``, ``context_size``, ``blank_id``, ``joiner_dim``
(onnx ``metadata_props``).

Streaming export (:func:`export_streaming_transducer_onnx`, causal Zipformer, issue 23): the
encoder graph encodes ONE chunk with the states as inputs and outputs,

* ``x`` (N, chunk_input_frames, 80) float32, ``x_lens`` (N,) int64, ``state_0`` ..
  ``state_{S-1}`` -> ``encoder_out`` (N, chunk_size // 2, J), ``encoder_out_lens`` (N,),
  ``new_state_0`` .. ``new_state_{S-1}`` (same shapes as the inputs; N dynamic),

and carries, besides the metadata above, ``streaming`` = 1, ``chunk_size``,
``left_context_frames`` (50 Hz frames), ``chunk_shift``, ``right_padding``,
``chunk_input_frames`` (100 Hz fbank frames), ``num_features``, ``num_states``, and
``state_shapes`` / ``state_dtypes`` (JSON lists; shapes for N = 1, dimension 0 is N), so that a
runtime needs nothing else (:mod:`gmot.export.onnx_streaming`). The decoder and joiner are the
non-streaming ones. The TorchScript-based exporter (``dynamo=False``) is used: it needs
no extra package (the dynamo exporter needs onnxscript).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class _ExportSwoosh(nn.Module):
    """``softplus(x - shift) - 0.08 x - offset``: the Zipformer's Swoosh activations without
    their custom autograd Function (which the ONNX exporter cannot translate)."""

    def __init__(self, shift: float, offset: float):
        super().__init__()
        self.shift, self.offset = shift, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(x - self.shift) - 0.08 * x - self.offset


def prepare_for_export(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with export-unfriendly modules swapped for
    equivalent plain-torch ones (Zipformer ``SwooshL``/``SwooshR``)."""
    model = copy.deepcopy(model).eval().to("cpu")
    try:
        from gmot.models.zipformer.scaling import SwooshL, SwooshR
    except ImportError:
        return model
    params = {SwooshR: (1.0, 0.313261687), SwooshL: (4.0, 0.035)}
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) in params:
                setattr(module, name, _ExportSwoosh(*params[type(child)]))
    return model


class EncoderForExport(nn.Module):
    """``model.forward_encoder`` followed by the joiner's encoder projection."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor):
        encoder_out, encoder_out_lens = self.model.forward_encoder(x, x_lens)
        return self.model.joiner.encoder_proj(encoder_out), encoder_out_lens


class StreamingEncoderForExport(nn.Module):
    """One chunk of ``model.encoder.streaming_forward`` followed by the joiner's encoder
    projection, with the states as separate tensors (ONNX inputs and outputs)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor, *states: torch.Tensor):
        out, out_lens, new_states = self.model.encoder.streaming_forward(x, x_lens, list(states))
        return (self.model.joiner.encoder_proj(out), out_lens, *new_states)


class DecoderForExport(nn.Module):
    """Stateless decoder on the last ``context_size`` tokens + the joiner's decoder projection."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.decoder = model.decoder
        self.decoder_proj = model.joiner.decoder_proj

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.decoder_proj(self.decoder(y, need_pad=False)[:, -1])


class JoinerForExport(nn.Module):
    """Joiner on already projected inputs."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.joiner = model.joiner

    def forward(self, encoder_out: torch.Tensor, decoder_out: torch.Tensor) -> torch.Tensor:
        return self.joiner(encoder_out, decoder_out, project_input=False)


def _add_meta(path: Path, meta: dict[str, int | str]) -> None:
    import onnx

    m = onnx.load(str(path))
    for k, v in meta.items():
        entry = m.metadata_props.add()
        entry.key, entry.value = k, str(v)
    onnx.save(m, str(path))


def _export(module: nn.Module, args: tuple, path: Path, names_in, names_out, axes, opset):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy-exporter deprecation and tracer warnings
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=names_in,
            output_names=names_out,
            dynamic_axes=axes,
        )


def _paths(out_dir: str | Path, suffix: str) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = f"-{suffix}" if suffix else ""
    return {k: out_dir / f"{k}{tag}.onnx" for k in ("encoder", "decoder", "joiner")}


def _export_decoder_joiner(
    model: nn.Module, enc_out: torch.Tensor, paths: dict[str, Path], opset: int
) -> dict[str, int | str]:
    """Export the decoder and joiner; ``enc_out`` (N, T, J) projected encoder frames (the
    joiner's tracing example). Returns the metadata every file of the export carries."""
    context_size = int(model.decoder.context_size)
    blank_id = int(model.decoder.blank_id)
    y = torch.full((3, context_size), blank_id, dtype=torch.int64)
    decoder = DecoderForExport(model)
    dec_out = decoder(y)
    _export(
        decoder,
        (y,),
        paths["decoder"],
        ["y"],
        ["decoder_out"],
        {"y": {0: "N"}, "decoder_out": {0: "N"}},
        opset,
    )
    joiner = JoinerForExport(model)
    enc = enc_out.reshape(-1, enc_out.shape[-1])[:3].contiguous()
    logits = joiner(enc, dec_out)
    _export(
        joiner,
        (enc, dec_out),
        paths["joiner"],
        ["encoder_out", "decoder_out"],
        ["logit"],
        {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}},
        opset,
    )
    return {
        "vocab_size": int(logits.shape[-1]),
        "context_size": context_size,
        "blank_id": blank_id,
        "joiner_dim": int(enc_out.shape[-1]),
        "model_type": "gmot_zipformer_transducer",
    }


@torch.no_grad()
def export_transducer_onnx(
    model: nn.Module,
    out_dir: str | Path,
    suffix: str = "",
    opset: int = 17,
    num_features: int | None = None,
    example_frames: int = 100,
) -> dict[str, Path]:
    """Write ``encoder{-suffix}.onnx``, ``decoder...``, ``joiner...`` to ``out_dir``.

    Args:
      model: AsrModel-like (``forward_encoder``, ``decoder``, ``joiner``), any mode (set to eval).
      out_dir: output directory (created).
      suffix: appended to the file stems, e.g. ``epoch-30-avg-9``.
      opset: ONNX opset.
      num_features: feature dimension of the encoder input (None: the model's own, 80 for
        fbank, 83 for a model trained with pitch features).
      example_frames: frames of the tracing example (must survive the encoder's subsampling).

    Returns:
      {"encoder": path, "decoder": path, "joiner": path}.
    """
    from gmot.decoding.features import model_num_features

    if num_features is None:
        num_features = model_num_features(model)
    model = prepare_for_export(model)
    paths = _paths(out_dir, suffix)
    x = torch.randn(2, example_frames, num_features)
    x_lens = torch.tensor([example_frames, example_frames - 10], dtype=torch.int64)
    encoder = EncoderForExport(model)
    enc_out, _ = encoder(x, x_lens)
    _export(
        encoder,
        (x, x_lens),
        paths["encoder"],
        ["x", "x_lens"],
        ["encoder_out", "encoder_out_lens"],
        {
            "x": {0: "N", 1: "T"},
            "x_lens": {0: "N"},
            "encoder_out": {0: "N", 1: "T_out"},
            "encoder_out_lens": {0: "N"},
        },
        opset,
    )
    meta = _export_decoder_joiner(model, enc_out, paths, opset)
    for p in paths.values():
        _add_meta(p, meta)
    return paths


def streaming_metadata(encoder: nn.Module) -> dict[str, int | str]:
    """The streaming encoder's metadata (see the module docstring) of a causal Zipformer whose
    ``config.chunk_size[0]`` / ``left_context_frames[0]`` are the streaming values."""
    states = encoder.get_init_states(1, "cpu")
    return {
        "streaming": 1,
        "chunk_size": int(encoder.config.chunk_size[0]),
        "left_context_frames": int(encoder.config.left_context_frames[0]),
        "chunk_shift": int(encoder.chunk_shift),
        "right_padding": int(encoder.right_padding),
        "chunk_input_frames": int(encoder.chunk_input_frames),
        "num_features": int(encoder.num_features),
        "num_states": len(states),
        "state_shapes": json.dumps([list(s.shape) for s in states]),
        "state_dtypes": json.dumps([str(s.dtype).removeprefix("torch.") for s in states]),
    }


@torch.no_grad()
def export_streaming_transducer_onnx(
    model: nn.Module, out_dir: str | Path, suffix: str = "", opset: int = 17
) -> dict[str, Path]:
    """Write the streaming ``encoder{-suffix}.onnx`` (one chunk, states in and out; see the
    module docstring), ``decoder...`` and ``joiner...`` to ``out_dir``.

    Args:
      model: an ``AsrModel`` with a causal Zipformer encoder; its ``encoder.config``'s first
        chunk size and left context (positive) are the ones exported
        (:func:`gmot.decoding.streaming.apply_chunk_flags` sets them).
      out_dir, suffix, opset: as for :func:`export_transducer_onnx`.
    Returns:
      {"encoder": path, "decoder": path, "joiner": path}.
    Raises:
      ValueError for a non-causal encoder or a non-positive chunk size / left context.
    """
    model = prepare_for_export(model)
    encoder = model.encoder
    n = encoder.chunk_input_frames  # raises ValueError for a non-streaming configuration
    paths = _paths(out_dir, suffix)
    B = 2  # the tracing batch: 2, so that nothing specialises to N = 1
    states = encoder.get_init_states(B, "cpu")
    x = torch.randn(B, n, encoder.num_features)
    x_lens = torch.tensor([n, n - 5], dtype=torch.int64)
    wrapper = StreamingEncoderForExport(model)
    enc_out = wrapper(x, x_lens, *states)[0]
    names_in = ["x", "x_lens"] + [f"state_{i}" for i in range(len(states))]
    names_out = ["encoder_out", "encoder_out_lens"] + [f"new_state_{i}" for i in range(len(states))]
    axes = {name: {0: "N"} for name in names_in + names_out}
    _export(wrapper, (x, x_lens, *states), paths["encoder"], names_in, names_out, axes, opset)
    meta = _export_decoder_joiner(model, enc_out, paths, opset)
    meta["streaming"] = 1
    for k, p in paths.items():
        _add_meta(p, {**meta, **streaming_metadata(encoder)} if k == "encoder" else meta)
    return paths
