"""Check a trained model folder (Hugging Face layout from `llm2edge train`) before exporting it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm2edge.checks import check_max_length
from llm2edge.defaults import MAX_LENGTH_LIMIT
from llm2edge.edge.bundle import labels_from_config
from llm2edge.errors import ConfigError, DataError, ExportError

VALIDATION_NAME = "validation.csv"
TRAIN_META_NAME = "train_meta.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"


@dataclass(frozen=True)
class ModelDir:
    """A checked model folder: its config, labels in id order, and the train metadata if present."""

    path: Path
    config: dict[str, Any]
    labels: list[str]
    train_meta: dict[str, Any]
    #: A multi-label model's `label_thresholds` (export/multilabel.py); None for a single-label model.
    thresholds: dict[str, float] | None = None

    @property
    def multi_label(self) -> bool:
        """True when config.json's problem_type is multi_label_classification."""
        return self.thresholds is not None

    @property
    def manifest_kind(self) -> dict[str, Any]:
        """write_manifest's multi-label arguments ({} for a single-label model)."""
        return {"multi_label": True, "thresholds": self.thresholds} if self.multi_label else {}

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
    from llm2edge.export.multilabel import is_multi_label, model_thresholds

    thresholds = model_thresholds(config, labels, cfg_path) if is_multi_label(config) else None
    return ModelDir(path=folder, config=config, labels=labels, train_meta=meta, thresholds=thresholds)


def _tokenizer_limit(model: ModelDir) -> int | None:
    """tokenizer_config.json's model_max_length, or None if absent or transformers' "no limit" sentinel."""
    path = model.path / TOKENIZER_CONFIG_NAME
    value = _read_json(path).get("model_max_length") if path.is_file() else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= MAX_LENGTH_LIMIT:
        return None
    return int(value)


def resolve_max_length(model: ModelDir, requested: int | None) -> int:
    """The token limit, in this order: the request; train_meta.json's (what the student was trained with);
    the tokenizer's own model_max_length; the model's max_position_embeddings. Never above the position
    limit: a request above it is an error, a found value is capped."""
    limit = model.config.get("max_position_embeddings")
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
    if requested is not None:
        value = check_max_length(requested)
        if limit is not None and value > limit:
            raise ConfigError(f"max_length {value} exceeds the model's max_position_embeddings ({limit})")
        return value
    if "max_length" in model.train_meta:
        meta = model.path / TRAIN_META_NAME
        value = check_max_length(model.train_meta["max_length"], f"{meta}: max_length")
    else:
        found = _tokenizer_limit(model) or limit
        if found is None:
            raise ExportError(f"{model.path}: no max_length in {TRAIN_META_NAME}, no model_max_length in "
                              f"{TOKENIZER_CONFIG_NAME}, no max_position_embeddings: pass --max-length")
        value = check_max_length(found, f"{model.path}: max_length")
    return min(value, limit) if limit is not None else value


def resolve_validation(model: ModelDir, requested: str | Path | None) -> Path | None:
    """The validation file: the requested one (must exist), else MODEL/validation.csv, else None."""
    if requested is not None:
        path = Path(requested)
        if not path.is_file():
            raise DataError(f"{path}: validation file not found")
        return path
    default = model.path / VALIDATION_NAME
    return default if default.is_file() else None
