"""Greedy transducer decoding with onnxruntime on the graphs of :mod:`gmot.export.onnx_export`."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class OnnxTransducer:
    """onnxruntime sessions for the encoder, decoder and joiner ONNX files.

    Args:
      encoder, decoder, joiner: paths of the exported graphs.
      num_threads: intra-op threads per session.
    """

    def __init__(
        self, encoder: str | Path, decoder: str | Path, joiner: str | Path, num_threads: int = 1
    ):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        sessions = {}
        for name, path in (("encoder", encoder), ("decoder", decoder), ("joiner", joiner)):
            if not Path(path).is_file():
                raise FileNotFoundError(f"{name} ONNX file not found: {path}")
            sessions[name] = ort.InferenceSession(
                str(path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        self.encoder, self.decoder, self.joiner = (
            sessions["encoder"],
            sessions["decoder"],
            sessions["joiner"],
        )
        meta = self.decoder.get_modelmeta().custom_metadata_map
        self.context_size = int(meta["context_size"])
        self.blank_id = int(meta["blank_id"])
        self.vocab_size = int(meta["vocab_size"])
        dim = self.encoder.get_inputs()[0].shape[-1]  # x: (N, T, F), F fixed at export
        self.num_features = int(dim) if isinstance(dim, int) else 80

    def run_encoder(self, x: np.ndarray, x_lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (N, T, F) float32 (F = ``num_features``), x_lens (N,) int64 -> encoder_out
        (N, T', J), lens (N,)."""
        out, lens = self.encoder.run(
            None, {"x": x.astype(np.float32), "x_lens": x_lens.astype(np.int64)}
        )
        return out, lens

    def run_decoder(self, y: np.ndarray) -> np.ndarray:
        """y (N, context_size) int64 -> (N, J)."""
        return self.decoder.run(None, {"y": y.astype(np.int64)})[0]

    def run_joiner(self, enc: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """enc (N, J), dec (N, J) -> logits (N, V)."""
        return self.joiner.run(None, {"encoder_out": enc, "decoder_out": dec})[0]

    def greedy_search(
        self, encoder_out: np.ndarray, encoder_out_lens: np.ndarray, max_sym_per_frame: int = 1
    ) -> list[list[int]]:
        """Greedy search (same rule as gmot.decoding.greedy_search) -> token ids per utterance."""
        results = []
        for b in range(encoder_out.shape[0]):
            hyp = [self.blank_id] * self.context_size
            dec = self.run_decoder(np.array([hyp[-self.context_size :]], dtype=np.int64))
            for t in range(int(encoder_out_lens[b])):
                for _ in range(max_sym_per_frame):
                    logits = self.run_joiner(encoder_out[b, t : t + 1], dec)
                    y = int(logits.argmax(-1)[0])
                    if y == self.blank_id:
                        break
                    hyp.append(y)
                    dec = self.run_decoder(np.array([hyp[-self.context_size :]], dtype=np.int64))
            results.append(hyp[self.context_size :])
        return results

    def decode(self, x: np.ndarray, x_lens: np.ndarray, max_sym_per_frame: int = 1):
        """Features (N, T, 80), lens (N,) -> token ids per utterance."""
        enc, lens = self.run_encoder(x, x_lens)
        return self.greedy_search(enc, lens, max_sym_per_frame)
