"""Lay out a bundle folder (Hugging Face ONNX layout); `llm2edge.export.place` moves it into place."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from llm2edge.errors import ExportError

MODEL_NAME = "model.onnx"


def write_tokenizer(model_dir: Path, dst: Path, max_length: int) -> list[str]:
    """Save the model's fast tokenizer into `dst` with padding off and truncation at max_length."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(model_dir, use_fast=True)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{model_dir}: cannot load the tokenizer ({str(exc).splitlines()[0]})") from None
    if not getattr(tok, "is_fast", False):
        raise ExportError(f"{model_dir}: the tokenizer has no fast (tokenizer.json) form; the edge needs one")
    tok.model_max_length = max_length
    written = [Path(p).name for p in tok.save_pretrained(dst)]
    path = dst / "tokenizer.json"
    if not path.is_file():
        raise ExportError(f"{model_dir}: saving the tokenizer wrote no tokenizer.json")
    fast = Tokenizer.from_file(str(path))
    fast.no_padding()  # the runtime pads each batch to its longest text, not every text to a fixed length
    fast.enable_truncation(max_length=max_length)
    fast.save(str(path))
    return sorted(set(written))


def write_config(config: Any, dst: Path) -> None:
    """Write the transformers config (with id2label) as dst/config.json."""
    config.to_json_file(str(dst / "config.json"))


def package_versions() -> dict[str, str]:
    """Versions of the packages that shaped the bundle."""
    out = {}
    for dist in ("onnx", "onnxruntime", "optimum", "optimum-onnx", "transformers", "torch", "tokenizers"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out
