"""Export a transducer model to three ONNX graphs (encoder, decoder, joiner).

Graphs (N = batch, T = frames, J = joiner_dim, V = vocab_size):

* encoder: ``x`` (N, T, 80) float32, ``x_lens`` (N,) int64 -> ``encoder_out`` (N, T', J)
  (already projected by ``joiner.encoder_proj``), ``encoder_out_lens`` (N,) int64;
* decoder: ``y`` (N, context_size) int64 -> ``decoder_out`` (N, J) (projected by
  ``joiner.decoder_proj``);
* joiner: ``encoder_out`` (N, J), ``decoder_out`` (N, J) -> ``logit`` (N, V).

Each file carries metadata ``vocab_size``, ``context_size``, ``blank_id``, ``joiner_dim``
(onnx ``metadata_props``). The TorchScript-based exporter (``dynamo=False``) is used: it needs
no extra package (the dynamo exporter needs onnxscript).
"""

from __future__ import annotations

import copy
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


@torch.no_grad()
def export_transducer_onnx(
    model: nn.Module,
    out_dir: str | Path,
    suffix: str = "",
    opset: int = 17,
    num_features: int = 80,
    example_frames: int = 100,
) -> dict[str, Path]:
    """Write ``encoder{-suffix}.onnx``, ``decoder...``, ``joiner...`` to ``out_dir``.

    Args:
      model: AsrModel-like (``forward_encoder``, ``decoder``, ``joiner``), any mode (set to eval).
      out_dir: output directory (created).
      suffix: appended to the file stems, e.g. ``epoch-30-avg-9``.
      opset: ONNX opset.
      num_features: feature dimension of the encoder input.
      example_frames: frames of the tracing example (must survive the encoder's subsampling).

    Returns:
      {"encoder": path, "decoder": path, "joiner": path}.
    """
    model = prepare_for_export(model)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tag = f"-{suffix}" if suffix else ""
    paths = {k: out_dir / f"{k}{tag}.onnx" for k in ("encoder", "decoder", "joiner")}
    context_size = int(model.decoder.context_size)
    blank_id = int(model.decoder.blank_id)

    x = torch.randn(2, example_frames, num_features)
    x_lens = torch.tensor([example_frames, example_frames - 10], dtype=torch.int64)
    encoder = EncoderForExport(model)
    enc_out, _ = encoder(x, x_lens)
    joiner_dim = int(enc_out.shape[-1])
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
    logits = joiner(enc_out[0, :3], dec_out)
    vocab_size = int(logits.shape[-1])
    _export(
        joiner,
        (enc_out[0, :3].contiguous(), dec_out),
        paths["joiner"],
        ["encoder_out", "decoder_out"],
        ["logit"],
        {"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}},
        opset,
    )
    meta = {
        "vocab_size": vocab_size,
        "context_size": context_size,
        "blank_id": blank_id,
        "joiner_dim": joiner_dim,
        "model_type": "gmot_zipformer_transducer",
    }
    for p in paths.values():
        _add_meta(p, meta)
    return paths
