"""Confident learning on LLM labels: cleanlab must find injected label noise better than chance."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from llm2edge.errors import ConfigError
from llm2edge.hub.curate.confident import CurateConfig, curate, find_issues
from llm2edge.hub.curate.oof import CrossvalConfig
from llm2edge.hub.curate.rows import load_labels
from llm2edge.records import read_jsonl


def _precision(flagged: np.ndarray, flipped: np.ndarray) -> float:
    return float(flipped[flagged].mean()) if flagged.any() else 0.0


def test_flag_report_with_llm_probs(mrf_labels, tmp_path):
    path, rows, flipped, labels = mrf_labels
    result = curate(CurateConfig(labels=path, out=tmp_path / "cur", probs="llm",
                                 crossval=CrossvalConfig(progress=False)))
    out = read_jsonl(tmp_path / "cur" / "labels.jsonl")
    assert len(out) == len(rows)  # flag keeps every row
    assert result.n_flagged == sum(r["label_issue"] for r in out)
    assert all(0.0 <= r["issue_score"] <= 1.0 and r["suggested_label"] in labels for r in out)
    # binary task, label = argmax of the LLM's probabilities: the confident joint has no off-diagonal
    # mass, so cleanlab flags nothing (documented; the report says why)
    report = json.loads((tmp_path / "cur" / "report.json").read_text())
    assert report["label_is_argmax"] == 1.0 and result.n_flagged == 0 and report["note"]
    assert sum(c["rows"] for c in report["per_class"].values()) == len(rows)
    # the issue score still ranks: flipped items (less confident) score higher on average
    score = np.array([r["issue_score"] for r in out])
    assert score[flipped].mean() > score[~flipped].mean()


def test_crossval_drop_via_cli(mrf_labels, tmp_path, capsys, cli):
    pytest.importorskip("torch").set_num_threads(1)
    path, rows, flipped, labels = mrf_labels
    out_dir = tmp_path / "cv"
    assert cli("curate", "--labels", path, "--out", out_dir, "--probs", "crossval", "--action", "drop",
               "--folds", "4", "--max-length", "48", "--threads", "1") == 0
    report = json.loads((out_dir / "report.json").read_text())
    kept = read_jsonl(out_dir / "labels.jsonl")
    assert len(kept) == len(rows) - report["flagged"]
    assert not any(r["label_issue"] for r in kept)
    kept_ids = {r["id"] for r in kept}
    flagged = np.array([r["id"] not in kept_ids for r in rows])
    # embeddings + logistic regression trained on the noisy labels still point at the flipped ones
    assert _precision(flagged, flipped) > 1.5 * flipped.mean()
    assert "flagged" in capsys.readouterr().err
    assert sum(c["flagged"] for c in report["per_class"].values()) == report["flagged"]
    top = report["top"]
    assert top and [t["score"] for t in top] == sorted((t["score"] for t in top), reverse=True)
    assert top[0]["id"] in (out_dir / "report.md").read_text()
    assert report["drop_skew"] is None  # mrf labels are not that skewed, nor is what the drop keeps


def test_find_issues_crossval_scores_rank_noise(mrf_labels):
    _, rows, flipped, labels = mrf_labels
    # features that carry the gold label plus noise: the crossval model must rank flipped items high
    rng = np.random.default_rng(0)
    gold = [next(x for x in labels if x != r["label"]) if f else r["label"] for r, f in zip(rows, flipped)]
    feats = np.array([[1.0 if g == labels[0] else -1.0, 0.0] for g in gold])
    feats += rng.normal(0, 0.8, feats.shape)
    issues = find_issues(rows, labels, probs="crossval", features=feats, folds=5)
    order = np.argsort(-issues.score)
    top = order[: int(flipped.sum())]
    assert flipped[top].mean() > 2 * flipped.mean()


def test_error_rows_are_skipped_and_counted(mrf_labels, tmp_path):
    path, rows, _, _ = mrf_labels
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "bad1", "key": "kb1", "text": "x", "label": None, "probs": None,
                                 "error": "timeout"}) + "\n")
        # a retried item: an error row first, then its good row (append-only store): the good row wins
        handle.write(json.dumps({**rows[0], "error": "429"}) + "\n")
    data = load_labels(path)
    assert data.skipped_error == 1 and len(data.rows) == len(rows) and data.duplicates == 1
    result = curate(CurateConfig(labels=path, out=tmp_path / "c", probs="llm",
                                 crossval=CrossvalConfig(progress=False)))
    assert json.loads((tmp_path / "c" / "report.json").read_text())["skipped_error"] == 1
    assert result.n_rows == len(rows)


def test_bad_options_are_one_line_errors(mrf_labels, tmp_path, capsys, cli):
    path, *_ = mrf_labels
    for args, needle in ((["--probs", "magic"], "--probs"), (["--action", "burn"], "--action"),
                         (["--folds", "1"], "--folds"),
                         (["--oof-class-weight", "inverse"], "oof_class_weight")):
        assert cli("curate", "--labels", path, "--out", tmp_path / "o", *args) == 2
        err = capsys.readouterr().err.strip()
        # the option's name as the config field names it (ConfigError from CurateConfig, not click)
        assert err.startswith("llm2edge: error:") and needle.lstrip("-") in err and "\n" not in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "t", "label": "X", "probs": {"X": 1, "Y": 0}}\n{"id": "b"}\n')
    assert cli("curate", "--labels", bad, "--out", tmp_path / "o") == 2
    assert "row 2" in capsys.readouterr().err


def test_a_drop_that_leaves_one_label_is_a_warning(recorded, tmp_path, capsys, cli):
    """gpt-3.5-turbo's real answers on implicit hate (67% one label): a crossval model trained on them
    disputes nearly every minority answer, so dropping what cleanlab flags leaves one label on >= 95% of the
    kept rows. curate says so (warning line, report.json `drop_skew`, report.md) and the numbers are the
    kept file's own."""
    from llm2edge.defaults import COLLAPSE_SHARE
    from llm2edge.hub.curate.confident import drop_skew
    from llm2edge.hub.label.importer import ImportConfig, import_labels

    src = recorded / "implicit_hate__chatgpt.csv"
    pytest.importorskip("torch").set_num_threads(1)
    labels = "incitement,inferiority,irony,stereotypical,threatening,white_grievance"
    import_labels(ImportConfig(data=src, out=tmp_path / "labels.jsonl", labels=labels, label_col="llm_label"))
    rows = read_jsonl(tmp_path / "labels.jsonl")
    out_dir = tmp_path / "cv"
    assert cli("curate", "--labels", tmp_path / "labels.jsonl", "--out", out_dir, "--probs", "crossval",
               "--action", "drop", "--max-length", "64", "--threads", "1") == 0
    err = capsys.readouterr().err
    skew = json.loads((out_dir / "report.json").read_text())["drop_skew"]
    kept = read_jsonl(out_dir / "labels.jsonl")
    top_kept = max(sum(r["label"] == x for r in kept) for x in labels.split(","))
    assert skew and skew["kept"] == len(kept) and skew["after"] == round(top_kept / len(kept), 4)
    assert skew["after"] >= COLLAPSE_SHARE > skew["before"]
    assert skew["before"] == round(sum(r["label"] == skew["label"] for r in rows) / len(rows), 4)
    line = next(x for x in err.splitlines() if "warning" in x)
    assert f"'{skew['label']}' on {skew['after']:.0%}" in line and "--action flag" in line
    assert "--oof-class-weight balanced" in line
    assert "**warning**" in (out_dir / "report.md").read_text()
    # a drop that keeps the balance says nothing
    assert drop_skew(rows, np.zeros(len(rows), dtype=bool)) is None

    # the same answers with a class-balanced out-of-fold model: the minority answers are no longer outvoted,
    # so the drop keeps the label mix and what it drops is more often the teacher's mistake
    bal_dir = tmp_path / "balanced"
    assert cli("curate", "--labels", tmp_path / "labels.jsonl", "--out", bal_dir, "--probs", "crossval",
               "--action", "drop", "--max-length", "64", "--threads", "1",
               "--oof-class-weight", "balanced") == 0
    assert "warning" not in capsys.readouterr().err
    report = json.loads((bal_dir / "report.json").read_text())
    assert report["oof_class_weight"] == "balanced" and report["drop_skew"] is None
    gold = {r["text"]: r["gold_label"] for r in csv.DictReader(src.open(encoding="utf-8"))}

    def dropped_wrong(folder):
        kept = {r["id"] for r in read_jsonl(folder / "labels.jsonl")}
        gone = [r for r in rows if r["id"] not in kept]
        return sum(r["label"] != gold[r["text"]] for r in gone) / len(gone)

    assert dropped_wrong(bal_dir) > dropped_wrong(out_dir) + 0.1


def test_crossval_probs_do_not_depend_on_blas_threads():
    """The out-of-fold fits pin BLAS to one thread: the same probabilities whatever the machine's threads
    (a 2-thread BLAS moved them by ~4e-5, enough to move a cleanlab flag)."""
    from threadpoolctl import threadpool_limits

    from llm2edge.hub.curate.confident import crossval_probs

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 384))
    y = rng.integers(0, 6, size=400)
    with threadpool_limits(limits=1):
        one = crossval_probs(x, y, 6)
    with threadpool_limits(limits=2):
        two = crossval_probs(x, y, 6)
    assert np.array_equal(one, two)
    balanced = crossval_probs(x, y, 6, class_weight="balanced")
    assert balanced.shape == one.shape and not np.array_equal(balanced, one)
    with pytest.raises(ConfigError, match="class_weight"):
        crossval_probs(x, y, 6, class_weight="inverse")
