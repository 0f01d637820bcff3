"""Model export: averaged ``pretrained.pt`` and ONNX encoder/decoder/joiner, plus an
onnxruntime greedy decoder for the exported graphs."""

from gmot.export.onnx_decode import OnnxTransducer
from gmot.export.onnx_export import export_transducer_onnx

__all__ = ["OnnxTransducer", "export_transducer_onnx"]
