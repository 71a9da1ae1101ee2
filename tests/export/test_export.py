"""End-to-end export of a real fine-tuned MiniLM: bundle layout, manifest, validation numbers, fallbacks."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from llm2edge.errors import ExportError

EXPECTED_FILES = {"model.onnx", "config.json", "tokenizer.json", "tokenizer_config.json",
                  "special_tokens_map.json", "vocab.txt", "manifest.json"}
VALIDATION_KEYS = {"agreement_fp32", "agreement_int8", "max_logit_diff_fp32", "max_logit_diff_int8",
                   "accuracy_torch", "accuracy_fp32", "accuracy_int8", "n", "per_channel"}


def _texts(model_dir: Path) -> list[str]:
    with (model_dir / "validation.csv").open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def _op_types(path: Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path)).graph.node}


def _torch_logits(model_dir: Path, texts: list[str], max_length: int) -> np.ndarray:
    """Logits of the torch model, computed independently of the export code."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        return np.concatenate([
            model(**tok([t], truncation=True, max_length=max_length, return_tensors="pt")).logits.numpy()
            for t in texts])


def _export(model_dir: Path, out: Path, **kwargs):
    from llm2edge.export import ExportConfig, export_bundle

    return export_bundle(ExportConfig(model=model_dir, out=out, threads=1, verbose=False, **kwargs))


@pytest.fixture(scope="module")
def int8_export(trained_model, tmp_path_factory):
    """The default export (fused, int8) with the agreement gate off, so int8 always ships."""
    out = tmp_path_factory.mktemp("int8") / "bundle"
    return _export(trained_model, out, min_agreement=0.0)


@pytest.fixture(scope="module")
def fp32_export(trained_model, tmp_path_factory):
    """An unfused fp32 export (--quantize none --no-optimize)."""
    out = tmp_path_factory.mktemp("fp32") / "bundle"
    return _export(trained_model, out, quantize="none", optimize=False)


def test_int8_bundle_layout_manifest_and_checksums(int8_export, trained_model):
    from llm2edge.edge.bundle import read_bundle, sha256_file

    bundle = int8_export.bundle
    assert {p.name for p in bundle.iterdir()} == EXPECTED_FILES
    assert [p.name for p in bundle.parent.iterdir()] == ["bundle"]  # no staging leftovers
    info = read_bundle(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["schema"] == 1 and manifest["quantization"] == "int8" == info.quantization
    assert manifest["labels"] == ["funny", "not_funny"] and manifest["max_length"] == 32
    assert set(manifest["files"]) == EXPECTED_FILES - {"manifest.json"}
    assert manifest["files"]["model.onnx"] == sha256_file(bundle / "model.onnx")
    assert manifest["source_model"] == trained_model.name  # a name, never this machine's path (14.6)
    assert manifest["validation"]["validation_file"] == "validation.csv"
    assert str(trained_model.parent) not in (bundle / "manifest.json").read_text(encoding="utf-8")
    assert set(manifest["versions"]) >= {"onnx", "onnxruntime", "optimum", "transformers", "torch"}
    v = manifest["validation"]
    assert set(v) >= VALIDATION_KEYS
    assert v["n"] == 48 and v["agreement_fp32"] == 1.0 and v["max_logit_diff_fp32"] < 1e-3
    assert 0.0 <= v["agreement_int8"] <= 1.0 and v["max_logit_diff_int8"] > 0.0
    assert isinstance(v["per_channel"], bool) and v["order"] == "optimize, then quantize"
    assert v["fused_ops"].get("Attention", 0) == 6  # MiniLM-L6: one fused attention per layer
    assert v["size_int8"] * 3 < v["size_fp32"] and int8_export.sizes["int8"] == v["size_int8"]
    assert "MatMulInteger" in _op_types(bundle / "model.onnx")
    tok = json.loads((bundle / "tokenizer.json").read_text(encoding="utf-8"))
    assert tok["padding"] is None and tok["truncation"]["max_length"] == 32
    guard = v["int8_guard"]  # no training data named in this fixture's train_meta.json: validation only
    assert (guard["n"], guard["from_validation"], guard["from_training"]) == (48, 48, 0)
    assert guard["real_flips"] + guard["near_tie_flips"] == round((1 - guard["agreement"]) * 48)
    table = int8_export.table()
    assert "onnx int8" in table and "shipped: int8" in table and "int8 guard: 48 texts" in table


def test_int8_bundle_loads_in_optimum_with_the_same_logits(int8_export, trained_model):
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    from llm2edge.edge.classifier import Classifier

    texts = _texts(trained_model)[:8]
    ort_model = ORTModelForSequenceClassification.from_pretrained(int8_export.bundle)
    tok = AutoTokenizer.from_pretrained(int8_export.bundle)
    assert ort_model.config.id2label == {0: "funny", 1: "not_funny"}
    # transformers ignores tokenizer.json's truncation unless asked; model_max_length is max_length.
    theirs = np.concatenate([ort_model(**tok([t], truncation=True, return_tensors="np")).logits
                             for t in texts])
    ours = Classifier.load(int8_export.bundle, threads=1).predict_logits(texts, batch_size=1)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_fp32_bundle_matches_torch(fp32_export, trained_model):
    from llm2edge.edge.classifier import Classifier

    bundle = fp32_export.bundle
    v = fp32_export.validation
    assert fp32_export.quantization == "none" and v["agreement_int8"] is None and not v["optimized"]
    assert v["agreement_fp32"] == 1.0 and v["accuracy_fp32"] == v["accuracy_torch"]
    assert {p.name for p in bundle.iterdir()} == EXPECTED_FILES
    assert "MatMulInteger" not in _op_types(bundle / "model.onnx")
    texts = _texts(trained_model)[:12]
    ours = Classifier.load(bundle, threads=1).predict_logits(texts)
    np.testing.assert_allclose(ours, _torch_logits(trained_model, texts, 32), atol=1e-4)


def test_low_agreement_falls_back_to_fp32_and_replaces_old_bundle(trained_model, fp32_export, tmp_path,
                                                                  capfd):
    import shutil

    from llm2edge.edge.bundle import read_bundle

    out = tmp_path / "bundle"
    shutil.copytree(fp32_export.bundle, out)  # an earlier bundle at the destination gets replaced
    result = _export(trained_model, out, min_agreement=1.01, max_length=24)
    err = capfd.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("llm2edge: warning:")]
    assert len(warnings) == 1 and "shipping fp32 instead" in warnings[0]
    info = read_bundle(out)
    assert info.quantization == "none" == result.quantization and info.max_length == 24
    assert "< --min-agreement 1.01" in info.validation["fallback_reason"]
    assert isinstance(info.validation["agreement_int8"], float)  # int8 was measured, then rejected
    assert "MatMulInteger" not in _op_types(out / "model.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


@pytest.mark.slow
def test_strict_raises_and_leaves_nothing(trained_model, tmp_path):
    out = tmp_path / "bundle"
    with pytest.raises(ExportError, match=r"int8 refused: int8 vs torch on 48 texts .* \(--strict\)"):
        _export(trained_model, out, min_agreement=1.01, strict=True)
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_non_bundle_destination(trained_model, tmp_path):
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ExportError, match="not empty and is not a bundle"):
        _export(trained_model, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


# -- issue 14.5-14.7 on the real export ------------------------------------------------------------------
def test_guard_uses_training_texts_private_modes_and_cleans_leftovers(trained_model, example_dir, tmp_path,
                                                                      capfd, dead_pid):
    """train_meta.json names the training data: the guard tops 48 validation texts up to 120; under umask
    077 the bundle stays private; a killed export's leftovers beside --out are removed."""
    import os
    import shutil
    import stat

    model = tmp_path / "model"
    shutil.copytree(trained_model, model)
    meta = json.loads((model / "train_meta.json").read_text(encoding="utf-8"))
    meta.update(data=str(example_dir / "train.csv"), text_col="text")
    (model / "train_meta.json").write_text(json.dumps(meta), encoding="utf-8")
    out = tmp_path / "out" / "bundle"
    dead = dead_pid
    for name in (f".bundle.tmp-{dead}-abc", f".bundle.old-{dead}"):
        (out.parent / name / "work").mkdir(parents=True)
    old = os.umask(0o077)
    try:
        result = _export(model, out, guard_texts=120, min_agreement=0.9)
    finally:
        os.umask(old)
    err = capfd.readouterr().err
    guard = result.validation["int8_guard"]
    assert (guard["n"], guard["from_validation"], guard["from_training"]) == (120, 48, 72)
    assert result.validation["n"] == 48  # accuracy and agreement_* stay on the labelled validation rows
    shipped = guard["judged_agreement"] >= 0.9
    assert result.quantization == ("int8" if shipped else "none")
    assert ("int8 refused" in err) != shipped
    assert "judged on only" not in err  # 120 texts resolve 0.9
    assert sorted(p.name for p in out.parent.iterdir()) == ["bundle"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}


def test_int8_output_does_not_depend_on_batch_chunk_threads_or_resume(int8_export, example_dir, tmp_path):
    """Issue 14.7 on the real MiniLM int8 bundle: probabilities bit-identical at batch 1/7/32 and 1-2
    threads; predict files byte-identical across chunk sizes and a resumed run."""
    from llm2edge.edge.classifier import Classifier
    from llm2edge.edge.stream import predict_to_path, run_path
    from llm2edge.records import read_records

    src = example_dir / "test.csv"
    records = read_records(src)[:150]
    texts = [r.text for r in records]
    ref = Classifier.load(int8_export.bundle, threads=1).predict_proba(texts, batch_size=1)
    for threads in (1, 2):
        clf = Classifier.load(int8_export.bundle, threads=threads)
        for batch_size in (7, 32):
            got = clf.predict_proba(texts, batch_size=batch_size)
            assert np.array_equal(got, ref), (threads, batch_size, float(np.abs(got - ref).max()))
    clf = Classifier.load(int8_export.bundle, threads=1)
    whole = tmp_path / "whole.jsonl"
    predict_to_path(clf, records, whole, chunk_size=2048, batch_size=32)
    data = whole.read_bytes()
    for chunk in (1, 13):
        other = tmp_path / f"chunk{chunk}.jsonl"
        predict_to_path(clf, records, other, chunk_size=chunk, batch_size=7)
        assert other.read_bytes() == data
    part = tmp_path / "part.jsonl"
    cut = data.index(b"\n", len(data) // 3) + 20  # a torn row, as after a crash mid-write
    part.write_bytes(data[:cut])
    run_path(part).write_bytes(run_path(whole).read_bytes())  # the crashed run's record, as it left it
    summary = predict_to_path(clf, records, part, chunk_size=16, batch_size=5, resume=True)
    assert summary.skipped > 0 and part.read_bytes() == data
