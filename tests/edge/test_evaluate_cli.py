"""`llm2edge evaluate`: join predictions to gold by id (or derived id, or row order) and report metrics."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from llm2edge.edge.evaluate import evaluate_files
from llm2edge.errors import DataError
from tests.helpers import run_cli as run
from tests.helpers import write_table as write_csv

GOLD = ["pos", "neg", "pos", "neu", "neg", "pos"]
PRED = ["pos", "pos", "pos", "neu", "neg", "neg"]


def test_join_by_id_in_any_order(tmp_path, capsys):
    gold = write_csv(tmp_path / "gold.csv", ["id", "text", "label"],
                     [[f"d{i}", f"text {i}", g] for i, g in enumerate(GOLD)])
    pred = tmp_path / "pred.jsonl"
    order = [5, 2, 0, 3, 1, 4]
    pred.write_text("".join(json.dumps({"id": f"d{i}", "label": PRED[i], "probs": {}}) + "\n" for i in order))
    code, out, err = run(["evaluate", "--pred", str(pred), "--gold", str(gold), "--json"], capsys)
    assert code == 0, err
    rep = json.loads(out)
    assert rep["joined_by"] == "id"
    assert rep["n"] == 6
    assert rep["accuracy"] == pytest.approx(sum(g == p for g, p in zip(GOLD, PRED)) / 6)
    assert rep["labels"] == ["neg", "neu", "pos"]
    assert rep["confusion"] == [[1, 0, 1], [0, 1, 0], [1, 0, 2]]


def test_predict_output_joins_id_less_gold_by_derived_ids(tiny_bundle, tmp_path, capsys):
    texts = ["good stuff", "bad stuff", "ok stuff", "more text here"]
    gold = write_csv(tmp_path / "gold.csv", ["text", "label"], [[t, "negative"] for t in texts])
    pred = tmp_path / "pred.csv"
    assert run(["predict", "-b", str(tiny_bundle.path), "-i", str(gold), "-o", str(pred)], capsys)[0] == 0
    predicted = [r["label"] for r in csv.DictReader(pred.open(encoding="utf-8"))]
    code, out, err = run(["evaluate", "--pred", str(pred), "--gold", str(gold)], capsys)
    assert code == 0, err
    assert "(rows joined by id)" in out
    assert f"n=4  accuracy={predicted.count('negative') / 4:.4f}" in out
    assert "| gold \\ pred |" in out


def test_row_order_when_neither_file_has_ids(tmp_path, capsys):
    (tmp_path / "p.txt").write_text("\n".join(PRED) + "\n", encoding="utf-8")
    (tmp_path / "g.txt").write_text("\n".join(GOLD) + "\n", encoding="utf-8")
    report, how = evaluate_files(tmp_path / "p.txt", tmp_path / "g.txt")
    assert how == "row order" and report.n == 6
    (tmp_path / "g.txt").write_text("\n".join(GOLD[:-1]) + "\n", encoding="utf-8")
    args = ["evaluate", "--pred", str(tmp_path / "p.txt"), "--gold", str(tmp_path / "g.txt")]
    code, _, err = run(args, capsys)
    assert code == 2 and "has 6 rows but" in err


def test_unknown_and_missing_ids_are_named(tmp_path):
    gold = write_csv(tmp_path / "gold.csv", ["id", "label"], [["a", "x"], ["b", "y"], ["c", "x"]])
    pred = write_csv(tmp_path / "pred.csv", ["id", "label"], [["a", "x"], ["b", "y"], ["zzz", "x"]])
    with pytest.raises(DataError, match=r"1 id\(s\) not in .*gold\.csv: 'zzz'"):
        evaluate_files(pred, gold)
    pred = write_csv(tmp_path / "pred.csv", ["id", "label"], [["a", "x"]])
    with pytest.raises(DataError, match=r"no prediction for 2 id\(s\) .*'b', 'c'"):
        evaluate_files(pred, gold)
    pred = write_csv(tmp_path / "pred.csv", ["id", "label"], [["a", "x"], ["a", "y"], ["b", "x"], ["c", "x"]])
    with pytest.raises(DataError, match=r"pred\.csv:3: duplicate id 'a'"):
        evaluate_files(pred, gold)


def test_column_errors(tmp_path, capsys):
    gold = write_csv(tmp_path / "gold.csv", ["id", "label"], [["a", "x"], ["b", ""]])
    pred = write_csv(tmp_path / "pred.csv", ["id", "category"], [["a", "x"], ["b", "y"]])
    code, _, err = run(["evaluate", "--pred", str(pred), "--gold", str(gold)], capsys)
    assert code == 2 and "pred.csv: missing column label (columns: id, category)" in err
    code, _, err = run(["evaluate", "--pred", str(pred), "--gold", str(gold), "--pred-col", "category"],
                       capsys)
    assert code == 2 and "gold.csv:3: empty label" in err
    code, _, err = run(["evaluate", "--pred", str(tmp_path / "nope.csv"), "--gold", str(gold)], capsys)
    assert code == 2 and "nope.csv: no such file" in err


def test_custom_columns(tmp_path):
    gold = write_csv(tmp_path / "gold.csv", ["key", "truth"], [["1", "a"], ["2", "b"]])
    pred = write_csv(tmp_path / "pred.csv", ["key", "guess"], [["2", "b"], ["1", "b"]])
    report, how = evaluate_files(pred, gold, id_col="key", pred_col="guess", gold_col="truth")
    assert how == "id" and report.accuracy == 0.5


def test_evaluate_needs_no_heavy_modules(tmp_path):
    """evaluate works on a base install: run it with torch, sklearn and pandas made unimportable."""
    import subprocess

    (tmp_path / "p.txt").write_text("a\nb\n", encoding="utf-8")
    script = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'sklearn', 'pandas'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from llm2edge.cli import main\n"
        "main(['evaluate', '--pred', sys.argv[1], '--gold', sys.argv[1], '--json'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "p.txt")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["accuracy"] == 1.0
