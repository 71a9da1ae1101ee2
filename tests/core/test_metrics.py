"""llm2edge.metrics (numpy only) against scikit-learn on random data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llm2edge.metrics import classification_report

sk = pytest.importorskip("sklearn.metrics", reason="the cross-check needs scikit-learn")


@pytest.mark.parametrize("seed", range(5))
def test_matches_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    labels = [f"c{i}" for i in range(int(rng.integers(2, 7)))]
    n = int(rng.integers(5, 300))
    gold = list(rng.choice(labels, n, p=rng.dirichlet(np.ones(len(labels)))))
    # predictions: right most of the time, else random (some classes may never be predicted)
    pred = [g if rng.random() < 0.6 else str(rng.choice(labels)) for g in gold]
    rep = classification_report(gold, pred)
    order = sorted(set(gold) | set(pred))
    assert rep.labels == order
    assert rep.n == n
    assert rep.accuracy == pytest.approx(sk.accuracy_score(gold, pred))
    assert rep.macro_f1 == pytest.approx(sk.f1_score(gold, pred, average="macro", zero_division=0))
    assert rep.weighted_f1 == pytest.approx(sk.f1_score(gold, pred, average="weighted", zero_division=0))
    p, r, f, s = sk.precision_recall_fscore_support(gold, pred, labels=order, zero_division=0)
    np.testing.assert_allclose([c.precision for c in rep.per_class], p)
    np.testing.assert_allclose([c.recall for c in rep.per_class], r)
    np.testing.assert_allclose([c.f1 for c in rep.per_class], f)
    assert [c.support for c in rep.per_class] == list(s)
    assert rep.confusion == sk.confusion_matrix(gold, pred, labels=order).tolist()
    skr = sk.classification_report(gold, pred, output_dict=True, zero_division=0)
    assert rep.macro_f1 == pytest.approx(skr["macro avg"]["f1-score"])
    assert rep.weighted_f1 == pytest.approx(skr["weighted avg"]["f1-score"])


def test_fixed_label_order_and_classes_absent_from_both():
    gold = ["b", "a", "a", "b", "c"]
    pred = ["b", "a", "b", "b", "a"]
    rep = classification_report(gold, pred, labels=["c", "b", "a", "unused"])
    assert rep.labels == ["c", "b", "a", "unused"]
    assert rep.confusion[3] == [0, 0, 0, 0] and [row[3] for row in rep.confusion] == [0, 0, 0, 0]
    # a class that never occurs (gold or predicted) does not drag the macro average down:
    # same as scikit-learn over the classes that occur
    assert rep.macro_f1 == pytest.approx(sk.f1_score(gold, pred, labels=["c", "b", "a"], average="macro",
                                                     zero_division=0))
    assert rep.weighted_f1 == pytest.approx(sk.f1_score(gold, pred, average="weighted", zero_division=0))


def test_errors_and_serialisation():
    with pytest.raises(ValueError, match="gold has 2 items, predictions 1"):
        classification_report(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="label 'z' is not in the label set"):
        classification_report(["a"], ["z"], labels=["a"])
    rep = classification_report(["x", "y", "y"], ["x", "y", "x"])
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["per_class"][0] == {"label": "x", "precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                 "support": 1}
    table = rep.table()
    assert "accuracy=0.6667" in table and "| x | 0.500 | 1.000 | 0.667 | 1 |" in table
    assert "| y | 1 | 1 |" in table  # confusion row: gold y predicted x once, y once
    empty = classification_report([], [])
    assert (empty.n, empty.accuracy, empty.macro_f1) == (0, 0.0, 0.0)
