"""Streaming transducer decoding with onnxruntime on a streaming export (issue 23).

:class:`OnnxStreamingTransducer` wraps the three graphs of
:func:`gmot.export.onnx_export.export_streaming_transducer_onnx` in the interface the torch
streaming decoder uses (``model.encoder.streaming_forward`` / ``get_init_states`` /
``chunk_shift`` / ``chunk_input_frames``, ``model.decoder`` and ``model.joiner`` as in
:mod:`gmot.decoding.transducer_search`), so the torch code runs unchanged on it:
:class:`gmot.decoding.streaming.DecodeStream`, :func:`~gmot.decoding.streaming.decode_one_chunk`
and :func:`~gmot.decoding.streaming.decode_streams` (greedy and modified beam search carried
across chunks). Tensors cross to onnxruntime as numpy arrays on the CPU. Everything the runtime
needs (chunk sizes, state shapes) is read from the encoder's metadata.

Example::

    model = OnnxStreamingTransducer("encoder.onnx", "decoder.onnx", "joiner.onnx")
    for key, hyp in decode_streams(model, [("a", fbank_a), ("b", fbank_b)], "greedy_search"):
        ...
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from gmot.export.onnx_decode import OnnxTransducer


def encoder_metadata(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an encoder ONNX file (``streaming`` = "1" for a streaming one)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in model.metadata_props}


def is_streaming_export(encoder: str | Path) -> bool:
    """Whether ``encoder`` was written by ``export.py --streaming 1``."""
    return encoder_metadata(encoder).get("streaming") == "1"


class _Encoder:
    """The streaming encoder graph as ``Zipformer.streaming_forward`` (output already projected
    to joiner_dim by the joiner's encoder projection)."""

    def __init__(self, session, meta: dict[str, str], path: str | Path) -> None:
        if meta.get("streaming") != "1":
            raise ValueError(
                f"{path} is not a streaming encoder (no 'streaming' metadata): export the "
                "causal model with export.py --streaming 1"
            )
        self.session = session
        self.chunk_size = int(meta["chunk_size"])
        self.left_context_frames = int(meta["left_context_frames"])
        self.chunk_shift = int(meta["chunk_shift"])
        self.right_padding = int(meta["right_padding"])
        self.chunk_input_frames = int(meta["chunk_input_frames"])
        self.num_features = int(meta["num_features"])
        self.state_shapes = [tuple(s) for s in json.loads(meta["state_shapes"])]
        self.state_dtypes = json.loads(meta["state_dtypes"])
        n = int(meta["num_states"])
        assert len(self.state_shapes) == len(self.state_dtypes) == n, (
            f"{path}: {n} states, {len(self.state_shapes)} shapes, {len(self.state_dtypes)} dtypes"
        )
        self.input_names = ["x", "x_lens"] + [f"state_{i}" for i in range(n)]

    def get_init_states(
        self, batch_size: int = 1, device: torch.device | str | None = None
    ) -> list[torch.Tensor]:
        """Zero states for ``batch_size`` streams (shapes and dtypes from the metadata)."""
        return [
            torch.zeros((batch_size, *shape[1:]), dtype=getattr(torch, dtype))
            for shape, dtype in zip(self.state_shapes, self.state_dtypes)
        ]

    def streaming_forward(
        self, x: torch.Tensor, x_lens: torch.Tensor, states: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """x (B, chunk_input_frames, F), x_lens (B,), states -> encoder_out
        (B, chunk_size // 2, J) projected, encoder_out_lens (B,), new states."""
        assert x.shape[1:] == (self.chunk_input_frames, self.num_features), (
            f"x must be (B, {self.chunk_input_frames}, {self.num_features}); got {tuple(x.shape)}"
        )
        assert len(states) == len(self.state_shapes), f"{len(states)} states"
        arrays = [x.float(), x_lens.long(), *states]
        feed = {k: v.cpu().numpy() for k, v in zip(self.input_names, arrays)}
        out, out_lens, *new_states = self.session.run(None, feed)
        return (
            torch.from_numpy(out),
            torch.from_numpy(out_lens),
            [torch.from_numpy(s) for s in new_states],
        )


class _Decoder:
    """The decoder graph as ``model.decoder``: y (N, context_size) -> (N, 1, J) (projected)."""

    def __init__(self, onnx_model: OnnxTransducer) -> None:
        self.onnx_model = onnx_model
        self.blank_id = onnx_model.blank_id
        self.context_size = onnx_model.context_size

    def __call__(self, y: torch.Tensor, need_pad: bool = False) -> torch.Tensor:
        assert not need_pad, "the exported decoder takes the last context_size tokens"
        return torch.from_numpy(self.onnx_model.run_decoder(y.cpu().numpy())).unsqueeze(1)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


class _Joiner:
    """The joiner graph as ``model.joiner`` on projected inputs (the projections are in the
    encoder and decoder graphs, so ``encoder_proj`` and ``decoder_proj`` are identities)."""

    encoder_proj = staticmethod(_identity)
    decoder_proj = staticmethod(_identity)

    def __init__(self, onnx_model: OnnxTransducer) -> None:
        self.onnx_model = onnx_model

    def __call__(
        self, enc: torch.Tensor, dec: torch.Tensor, project_input: bool = False
    ) -> torch.Tensor:
        """enc (N, J), dec (N, J) -> logits (N, V)."""
        assert not project_input, "the exported joiner takes projected inputs"
        logits = self.onnx_model.run_joiner(
            np.ascontiguousarray(enc.cpu().numpy()), np.ascontiguousarray(dec.cpu().numpy())
        )
        return torch.from_numpy(logits)


class OnnxSearchModel:
    """The decoder and joiner graphs of an :class:`OnnxTransducer` as the ``model`` of the
    searches in :mod:`gmot.decoding.transducer_search` (encoder frames from the exported
    encoder, already projected; CPU tensors).

    Attributes:
      onnx: the sessions; decoder, joiner: the adapters.
    """

    def __init__(self, onnx_model: OnnxTransducer) -> None:
        self.onnx = onnx_model
        self.decoder = _Decoder(onnx_model)
        self.joiner = _Joiner(onnx_model)

    def parameters(self) -> Iterator[torch.Tensor]:
        """One CPU tensor: where the searches and streams put their tensors."""
        yield torch.zeros(0)

    def eval(self) -> OnnxSearchModel:
        return self


class OnnxStreamingTransducer(OnnxSearchModel):
    """onnxruntime sessions of a streaming export, usable as the ``model`` of
    :mod:`gmot.decoding.streaming` (``DecodeStream``, ``decode_one_chunk``, ``decode_streams``).

    Args:
      encoder, decoder, joiner: paths of the graphs written by ``export.py --streaming 1``.
      num_threads: intra-op threads per session.
    Attributes:
      encoder: the streaming encoder adapter (``chunk_shift``, ``chunk_input_frames``,
        ``get_init_states``, ``streaming_forward``); decoder, joiner, onnx: as in
        :class:`OnnxSearchModel`.
    Raises:
      FileNotFoundError for a missing file; ValueError for a non-streaming encoder.
    """

    def __init__(
        self, encoder: str | Path, decoder: str | Path, joiner: str | Path, num_threads: int = 1
    ) -> None:
        super().__init__(OnnxTransducer(encoder, decoder, joiner, num_threads))
        meta = self.onnx.encoder.get_modelmeta().custom_metadata_map
        self.encoder = _Encoder(self.onnx.encoder, meta, encoder)
