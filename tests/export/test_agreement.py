"""The int8 guard's arithmetic and text selection (issue 14.5); the export-level checks are in test_export."""

from __future__ import annotations

import json

import numpy as np

from llm2edge.export.agreement import describe, guard_texts, judge, too_few, training_texts


def test_near_tie_flips_are_counted_apart_from_real_disagreements():
    ref = np.array([[2.0, 0.0], [0.01, 0.0], [0.0, 0.03], [1.0, 0.0], [0.0, 3.0]], dtype=np.float32)
    got = np.array([[1.9, 0.1], [0.0, 0.01], [0.05, 0.0], [0.0, 1.0], [0.0, 2.9]], dtype=np.float32)
    result = judge(ref, got, from_validation=2, near_tie=0.05)
    assert (result.n, result.from_validation, result.from_training) == (5, 2, 3)
    assert result.near_tie_flips == 2 and result.real_flips == 1  # rows 1, 2 near ties; row 3 real
    assert result.agreement == 0.4 and result.judged_agreement == 0.8
    line = describe(result)
    assert "1 real disagreement(s), 2 near-tie flip(s)" in line and "2 validation + 3 training" in line


def test_one_near_tie_flip_no_longer_fails_a_small_slice():
    """The issue's case: 35 validation texts, one flip at |dlogit| 0.015 used to fail --min-agreement 0.99."""
    ref = np.zeros((35, 2), dtype=np.float32)
    ref[:, 0] = 1.0
    ref[7] = [0.0075, -0.0075]
    got = ref.copy()
    got[7] = [-0.0075, 0.0075]
    result = judge(ref, got, from_validation=35, near_tie=0.05)
    assert result.agreement < 0.99 <= result.judged_agreement == 1.0


def test_too_few_texts_is_said():
    assert "only 39 texts" in too_few(39, 0.99)
    assert too_few(1000, 0.99) is None and too_few(39, 0.0) is None and too_few(39, 1.01) is None


def test_guard_texts_tops_the_validation_up_with_distinct_training_texts():
    texts, n_train = guard_texts(["a", "b"], ["b", "c", "c", "d", "e"], 4)
    assert texts == ["a", "b", "c", "d"] and n_train == 2
    assert guard_texts(["a", "b", "c"], ["d"], 2) == (["a", "b", "c"], 0)  # never drops validation rows


def test_training_texts_from_train_meta(tmp_path):
    data = tmp_path / "labels.jsonl"
    data.write_text("".join(json.dumps({"id": str(i), "body": f"text {i}"}) + "\n" for i in range(10)),
                    encoding="utf-8")
    meta = {"data": str(data), "text_col": "body"}
    texts, note = training_texts(tmp_path, meta, 3)
    assert note is None and texts[:3] == ["text 0", "text 1", "text 2"]
    assert training_texts(tmp_path, {"data": "labels.jsonl", "text_col": "body"}, 2)[0][:2] == \
        ["text 0", "text 1"]  # a relative name is looked up next to the model too
    texts, note = training_texts(tmp_path, {"data": str(tmp_path / "gone.csv")}, 3)
    assert texts == [] and "gone.csv" in note and "not on this machine" in note
    assert "names no training data" in training_texts(tmp_path, {}, 3)[1]
    assert training_texts(tmp_path, meta, 0) == ([], None)
