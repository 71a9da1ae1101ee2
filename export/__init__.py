"""Export a trained model to an edge bundle (ONNX, int8, manifest).

Needs the `export` extra: importing this package without it raises MissingExtraError with the pip command.
torch, transformers, optimum and onnx are imported only when a step runs.

- `api`: `export_bundle`, the whole export: check the model dir, ONNX export, graph optimisation, int8
  quantization, validation against the torch model, and the bundle moved into place.
- `config`: ExportConfig (documented, validated settings) and ExportResult.
- `model_dir`: what export reads from train's output (labels, max_length chain, validation slice).
- `onnx_export`, `optimize`, `quantize`, `validate`: one step each. `bundle`: the files the bundle holds.
"""

from __future__ import annotations

from llm2edge.extras import require

require("export")

from llm2edge.export.api import export_bundle  # noqa: E402
from llm2edge.export.config import ExportConfig, ExportResult  # noqa: E402

__all__ = ["ExportConfig", "ExportResult", "export_bundle"]
