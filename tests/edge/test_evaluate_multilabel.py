"""`llm2edge evaluate` on label sets (issue 23.7): metrics checked against scikit-learn, kinds that differ."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llm2edge.cli import main
from llm2edge.edge.evaluate import evaluate_files
from llm2edge.errors import DataError
from tests.helpers import run_cli as run
from tests.helpers import write_table as write_csv

LABELS = ["anger", "joy", "sadness", "surprise"]
GOLD = ["joy", "anger;sadness", "joy;surprise", "", "sadness", "anger", "joy;sadness;surprise", "surprise"]
PRED = ["joy", "anger", "joy", "joy", "sadness;surprise", "", "joy;sadness;surprise", "surprise;anger"]


def matrix(sets: list[str]) -> np.ndarray:
    return np.array([[name in s.split(";") for name in LABELS] for s in sets], dtype=int)


def test_metrics_match_sklearn(tmp_path, capsys):
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    gold = write_csv(tmp_path / "gold.csv", ["id", "label"], [[str(i), g] for i, g in enumerate(GOLD)])
    pred = tmp_path / "pred.jsonl"  # lists in JSONL, rows in another order: joined by id
    pred.write_text("".join(json.dumps({"id": str(i), "label": [x for x in LABELS if x in PRED[i].split(";")],
                                        "probs": dict.fromkeys(LABELS, 0.5)}) + "\n"
                            for i in reversed(range(len(PRED)))), encoding="utf-8")
    report, how = evaluate_files(pred, gold)
    y, p = matrix(GOLD), matrix(PRED)
    assert how == "id" and report.labels == LABELS and report.n == len(GOLD)
    assert report.micro_f1 == pytest.approx(f1_score(y, p, average="micro"))
    assert report.macro_f1 == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    assert report.subset_accuracy == pytest.approx(accuracy_score(y, p))
    assert report.hamming_loss == pytest.approx(hamming_loss(y, p))
    prec, rec, f1, support = precision_recall_fscore_support(y, p, zero_division=0)
    for j, row in enumerate(report.per_label):
        assert (row.label, row.support) == (LABELS[j], support[j])
        assert (row.precision, row.recall, row.f1) == pytest.approx((prec[j], rec[j], f1[j]))
    code, out, err = run(["evaluate", "--pred", str(pred), "--gold", str(gold), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["multi_label"] is True and data["joined_by"] == "id"
    assert data["hamming_loss"] == pytest.approx(hamming_loss(y, p))
    code, out, _ = run(["evaluate", "--pred", str(pred), "--gold", str(gold)], capsys)
    assert code == 0 and "micro-F1=" in out and "| surprise |" in out


def test_predict_output_of_a_multilabel_bundle_evaluates(ml_bundle, tmp_path, capsys, monkeypatch):
    from llm2edge.edge.classifier import Classifier
    from tests.edge.conftest import ML_TEXTS

    sets = Classifier.load(ml_bundle.path, threads=1).predict(ML_TEXTS)
    gold_sets = [s[:1] for s in sets]  # gold keeps only the first label: precision falls, recall stays 1
    gold = write_csv(tmp_path / "gold.csv", ["id", "text", "label"],
                     [[str(i), t, ";".join(s)] for i, (t, s) in enumerate(zip(ML_TEXTS, gold_sets))])
    out = tmp_path / "pred.csv"
    assert main(["predict", "-b", str(ml_bundle.path), "-i", str(gold), "-o", str(out), "--threads", "1"]) \
        in (None, 0)
    report, _ = evaluate_files(out, gold)
    assert report.labels == list(ml_bundle.labels)  # the bundle's order, from the run record
    assert report.micro_recall == 1.0
    total, kept = sum(map(len, sets)), sum(map(len, gold_sets))
    assert kept < total and report.micro_precision == pytest.approx(kept / total)


def test_single_label_predictions_against_multilabel_gold_and_the_reverse(tmp_path, capsys):
    gold = write_csv(tmp_path / "gold.csv", ["id", "label"], [[str(i), g] for i, g in enumerate(GOLD)])
    single = tmp_path / "single.jsonl"
    single.write_text("".join(json.dumps({"id": str(i), "label": "joy"}) + "\n" for i in range(len(GOLD))),
                      encoding="utf-8")
    code, _, err = run(["evaluate", "--pred", str(single), "--gold", str(gold)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{single}: single-label" in err and "gold.csv is multi-label" in err
    multi = tmp_path / "multi.jsonl"
    multi.write_text("".join(json.dumps({"id": str(i), "label": ["joy"]}) + "\n" for i in range(len(GOLD))),
                     encoding="utf-8")
    single_gold = tmp_path / "single_gold.jsonl"
    single_gold.write_text(single.read_text(encoding="utf-8"), encoding="utf-8")
    code, _, err = run(["evaluate", "--pred", str(multi), "--gold", str(single_gold)], capsys)
    assert code == 2 and f"{single_gold}: single-label" in err and "multi.jsonl is multi-label" in err


def test_a_single_label_run_record_makes_csv_predictions_single(tiny_bundle, tmp_path, capsys):
    texts = ["I loved it", "awful", "fine"]
    gold = write_csv(tmp_path / "gold.csv", ["id", "text", "label"],
                     [["0", texts[0], "positive;neutral"], ["1", texts[1], "negative"],
                      ["2", texts[2], "neutral"]])
    out = tmp_path / "pred.csv"
    assert main(["predict", "-b", str(tiny_bundle.path), "-i", str(gold), "-o", str(out), "--threads", "1"]) \
        in (None, 0)
    with pytest.raises(DataError, match="its run record says a single-label bundle made it") as err:
        evaluate_files(out, gold)
    assert str(err.value).startswith(str(out))


def test_unknown_name_in_a_set_is_named(tmp_path):
    gold = write_csv(tmp_path / "gold.csv", ["id", "label"], [["0", "joy;anger"], ["1", "joy;joy"]])
    pred = write_csv(tmp_path / "pred.csv", ["id", "label", "p_anger", "p_joy"], [["0", "joy", 1, 1],
                                                                                  ["1", "joy", 1, 1]])
    with pytest.raises(DataError, match=r"gold.csv:3: label 'joy' given twice"):
        evaluate_files(pred, gold)
