"""Model export: averaged ``pretrained.pt`` and ONNX encoder/decoder/joiner (whole-utterance or,
for causal models, streaming: one chunk with states), plus onnxruntime decoders for the exported
graphs (greedy; the torch searches, streaming included, through adapters)."""

from gmot.export.onnx_decode import OnnxTransducer
from gmot.export.onnx_export import export_streaming_transducer_onnx, export_transducer_onnx
from gmot.export.onnx_streaming import OnnxSearchModel, OnnxStreamingTransducer

__all__ = [
    "OnnxSearchModel",
    "OnnxStreamingTransducer",
    "OnnxTransducer",
    "export_streaming_transducer_onnx",
    "export_transducer_onnx",
]
