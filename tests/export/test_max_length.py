"""The max_length chain of export: the request, else train_meta.json's, else the tokenizer's own
model_max_length, else the model's position limit; never above that limit, never a number typed again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm2edge.errors import ConfigError, ExportError
from llm2edge.export.config import ExportConfig
from llm2edge.export.model_dir import ModelDir, resolve_max_length


def _model(tmp_path: Path, *, meta: dict | None = None, tokenizer: dict | None = None,
           positions: int | None = 512) -> ModelDir:
    (tmp_path / "tokenizer_config.json").unlink(missing_ok=True)
    if tokenizer is not None:
        (tmp_path / "tokenizer_config.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    config = {"max_position_embeddings": positions} if positions is not None else {}
    return ModelDir(path=tmp_path, config=config, labels=["a", "b"], train_meta=meta or {})


def test_train_meta_then_tokenizer_then_position_limit(tmp_path):
    assert resolve_max_length(_model(tmp_path, meta={"max_length": 48}, tokenizer={"model_max_length": 128}),
                              None) == 48
    assert resolve_max_length(_model(tmp_path, tokenizer={"model_max_length": 128}), None) == 128
    # transformers writes a huge sentinel for "no limit": the model's position limit applies
    assert resolve_max_length(_model(tmp_path, tokenizer={"model_max_length": int(1e30)}), None) == 512
    assert resolve_max_length(_model(tmp_path), None) == 512
    # a found value above the position limit is capped; a requested one is an error
    assert resolve_max_length(_model(tmp_path, meta={"max_length": 1024}), None) == 512
    assert resolve_max_length(_model(tmp_path, meta={"max_length": 48}), 24) == 24
    with pytest.raises(ConfigError, match="exceeds the model's max_position_embeddings"):
        resolve_max_length(_model(tmp_path), 1024)


def test_nothing_to_go_by_asks_for_max_length(tmp_path):
    with pytest.raises(ExportError, match="pass --max-length"):
        resolve_max_length(_model(tmp_path, positions=None), None)
    assert resolve_max_length(_model(tmp_path, positions=None), 40) == 40


def test_bad_values_name_their_source(tmp_path):
    with pytest.raises(ConfigError, match=r"train_meta\.json: max_length must be an integer from 2"):
        resolve_max_length(_model(tmp_path, meta={"max_length": "64"}), None)
    with pytest.raises(ConfigError, match="max_length must be an integer from 2"):
        ExportConfig(model=tmp_path, out=tmp_path / "b", max_length=1)
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        ExportConfig(model=tmp_path, out=tmp_path / "b", threads=0)
    with pytest.raises(ConfigError, match="quantize must be one of int8, none"):
        ExportConfig(model=tmp_path, out=tmp_path / "b", quantize="fp16")
