"""`llm2edge export`: bad input is one line on stderr and exit code 2; the happy path prints the table."""

from __future__ import annotations

import json
import shutil

import pytest

from llm2edge.cli import main
from tests.helpers import cli_error as _fails


def test_missing_model_dir(tmp_path, capsys):
    line = _fails(["export", "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "b")], capsys)
    assert str(tmp_path / "nope") in line and "model folder not found" in line


def test_folder_without_config_or_safetensors(tmp_path, capsys):
    model = tmp_path / "m"
    model.mkdir()
    line = _fails(["export", "--model", str(model), "--out", str(tmp_path / "b")], capsys)
    assert str(model / "config.json") in line
    (model / "config.json").write_text(json.dumps({"id2label": {"0": "a", "1": "b"}}), encoding="utf-8")
    (model / "pytorch_model.bin").write_bytes(b"pickle")
    line = _fails(["export", "--model", str(model), "--out", str(tmp_path / "b")], capsys)
    assert "no model.safetensors" in line
    assert not (tmp_path / "b").exists()


def test_bad_options_and_validation_files(trained_model, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    base = ["export", "--model", str(model), "--out", str(tmp_path / "b")]
    assert "quantize must be one of" in _fails([*base, "--quantize", "fp16"], capsys)
    missing = tmp_path / "val.csv"
    assert str(missing) in _fails([*base, "--validate", str(missing)], capsys)
    bad_label = tmp_path / "bad.csv"
    bad_label.write_text("text,label\nhello,funny\nworld,sad\n", encoding="utf-8")
    assert f"{bad_label}:3: label 'sad'" in _fails([*base, "--validate", str(bad_label)], capsys)
    no_text = tmp_path / "cols.csv"
    no_text.write_text("sentence,label\nhello,funny\n", encoding="utf-8")
    assert "missing column(s) text" in _fails([*base, "--validate", str(no_text)], capsys)
    (model / "validation.csv").write_text("text,label\n", encoding="utf-8")
    assert "no rows" in _fails(base, capsys)
    assert not (tmp_path / "b").exists()


@pytest.mark.slow
def test_cli_export_without_validation_data_prints_the_table(trained_model, tmp_path, capsys):
    model = tmp_path / "m"
    shutil.copytree(trained_model, model)
    (model / "validation.csv").unlink()  # only the fp32 sanity check on built-in probe texts runs
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", str(model), "--out", str(tmp_path / "b"), "--quantize", "none",
              "--no-optimize", "--max-length", "16"])
    assert exit_info.value.code == 0
    captured = capsys.readouterr()
    assert "onnx fp32" in captured.out and "shipped: none" in captured.out
    assert "llm2edge: warning: no validation data" in captured.err
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["max_length"] == 16 and manifest["validation"]["probe_only"] is True
    assert manifest["validation"]["agreement_fp32"] == 1.0 and manifest["validation"]["accuracy_fp32"] is None
