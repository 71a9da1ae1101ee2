"""Export a trained model to an edge bundle (ONNX, int8, manifest). Needs the `export` extra."""

from __future__ import annotations

from llm2edge.export.api import export_bundle
from llm2edge.export.config import ExportConfig, ExportResult

__all__ = ["ExportConfig", "ExportResult", "export_bundle"]
