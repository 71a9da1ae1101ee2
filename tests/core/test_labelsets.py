"""llm2edge.labelsets: the multi-label contract (parsing, bad input, decisions, metrics against sklearn)."""

from __future__ import annotations

import numpy as np
import pytest

from llm2edge.errors import DataError
from llm2edge.labelsets import (
    check_single,
    decide,
    indicator,
    join_label_set,
    multilabel_report,
    parse_label_set,
    set_confidence,
    sets_of,
    tune_thresholds,
)

NAMES = ("anger", "joy", "neutral", "sadness")


@pytest.mark.parametrize("value", ["joy;anger", " anger ; joy ", ["joy", "anger"], '["anger","joy"]'])
def test_parse_gives_the_task_order(value):
    assert parse_label_set(value, NAMES, where="f.csv:3") == ("anger", "joy")


@pytest.mark.parametrize(("value", "needle"), [
    ("joy;fury", "unknown label 'fury'"),
    ("joy;joy", "'joy' given twice"),
    ("", "empty label list"),
    ([], "empty label list"),
    ("joy;;anger", "empty name"),
    ([1, 2], "not a label name"),
])
def test_bad_lists_name_the_place_and_value(value, needle):
    with pytest.raises(DataError) as err:
        parse_label_set(value, NAMES, where="f.csv:7")
    assert str(err.value).startswith("f.csv:7: ") and needle in str(err.value)


def test_empty_set_where_allowed_and_custom_separator():
    assert parse_label_set("", NAMES, where="x", allow_empty=True) == ()
    assert parse_label_set("joy|sadness", NAMES, where="x", sep="|") == ("joy", "sadness")
    assert join_label_set(("joy", "sadness"), "|") == "joy|sadness"


def test_single_label_task_refuses_a_list_but_not_a_name_with_the_separator():
    with pytest.raises(DataError, match="is a list of labels, but the task is single-label"):
        check_single("joy;anger", NAMES, where="f.csv:2")
    check_single("joy", NAMES, where="f.csv:2")
    check_single("a;b", ("a;b", "c"), where="f.csv:2")


def test_decisions_sets_and_confidence():
    probs = np.array([[0.9, 0.2, 0.6, 0.1], [0.1, 0.1, 0.1, 0.1]])
    dec = decide(probs, np.array([0.5, 0.5, 0.7, 0.5]))
    assert sets_of(dec, NAMES) == [("anger",), ()]
    np.testing.assert_allclose(set_confidence(probs), [0.6, 0.9])
    assert indicator([("joy",), ("anger", "sadness")], NAMES).tolist() == [[0, 1, 0, 0], [1, 0, 0, 1]]


def test_tuned_thresholds_beat_the_default_where_a_label_is_underconfident():
    rng = np.random.default_rng(0)
    gold = rng.random((400, 2)) < 0.3
    probs = np.where(gold, rng.uniform(0.25, 0.6, gold.shape), rng.uniform(0.0, 0.35, gold.shape))
    t = tune_thresholds(probs, gold)
    assert (t < 0.5).all()
    tuned = multilabel_report(gold.astype(np.uint8), decide(probs, t).astype(np.uint8), ["a", "b"])
    plain = multilabel_report(gold.astype(np.uint8), (probs >= 0.5).astype(np.uint8), ["a", "b"])
    assert tuned.macro_f1 > plain.macro_f1 + 0.1
    assert tune_thresholds(probs[:3], gold[:3]).tolist() == [0.5, 0.5]  # too few positives: untouched


sk = pytest.importorskip("sklearn.metrics", reason="the cross-check needs scikit-learn")


@pytest.mark.parametrize("seed", range(4))
def test_report_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    y = (rng.random((200, k)) < rng.uniform(0.05, 0.5, k)).astype(np.uint8)
    p = (rng.random((200, k)) < 0.3).astype(np.uint8)
    names = [f"l{j}" for j in range(k)]
    rep = multilabel_report(y, p, names)
    assert rep.micro_f1 == pytest.approx(sk.f1_score(y, p, average="micro", zero_division=0))
    assert rep.subset_accuracy == pytest.approx(sk.accuracy_score(y, p))
    assert rep.hamming_loss == pytest.approx(sk.hamming_loss(y, p))
    f1s = sk.f1_score(y, p, average=None, zero_division=0)
    assert [c.f1 for c in rep.per_label] == pytest.approx(list(f1s))
    assert "| l0 |" in rep.table() and rep.to_dict()["multi_label"] is True
    # the set form gives the same report
    assert multilabel_report(sets_of(y, names), sets_of(p, names), names) == rep
