"""A multi-label task end to end on real Reddit comments (examples/reddit_emotions, GoEmotions' Ekman
labels): label (the embedded SmolLM2, one yes/no per label) → curate (crossval, per-label confidence) →
sample-experts → merge-experts (experts simulated from the gold sets) → train (sigmoid + BCE, thresholds
tuned) → export (int8, per-label guard) → predict in a base-only virtualenv (no torch) →
evaluate against gold."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm2edge.records import read_jsonl

from .helpers import read_csv, write_csv
from .test_end_to_end import REPO, _llm2edge, edge_venv  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow

EXAMPLE = REPO / "examples" / "reddit_emotions"
LABELS = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]


def _sample(src: Path, n: int, dst: Path) -> Path:
    """The first n rows of an example file, with ids r0, r1, ..."""
    rows = read_csv(src)[:n]
    return write_csv(dst, [{"id": f"r{i}", "text": r["text"], "label": r["label"]}
                           for i, r in enumerate(rows)])


def test_multi_label_task_from_llm_to_edge(tmp_path: Path, edge_venv: Path) -> None:  # noqa: F811
    gold = _sample(EXAMPLE / "train.csv", 40, tmp_path / "gold.csv")
    test = _sample(EXAMPLE / "test.csv", 120, tmp_path / "test.csv")
    gold_sets = {r["id"]: r["label"].split(";") for r in read_csv(gold)}

    # label: a set per comment, each label's own probability
    labels = tmp_path / "labels.jsonl"
    _llm2edge("label", "--task", "emotions", "--data", str(gold), "--id-col", "id", "--out", str(labels),
              "--threads", "1", "--no-progress")
    rows = read_jsonl(labels)
    assert len(rows) == 40 and all(r["error"] is None for r in rows)
    for r in rows:
        assert isinstance(r["label"], list) and r["label"] and set(r["label"]) <= set(LABELS)
        assert sorted(r["probs"]) == LABELS and all(0 <= p <= 1 for p in r["probs"].values())
        over = [lab for lab in LABELS if r["probs"][lab] >= 0.5]
        assert r["label"] == (over or [max(LABELS, key=r["probs"].get)])

    # curate: cleanlab's multi-label issues on out-of-fold confidences; every row kept, sets intact
    _llm2edge("curate", "--labels", str(labels), "--out", str(tmp_path / "curated"), "--probs", "crossval",
              "--folds", "3", "--threads", "1")
    curated = tmp_path / "curated" / "labels.jsonl"
    kept = read_jsonl(curated)
    report = json.loads((tmp_path / "curated" / "report.json").read_text())
    assert report["rows"] == 40 and report["flagged"] == sum(r["label_issue"] for r in kept), report
    assert {r["id"] for r in kept} == {r["id"] for r in rows}
    assert all(isinstance(r["label"], list) for r in kept)

    # experts: a quarter of the rows reviewed, the reviewers simulated by the gold sets
    experts = tmp_path / "experts"
    _llm2edge("sample-experts", "--labels", str(curated), "--out", str(experts), "--fraction", "0.25",
              "--threads", "1")
    merged = tmp_path / "merged.jsonl"
    _llm2edge("merge-experts", "--labels", str(curated), "--reviewed", str(experts), "--out", str(merged),
              "--simulate-from", str(gold), "--gold-id-col", "id")
    final = read_jsonl(merged)
    by_expert = [r for r in final if r.get("source") == "expert"]
    assert len(by_expert) == 10 and len(final) == 40
    assert all(sorted(r["label"]) == sorted(gold_sets[r["id"]]) for r in by_expert)

    # train: a multi-label head with tuned per-label thresholds
    model = tmp_path / "model"
    _llm2edge("train", "-d", str(merged), "-o", str(model), "--multi-label", "--epochs", "1",
              "--min-steps", "0", "--max-length", "64", "--threads", "1", "--no-resume")
    config = json.loads((model / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert sorted(config["label_thresholds"]) == LABELS

    # export: int8 unless its per-label decisions disagree with torch
    bundle = tmp_path / "bundle"
    _llm2edge("export", "--model", str(model), "--out", str(bundle), "--threads", "1")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["multi_label"] is True and sorted(manifest["thresholds"]) == LABELS

    # predict with the base install only: `;`-joined sets and p_<label> consistent with the thresholds
    pred = tmp_path / "pred.csv"
    _llm2edge("predict", "--bundle", str(bundle), "--input", str(test), "--output", str(pred),
              "--id-col", "id", "--threads", "1", python=str(edge_venv / "bin" / "python"))
    out = read_csv(pred)
    assert [r["id"] for r in out] == [f"r{i}" for i in range(120)]
    for r in out:
        chosen = [x for x in r["label"].split(";") if x]
        assert chosen == [lab for lab in LABELS if float(r[f"p_{lab}"]) >= manifest["thresholds"][lab]]

    # evaluate: the multi-label report against gold
    report = json.loads(_llm2edge("evaluate", "--pred", str(pred), "--gold", str(test), "--json").stdout)
    assert report["multi_label"] is True and report["n"] == 120
    assert [c["label"] for c in report["per_label"]] == LABELS
    assert 0 <= report["micro_f1"] <= 1 and 0 <= report["hamming_loss"] <= 1
