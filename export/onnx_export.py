"""Export a sequence-classification model to ONNX with optimum (dynamic batch and sequence axes)."""

from __future__ import annotations

import inspect
import logging
import warnings
from pathlib import Path
from typing import Any

from llm2edge.errors import ExportError

#: Inputs the edge runtime fills, in the order BERT-family `forward()` takes them.
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def load_torch_model(folder: Path) -> Any:
    """The model as AutoModelForSequenceClassification in eval mode (safetensors only, no remote code)."""
    from transformers import AutoModelForSequenceClassification

    try:
        model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(f"{folder}: cannot load the model ({str(exc).splitlines()[0]})") from None
    return model.eval()


def export_onnx(model: Any, out_dir: Path) -> Path:
    """Export `model` to out_dir/model.onnx (task text-classification) and check its inputs and outputs."""
    from optimum.exporters.onnx import onnx_export_from_model

    out_dir.mkdir(parents=True, exist_ok=True)
    quiet = logging.getLogger("optimum")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_export_from_model(model, out_dir, task="text-classification", do_validation=False)
    except Exception as exc:  # optimum raises many kinds (ValueError, KeyError, torch errors)
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ExportError(f"ONNX export of {type(model).__name__} failed: {first}") from None
    finally:
        quiet.setLevel(level)
    path = out_dir / "model.onnx"
    if not path.is_file():
        raise ExportError(f"{out_dir}: optimum wrote no model.onnx")
    check_graph_io(path, model)
    return path


def check_graph_io(path: Path, model: Any) -> list[str]:
    """The graph's input names; ExportError unless known, in forward()'s order, output logits."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inputs = [i.name for i in graph.input]
    outputs = [o.name for o in graph.output]
    unknown = [n for n in inputs if n not in KNOWN_INPUTS]
    if unknown or "input_ids" not in inputs:
        raise ExportError(f"{path}: graph inputs {inputs} are not a subset of {list(KNOWN_INPUTS)}")
    params = list(inspect.signature(model.forward).parameters)
    order = [p for p in params if p in inputs]
    if order != inputs:
        raise ExportError(f"{path}: graph inputs {inputs} are not in forward()'s order {order}")
    if outputs[:1] != ["logits"]:
        raise ExportError(f"{path}: first graph output is {outputs[:1]}, expected ['logits']")
    return inputs
