"""Export of a real multi-label MiniLM (issue 23.5): manifest, sigmoid vs torch, the per-pair int8 guard."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from llm2edge.errors import ExportError
from tests.helpers import cli_error as _fails


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _torch_probs(model_dir: Path, texts: list[str], max_length: int = 32) -> np.ndarray:
    """Sigmoid probabilities of the torch model, one text per call, independent of the export code."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.inference_mode():
        encoded = [tok([t], truncation=True, max_length=max_length, return_tensors="pt") for t in texts]
        return np.concatenate([torch.sigmoid(model(**enc).logits).numpy() for enc in encoded])


def _export(model_dir: Path, out: Path, **kwargs):
    from llm2edge.export import ExportConfig, export_bundle

    return export_bundle(ExportConfig(model=model_dir, out=out, threads=1, verbose=False, **kwargs))


@pytest.fixture(scope="module")
def ml_int8(multilabel_model, tmp_path_factory):
    """The default export (fused, int8) of the multi-label model with the gate off: int8 ships."""
    return _export(multilabel_model, tmp_path_factory.mktemp("ml-int8") / "bundle", min_agreement=0.0)


@pytest.fixture(scope="module")
def ml_fallback(multilabel_model, tmp_path_factory):
    """An export whose gate no int8 can pass (1.01): fp32 ships, with the refusal recorded."""
    return _export(multilabel_model, tmp_path_factory.mktemp("ml-fallback") / "bundle", min_agreement=1.01)


def test_manifest_says_multi_label_with_the_models_thresholds(ml_int8, multilabel_model):
    from llm2edge.edge.bundle import read_bundle

    config = json.loads((multilabel_model / "config.json").read_text(encoding="utf-8"))
    manifest = json.loads((ml_int8.bundle / "manifest.json").read_text(encoding="utf-8"))
    labels = [config["id2label"][str(i)] for i in range(7)]
    assert manifest["multi_label"] is True and manifest["labels"] == labels
    assert manifest["thresholds"] == config["label_thresholds"] and list(manifest["thresholds"]) == labels
    info = read_bundle(ml_int8.bundle)
    assert info.multi_label and info.quantization == "int8"
    np.testing.assert_array_equal(info.threshold_array, [config["label_thresholds"][x] for x in labels])


def test_int8_guard_judges_every_text_label_pair(ml_int8, multilabel_model):
    from llm2edge.edge.classifier import Classifier
    from llm2edge.labelsets import decide

    v = ml_int8.validation
    guard = v["int8_guard"]
    n_val = len(_rows(multilabel_model / "validation.csv"))
    n_train = len(_rows(multilabel_model / "train.csv"))
    assert (guard["n"], guard["labels"], guard["unit"]) == (n_val + n_train, 7, "pairs")
    assert guard["pairs"] == 7 * guard["n"] and (guard["from_validation"], guard["from_training"]) == (48, 64)
    assert guard["real_flips"] + guard["near_tie_flips"] == round((1 - guard["agreement"]) * guard["pairs"])
    assert guard["judged_agreement"] >= guard["agreement"] and 0 <= guard["set_agreement"] <= 1
    assert v["multi_label"] is True and v["agreement_unit"] == "(text, label) pairs"
    # the validation-only per-pair agreement, recomputed from torch and the shipped bundle independently
    texts = [r["text"] for r in _rows(multilabel_model / "validation.csv")]
    clf = Classifier.load(ml_int8.bundle, threads=1)
    cuts = clf.info.threshold_array
    ours, theirs = decide(clf.predict_proba(texts), cuts), decide(_torch_probs(multilabel_model, texts), cuts)
    assert abs(v["agreement_int8"] - float(np.mean(ours == theirs))) <= 1 / ours.size + 1e-9
    assert "(text, label) pairs" in ml_int8.table() and "subset accuracy" in ml_int8.table()


def test_fp32_sigmoid_probabilities_equal_torch(ml_fallback, multilabel_model):
    from llm2edge.edge.classifier import Classifier

    texts = [r["text"] for r in _rows(multilabel_model / "validation.csv")][:16]
    clf = Classifier.load(ml_fallback.bundle, threads=1)
    assert clf.multi_label and clf.info.quantization == "none"
    probs = clf.predict_proba(texts)
    assert not np.allclose(probs.sum(axis=1), 1.0)  # independent probabilities, not a softmax
    np.testing.assert_allclose(probs, _torch_probs(multilabel_model, texts), atol=1e-4, rtol=0)
    v = ml_fallback.validation
    assert v["max_prob_diff_fp32"] <= 1e-4 and v["agreement_fp32"] == 1.0


def test_low_pair_agreement_falls_back_to_fp32(ml_fallback):
    from llm2edge.edge.bundle import read_bundle

    info = read_bundle(ml_fallback.bundle)
    assert info.quantization == "none" and info.multi_label
    v = info.validation
    assert "(text, label) pairs" in v["fallback_reason"] and "< --min-agreement 1.01" in v["fallback_reason"]
    assert isinstance(v["agreement_int8"], float) and v["int8_guard"]["pairs"] == 7 * v["int8_guard"]["n"]


def test_thresholds_naming_an_unknown_label_are_refused(multilabel_model, tmp_path):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(multilabel_model, model)
    config = json.loads((model / "config.json").read_text(encoding="utf-8"))
    config["label_thresholds"]["boredom"] = 0.5
    (model / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ExportError, match=r"config.json: label_thresholds names unknown label 'boredom'"):
        _export(model, tmp_path / "bundle")


def test_bad_validation_sets_are_one_line_naming_file_and_row(multilabel_model, trained_model, tmp_path,
                                                               capsys):
    base = ["export", "--model", str(multilabel_model), "--out", str(tmp_path / "b")]
    cases = {"unknown.csv": ("text,label\nhello,joy\nworld,joy;boredom\n", ":3: unknown label 'boredom'"),
             "twice.csv": ("text,label\nhello,joy;anger;joy\n", ":2: label 'joy' given twice"),
             "cols.csv": ("sentence,label\nhello,joy\n", ": missing column(s) text")}
    for name, (body, message) in cases.items():
        (tmp_path / name).write_text(body, encoding="utf-8")
        assert f"{tmp_path / name}{message}" in _fails([*base, "--validate", str(tmp_path / name)], capsys)
    sets = tmp_path / "sets.csv"  # label sets given to a single-label model
    sets.write_text("text,label\nhello,funny\nworld,funny;not_funny\n", encoding="utf-8")
    line = _fails(["export", "--model", str(trained_model), "--out", str(tmp_path / "b"), "--validate",
                   str(sets)], capsys)
    assert f"{sets}:3: label 'funny;not_funny' is a list of labels, but the task is single-label" in line
    assert not (tmp_path / "b").exists()


def test_predict_then_evaluate_on_the_real_bundle_matches_the_manifest(ml_int8, multilabel_model, tmp_path):
    """`predict` + `evaluate` on the shipped bundle give the subset accuracy and micro-F1 export recorded."""
    from llm2edge.cli import main
    from llm2edge.edge.evaluate import evaluate_files

    gold = multilabel_model / "validation.csv"
    out = tmp_path / "pred.jsonl"
    assert main(["predict", "-b", str(ml_int8.bundle), "-i", str(gold), "-o", str(out), "--threads", "1"]) \
        in (None, 0)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 48 and all(isinstance(r["label"], list) for r in rows)
    assert any(r["label"] for r in rows)  # not all-empty decisions
    report, how = evaluate_files(out, gold)
    v = ml_int8.validation
    assert how == "id" and report.n == 48
    assert round(report.subset_accuracy, 6) == v["accuracy_int8"]
    assert round(report.micro_f1, 6) == v["micro_f1_int8"]
