"""Multi-label curation: cleanlab's multi-label issues on real GoEmotions texts with wrong label sets
injected, per-label probabilities from the LLM or out of fold (real MiniLM embeddings, real cleanlab)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llm2edge.hub.curate.multilabel import crossval_label_probs, find_multi_issues, label_matrix
from llm2edge.records import read_jsonl


def test_crossval_finds_most_injected_wrong_sets(emotion_labels, tmp_path, cli, capsys):
    pytest.importorskip("torch").set_num_threads(1)
    path, rows, labels, wrong = emotion_labels
    out = tmp_path / "cur"
    assert cli("curate", "--labels", path, "--out", out, "--probs", "crossval", "--folds", "5",
               "--max-length", "32", "--threads", "1") == 0
    assert "flagged" in capsys.readouterr().err
    curated = read_jsonl(out / "labels.jsonl")
    assert [r["id"] for r in curated] == [r["id"] for r in rows]  # flag keeps every row, in order
    flagged = np.array([r["label_issue"] for r in curated])
    score = np.array([r["issue_score"] for r in curated])
    # most of the injected wrong sets are flagged, and flagged rows are wrong more often than chance
    assert (flagged & wrong).sum() / wrong.sum() > 0.5
    assert wrong[flagged].mean() > 1.2 * wrong.mean()
    # the issue score ranks: among as many top-scored rows as there are wrong ones, twice the base rate
    top = np.argsort(-score, kind="stable")[: wrong.sum()]
    assert wrong[top].mean() > 2 * wrong.mean()
    for row, given in zip(curated, rows):
        assert row["label"] == given["label"]  # the LLM's set is kept as it was
        assert set(row["suggested_label"]) <= set(labels)
        assert list(row["label_confidence"]) == labels
        assert all(0.0 <= v <= 1.0 for v in row["label_confidence"].values())
    report = json.loads((out / "report.json").read_text())
    assert report["multi_label"] and report["probs"] == "crossval" and report["folds"] == 5
    assert report["flagged"] == int(flagged.sum())
    assert {k: v["rows"] for k, v in report["per_label"].items()} == {
        name: sum(name in r["label"] for r in rows) for name in labels}
    assert report["top"][0]["id"] in (out / "report.md").read_text()
    assert "drop_skew" in report  # flag keeps every row: nothing lost, nothing skewed
    assert report["drop_skew"] is None


def test_a_drop_that_loses_a_label_or_leaves_one_set_is_named():
    """drop_skew on label sets: a label all of whose rows are dropped is lost; one set left on >= 95% of
    the kept rows is a collapse; the warning line says both and how to keep the rows."""
    from llm2edge.hub.curate.confident import drop_skew, drop_skew_line

    rows = ([{"label": ["joy"]}] * 60 + [{"label": ["anger", "fear"]}] * 10 + [{"label": ["fear"]}] * 10
            + [{"label": []}] * 20)
    fear = np.array(["fear" in r["label"] for r in rows])
    assert drop_skew(rows, np.zeros(len(rows), dtype=bool)) is None
    assert drop_skew(rows, fear) == {"lost": ["anger", "fear"], "kept": 80}
    collapse = np.array([not (i < 60 or i in (70, 71)) for i in range(len(rows))])  # 60 joy, 2 fear kept
    skew = drop_skew(rows, collapse)
    assert skew == {"label": "joy", "before": 0.6, "after": 0.9677, "lost": ["anger"], "kept": 62}
    line = drop_skew_line(skew, "none")
    assert "'joy' on 97% of the 62 kept rows (was 60%)" in line and "carrying 'anger'" in line
    assert "--action flag" in line and "--oof-class-weight balanced" in line
    empty = np.array([bool(r["label"]) for r in rows])  # only the empty sets are kept
    assert drop_skew(rows, empty)["label"] == "(empty set)"


def test_llm_probs_give_per_label_confidence(emotion_labels, tmp_path, cli):
    path, rows, labels, wrong = emotion_labels
    out = tmp_path / "cur"
    assert cli("curate", "--labels", path, "--out", out, "--probs", "llm", "--action", "drop") == 0
    kept = read_jsonl(out / "labels.jsonl")
    report = json.loads((out / "report.json").read_text())
    assert len(kept) == len(rows) - report["flagged"] == report["written"]
    assert report["note"] and report["set_is_thresholded"] == 1.0
    by_id = {r["id"]: r for r in rows}
    for row in kept:
        probs = by_id[row["id"]]["probs"]
        # the confidence in each decision: p for a label in the set, 1 - p for one left out
        assert row["label_confidence"] == {
            name: round(probs[name] if name in row["label"] else 1 - probs[name], 6) for name in labels}
        assert row["suggested_label"] == row["label"]  # the set is the LLM's probabilities thresholded
    issues = find_multi_issues(rows, labels, probs="llm")
    assert issues.score[wrong].mean() > issues.score[~wrong].mean()


def test_crossval_probs_are_per_label_and_out_of_fold(emotion_labels):
    _, rows, labels, _ = emotion_labels
    given = label_matrix(rows, labels)
    rng = np.random.default_rng(0)
    # features that carry label 0 exactly and nothing else: its out-of-fold probability follows it
    features = np.column_stack([given[:, 0] * 4.0 - 2.0, rng.normal(size=len(rows))])
    probs = crossval_label_probs(features, given, folds=4, seed=0)
    assert probs.shape == given.shape and ((probs > 0) & (probs < 1)).all()
    assert given[:, 0].sum() >= 4
    assert probs[given[:, 0] == 1, 0].min() > probs[given[:, 0] == 0, 0].max()
    # the rows do not sum to 1: each label is its own probability
    assert not np.allclose(probs.sum(axis=1), 1.0)


def test_tiny_file_names_the_labels_too_rare_to_judge(tmp_path, cli, capsys):
    pytest.importorskip("torch").set_num_threads(1)
    from .test_label_studio import RECORDED

    labels_file = RECORDED / "multilabel_labels.jsonl"  # 8 items; fear, neutral, sadness on one row each
    assert cli("curate", "--labels", labels_file, "--out", tmp_path / "c", "--probs", "crossval",
               "--max-length", "32", "--threads", "1") == 0
    report = json.loads((tmp_path / "c" / "report.json").read_text())
    assert report["folds"] == 5 and report["rows"] == report["written"] == 8
    rare = [name for name, c in report["per_label"].items() if c["rows"] <= 1]
    assert rare == ["fear", "neutral", "sadness"]
    assert report["warnings"] == [f"{', '.join(repr(n) for n in rare)}: carried by at most one row (or "
                                  "missing from at most one), too few for cleanlab to judge those decisions"]
    assert report["warnings"][0] in capsys.readouterr().err
