"""The bundle manifest: write_manifest hashes every file, read_bundle verifies all of it."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from llm2edge.edge import Classifier, read_bundle, write_manifest
from llm2edge.edge.bundle import MANIFEST_NAME, MANIFEST_SCHEMA
from llm2edge.errors import BundleError
from llm2edge.hashing import sha256_file


def _manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))


def _rewrite(path: Path, **changes: object) -> None:
    m = _manifest(path)
    m.update(changes)
    (path / MANIFEST_NAME).write_text(json.dumps(m), encoding="utf-8")


def test_manifest_lists_every_file_with_its_sha256(tiny_bundle):
    m = _manifest(tiny_bundle.path)
    on_disk = sorted(p.name for p in tiny_bundle.path.iterdir() if p.name != MANIFEST_NAME)
    assert sorted(m["files"]) == on_disk
    assert {"model.onnx", "tokenizer.json", "config.json"} <= set(m["files"])
    for name, digest in m["files"].items():
        assert digest == hashlib.sha256((tiny_bundle.path / name).read_bytes()).hexdigest()
    assert m["schema"] == MANIFEST_SCHEMA
    assert m["labels"] == list(tiny_bundle.labels)
    assert m["max_length"] == tiny_bundle.max_length
    assert m["quantization"] == "none"
    assert "llm2edge" in m["versions"] and m["versions"]["onnx"] == "test"
    assert datetime.fromisoformat(m["created"]).tzinfo is not None


def test_read_bundle_returns_the_manifest(tiny_bundle):
    info = read_bundle(tiny_bundle.path)
    assert info.path == tiny_bundle.path
    assert info.labels == list(tiny_bundle.labels)
    assert info.max_length == tiny_bundle.max_length
    assert info.source_model == "tiny-test-model"
    assert info.validation == {"agreement": 1.0}
    assert info.files["model.onnx"] == sha256_file(tiny_bundle.path / "model.onnx")


def test_tampered_file_fails_checksum_before_a_session_is_made(make_bundle):
    b = make_bundle()
    with (b.path / "config.json").open("a") as f:
        f.write("\n")  # still valid JSON, still the same labels: only the checksum can tell
    with pytest.raises(BundleError, match=r"config\.json: checksum mismatch"):
        read_bundle(b.path)
    with pytest.raises(BundleError, match="checksum"):
        Classifier.load(b.path)
    assert Classifier.load(b.path, verify=False).labels == list(b.labels)


def test_tampered_model_is_named(make_bundle):
    b = make_bundle()
    raw = bytearray((b.path / "model.onnx").read_bytes())
    raw[-5] ^= 0xFF
    (b.path / "model.onnx").write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"model\.onnx: checksum mismatch"):
        Classifier.load(b.path)


@pytest.mark.parametrize("name", ["tokenizer.json", "model.onnx", "special_tokens_map.json"])
def test_missing_listed_file(make_bundle, name):
    b = make_bundle()
    (b.path / name).unlink()
    with pytest.raises(BundleError, match=rf"{name}: listed in the manifest but missing"):
        read_bundle(b.path)


def test_missing_folder_and_manifest(tmp_path, make_bundle):
    with pytest.raises(BundleError, match="bundle folder not found"):
        read_bundle(tmp_path / "nope")
    b = make_bundle()
    (b.path / MANIFEST_NAME).unlink()
    with pytest.raises(BundleError, match=r"manifest\.json: manifest is missing"):
        read_bundle(b.path)


def test_bad_json_manifest(make_bundle):
    b = make_bundle()
    (b.path / MANIFEST_NAME).write_text('{"schema": 1, "labels": [', encoding="utf-8")
    with pytest.raises(BundleError, match=r"manifest\.json: not valid JSON"):
        read_bundle(b.path)


@pytest.mark.parametrize("schema", [2, 0, "1", None])
def test_unknown_schema(make_bundle, schema):
    b = make_bundle()
    _rewrite(b.path, schema=schema)
    with pytest.raises(BundleError, match="unknown manifest schema"):
        read_bundle(b.path)


def test_manifest_labels_must_match_config_order(make_bundle):
    b = make_bundle()
    _rewrite(b.path, labels=list(reversed(b.labels)))
    with pytest.raises(BundleError, match=r"config\.json: id2label .* does not match"):
        read_bundle(b.path)


def test_manifest_must_list_the_model(make_bundle):
    b = make_bundle()
    m = _manifest(b.path)
    del m["files"]["model.onnx"]
    (b.path / MANIFEST_NAME).write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(BundleError, match=r"does not list model\.onnx"):
        read_bundle(b.path)


@pytest.mark.parametrize("name", ["../outside.txt", "/etc/passwd"])
def test_file_names_cannot_leave_the_bundle(make_bundle, name):
    b = make_bundle()
    m = _manifest(b.path)
    m["files"][name] = "0" * 64
    (b.path / MANIFEST_NAME).write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(BundleError, match="outside the bundle"):
        read_bundle(b.path)


def test_bad_max_length(make_bundle):
    b = make_bundle()
    _rewrite(b.path, max_length="128")
    with pytest.raises(BundleError, match="max_length"):
        read_bundle(b.path)


def test_write_manifest_checks_labels_and_files(tiny_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle.path, copy)
    with pytest.raises(BundleError, match="does not match labels"):
        write_manifest(copy, labels=["a", "b", "c"], max_length=32, source_model="m", quantization="none")
    with pytest.raises(BundleError, match="quantization"):
        write_manifest(copy, labels=list(tiny_bundle.labels), max_length=32, source_model="m",
                       quantization="fp16")
    (copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match=r"tokenizer\.json: required bundle file is missing"):
        write_manifest(copy, labels=list(tiny_bundle.labels), max_length=32, source_model="m",
                       quantization="none")


def test_write_manifest_hashes_subfolders_and_rewrites(tiny_bundle, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_bundle.path, copy)
    (copy / "extra").mkdir()
    (copy / "extra" / "notes.txt").write_text("hello", encoding="utf-8")
    m = write_manifest(copy, labels=list(tiny_bundle.labels), max_length=64, source_model="m",
                       quantization="int8", validation={"agreement": 0.99})
    assert m == _manifest(copy)
    assert "extra/notes.txt" in m["files"] and MANIFEST_NAME not in m["files"]
    info = read_bundle(copy)
    assert (info.max_length, info.quantization) == (64, "int8")
    (copy / "extra" / "notes.txt").write_text("changed", encoding="utf-8")
    with pytest.raises(BundleError, match=r"notes\.txt: checksum mismatch"):
        read_bundle(copy)
