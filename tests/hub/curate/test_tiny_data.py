"""Curation on very little data says what is true (issue 24): cleanlab's own warnings are told in
llm2edge's words, report.json records the folds that ran, and a flat crossval ranking is not told to rank by
crossval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("cleanlab")
pytest.importorskip("torch")


def _labels(tmp_path: Path, cli, capfd, rows: list[tuple[str, str]], labels: str) -> Path:
    """labels.jsonl of (text, label) rows, through import-labels (its output is dropped from capfd)."""
    data = tmp_path / "answers.csv"
    data.write_text("text,label\n" + "".join(f"{t},{lab}\n" for t, lab in rows), encoding="utf-8")
    out = tmp_path / "labels.jsonl"
    assert cli("import-labels", "--data", data, "--out", out, "--labels", labels) == 0
    capfd.readouterr()
    return out


def test_curate_on_four_rows_tells_cleanlab_warnings_and_the_folds_that_ran(tmp_path, cli, capfd):
    rows = [("a great day", "pos"), ("loved every minute", "pos"), ("what a joy", "pos"),
            ("terrible service", "neg")]
    labels, out = _labels(tmp_path, cli, capfd, rows, "pos,neg"), tmp_path / "cur"
    assert cli("curate", "--labels", labels, "--out", out, "--probs", "crossval", "--folds", "5",
               "--threads", "1") == 0
    err = capfd.readouterr().err
    assert "UserWarning" not in err and "min_examples_per_class" not in err, err
    assert ("llm2edge: warning: curate: 'neg' has 1 row(s), too few for cleanlab to judge: none of them can "
            "be flagged") in err
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["folds"] == 4 and report["folds_asked"] == 5  # one fold per row at most
    assert report["warnings"] == ["'neg' has 1 row(s), too few for cleanlab to judge: none of them can be "
                                  "flagged"]


def test_sample_experts_by_crossval_on_one_label_does_not_advise_crossval(tmp_path, cli, capfd):
    rows = [(f"text number {i}", "pos") for i in range(6)]
    labels, out = _labels(tmp_path, cli, capfd, rows, "pos,neg"), tmp_path / "experts"
    assert cli("sample-experts", "--labels", labels, "--out", out, "--by", "crossval", "--fraction", "0.5",
               "--threads", "1") == 0
    err = capfd.readouterr().err
    assert "rank by --by crossval" not in err
    assert ("every row has the same crossval score (every row has the same label: the out-of-fold model has "
            "no other label to prefer)") in err
    assert json.loads((out / "sample.json").read_text(encoding="utf-8"))["folds"] == 5
