"""The bundle manifest: write_manifest hashes every file, read_bundle verifies all of it (and nothing else is
in the folder: issue 14.8)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
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


@pytest.mark.parametrize("schema", [3, 0, "1", None, True])
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


# -- issue 14.8: the check covers what the runtime loads and nothing else ------------------------------------
# Refused: symbolic links anywhere in the bundle (model.onnx or manifest.json pointing at a copy outside, a
# listed link to /etc/passwd, a path through a linked folder), files the manifest does not list
# (model.onnx.data would be loaded by onnxruntime as external weights), a manifest max_length the model
# cannot take, a quantization the model's operators contradict. A failure inside onnxruntime is one line.

def test_model_replaced_by_a_link_to_a_copy_outside(make_bundle, tmp_path):
    b = make_bundle()
    outside = tmp_path / "elsewhere.onnx"
    shutil.copy(b.path / "model.onnx", outside)
    (b.path / "model.onnx").unlink()
    (b.path / "model.onnx").symlink_to(outside)  # same bytes, same checksum
    with pytest.raises(BundleError, match=r"model\.onnx: is a symbolic link"):
        read_bundle(b.path)


def test_manifest_replaced_by_a_link(make_bundle, tmp_path):
    b = make_bundle()
    outside = tmp_path / "manifest-copy.json"
    shutil.copy(b.path / "manifest.json", outside)
    (b.path / MANIFEST_NAME).unlink()
    (b.path / MANIFEST_NAME).symlink_to(outside)
    with pytest.raises(BundleError, match=r"manifest\.json: is a symbolic link"):
        read_bundle(b.path)


def test_listed_link_to_etc_passwd(make_bundle):
    if not Path("/etc/passwd").is_file():
        pytest.skip("no /etc/passwd here")
    b = make_bundle()
    (b.path / "notes.txt").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match="symbolic link"):  # export cannot list it either
        write_manifest(b.path, labels=list(b.labels), max_length=b.max_length, source_model="x",
                       quantization="none")
    manifest = _manifest(b.path)
    manifest["files"]["notes.txt"] = sha256_file("/etc/passwd")  # a hand-made listing
    (b.path / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match=r"notes\.txt: is a symbolic link"):
        read_bundle(b.path)


def test_path_through_a_linked_folder(make_bundle, tmp_path):
    b = make_bundle()
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.move(str(b.path / "tokenizer.json"), outside / "tokenizer.json")
    (b.path / "sub").symlink_to(outside, target_is_directory=True)
    (b.path / "tokenizer.json").write_bytes((outside / "tokenizer.json").read_bytes())
    manifest = _manifest(b.path)
    manifest["files"]["sub/tokenizer.json"] = sha256_file(outside / "tokenizer.json")
    (b.path / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match=r"sub: is a symbolic link"):
        read_bundle(b.path)


def test_unlisted_external_weights_file(make_bundle):
    b = make_bundle()
    (b.path / "model.onnx.data").write_bytes(b"\0" * 64)
    with pytest.raises(BundleError, match=r"model\.onnx\.data: not listed in the manifest"):
        read_bundle(b.path)
    with pytest.raises(BundleError, match="not listed"):  # verify=False checks the listing too
        read_bundle(b.path, verify=False)


def test_unknown_quantization_in_the_manifest(make_bundle):
    b = make_bundle()
    _rewrite(b.path, quantization="int4")
    with pytest.raises(BundleError, match="unknown quantization 'int4'"):
        read_bundle(b.path)


@pytest.mark.parametrize("in_config", [True, False], ids=["config-states-positions", "forward-pass-probe"])
def test_edited_max_length_fails_at_load_not_mid_run(make_bundle, tmp_path, in_config):
    b = make_bundle(positions=64, max_length=48, positions_in_config=in_config)
    clf = Classifier.load(b.path, threads=1)
    assert clf.predict(["a short text"])  # fits: 48 <= 64 positions
    assert clf.info.positions == (64 if in_config else None)
    _rewrite(b.path, max_length=100000)
    with pytest.raises(BundleError, match=r"manifest\.json: max_length 100000 does not fit the model"):
        Classifier.load(b.path, threads=1)
    if in_config:  # stated in config.json: read_bundle alone refuses it, without running the model
        with pytest.raises(BundleError, match=r"100000 does not fit the model .*config\.json: 64 positions"):
            read_bundle(b.path)
    else:  # not stated: only the forward pass at load can tell
        assert read_bundle(b.path).max_length == 100000
    out = tmp_path / "p.jsonl"
    proc = subprocess.run([sys.executable, "-m", "llm2edge", "predict", "-b", str(b.path), "-o", str(out),
                           "some text"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "max_length 100000 does not fit the model" in lines[0], proc.stderr
    assert not out.exists()  # nothing written, not an empty file


def test_failure_inside_onnxruntime_mid_run_is_one_line(make_bundle, tmp_path):
    """A model whose embedding has fewer rows than the tokenizer's vocabulary fails on the second text."""
    b = make_bundle(vocab_rows=1100)  # MiniLM ids: [CLS] 101, [SEP] 102, 'a' 1037, 'the' 1996
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,a\n2,the house\n3,a\n", encoding="utf-8")
    out = tmp_path / "p.jsonl"
    proc = subprocess.run([sys.executable, "-m", "llm2edge", "predict", "-b", str(b.path), "-i", str(src),
                           "-o", str(out), "--chunk-size", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "model.onnx: onnxruntime failed on 1 text(s) of 4 tokens" in lines[0]
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["1"]  # --resume goes on


def test_quantization_must_match_the_model(make_bundle):
    """A dynamic int8 model whose manifest claims fp32 would be batched (and batch-dependent): refused."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    b = make_bundle()
    model = b.path / "model.onnx"
    quantize_dynamic(model, model, weight_type=QuantType.QInt8)
    write_manifest(b.path, labels=list(b.labels), max_length=b.max_length, source_model="x",
                   quantization="none")
    with pytest.raises(BundleError, match="quantization is 'none' but model.onnx holds dynamic int8"):
        Classifier.load(b.path, threads=1)
    write_manifest(b.path, labels=list(b.labels), max_length=b.max_length, source_model="x",
                   quantization="int8")
    clf = Classifier.load(b.path, threads=1)
    assert clf.row_at_a_time and clf.predict(["fine"])


def test_bundle_folder_itself_may_be_a_link(make_bundle, tmp_path):
    b = make_bundle()
    link = tmp_path / "current"
    link.symlink_to(b.path, target_is_directory=True)
    assert read_bundle(link).labels == list(b.labels)
    assert os.path.islink(link)


def test_source_folder_is_found_next_to_the_bundle(make_bundle, tmp_path):
    """Manifests store the model folder's name (no build path); tools find it beside the bundle."""
    b = make_bundle()
    write_manifest(b.path, labels=list(b.labels), max_length=b.max_length, source_model="model",
                   quantization="none")
    assert read_bundle(b.path).source_folder is None
    (tmp_path / "model").mkdir()
    assert read_bundle(b.path).source_folder == tmp_path / "model"
    old_style = str(tmp_path / "model")  # an older manifest's absolute path still works where it exists
    write_manifest(b.path, labels=list(b.labels), max_length=b.max_length, source_model=old_style,
                   quantization="none")
    assert read_bundle(b.path).source_folder == tmp_path / "model"


@pytest.mark.parametrize(("config", "positions"), [
    ({"model_type": "bert", "max_position_embeddings": 512}, 512),
    ({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}, 512),
    ({"model_type": "xlm-roberta", "max_position_embeddings": 514}, 512),
    ({"model_type": "deberta-v2", "max_position_embeddings": 512}, None),  # relative positions: probe
    ({"model_type": "llm2edge-static"}, None),
    ({"model_type": "bert"}, None),
    ({"model_type": "bert", "max_position_embeddings": True}, None),
])
def test_model_positions_from_config(config, positions):
    from llm2edge.edge.bundle import model_positions

    assert model_positions(config) == positions


def test_write_manifest_refuses_a_max_length_past_the_positions(make_bundle):
    b = make_bundle(positions=64, max_length=48)
    with pytest.raises(BundleError, match=r"max_length 65 does not fit the model"):
        write_manifest(b.path, labels=list(b.labels), max_length=65, source_model="m", quantization="none")
