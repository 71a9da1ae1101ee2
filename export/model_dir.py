"""Check a trained model folder (Hugging Face layout from `llm2edge train`) before exporting it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm2edge.edge.bundle import labels_from_config
from llm2edge.errors import DataError, ExportError

DEFAULT_MAX_LENGTH = 128
VALIDATION_NAME = "validation.csv"
TRAIN_META_NAME = "train_meta.json"


@dataclass(frozen=True)
class ModelDir:
    """A checked model folder: its config, labels in id order, and the train metadata if present."""

    path: Path
    config: dict[str, Any]
    labels: list[str]
    train_meta: dict[str, Any]

    @property
    def model_type(self) -> str:
        """config.json's model_type (e.g. 'bert')."""
        return str(self.config.get("model_type", ""))


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or ExportError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


def check_model_dir(path: str | Path) -> ModelDir:
    """The model folder's config and labels; ExportError if the folder, config or safetensors is missing."""
    folder = Path(path)
    if not folder.is_dir():
        raise ExportError(f"{folder}: model folder not found")
    cfg_path = folder / "config.json"
    if not cfg_path.is_file():
        raise ExportError(f"{cfg_path}: missing (not a Hugging Face model folder?)")
    if not any((folder / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")):
        raise ExportError(f"{folder}: no model.safetensors (only safetensors weights are loaded)")
    config = _read_json(cfg_path)
    labels = labels_from_config(config, cfg_path, ExportError)
    meta_path = folder / TRAIN_META_NAME
    meta = _read_json(meta_path) if meta_path.is_file() else {}
    return ModelDir(path=folder, config=config, labels=labels, train_meta=meta)


def resolve_max_length(model: ModelDir, requested: int | None) -> int:
    """The token limit: the request, else train_meta.json's, else 128; never above the position limit."""
    value = requested if requested is not None else model.train_meta.get("max_length", DEFAULT_MAX_LENGTH)
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
        raise ExportError(f"max_length must be an integer >= 2, got {value!r}")
    limit = model.config.get("max_position_embeddings")
    if isinstance(limit, int) and value > limit:
        if requested is not None:
            raise ExportError(f"max_length {value} exceeds the model's max_position_embeddings ({limit})")
        value = limit
    return value


def resolve_validation(model: ModelDir, requested: str | Path | None) -> Path | None:
    """The validation file: the requested one (must exist), else MODEL/validation.csv, else None."""
    if requested is not None:
        path = Path(requested)
        if not path.is_file():
            raise DataError(f"{path}: validation file not found")
        return path
    default = model.path / VALIDATION_NAME
    return default if default.is_file() else None
