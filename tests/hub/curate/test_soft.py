"""Soft labels are proper distributions: they sum to 1, expert rows are one-hot (optionally smoothed)."""

from __future__ import annotations

import json
import math

import pytest

from llm2edge.errors import ConfigError
from llm2edge.hub.curate.soft import build_soft_labels
from llm2edge.records import read_jsonl

LABELS = ("AGAINST", "FAVOR", "NONE")


def _rows():
    expit = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731  RED-CT's weights: not a distribution
    return [
        {"id": "a", "text": "t1", "label": "FAVOR", "probs": {k: expit(v) for k, v in
                                                             zip(LABELS, (-1.2, -0.5, -3.0))}},
        {"id": "b", "text": "t2", "label": "NONE", "probs": {"NONE": 0.7, "AGAINST": 0.1}},  # key missing
        {"id": "c", "text": "t3", "label": "AGAINST", "probs": None},  # no distribution at all
        {"id": "d", "text": "t4", "label": "NONE", "source": "expert",
         "probs": {"AGAINST": 0.0, "FAVOR": 0.0, "NONE": 1.0}},
    ]


def test_soft_labels_sum_to_one():
    assert abs(sum(_rows()[0]["probs"].values()) - 1) > 0.2  # the expit weights really are not a distribution
    out = build_soft_labels(_rows(), labels=LABELS)
    for row in out:
        assert list(row["probs"]) == list(LABELS)
        assert sum(row["probs"].values()) == pytest.approx(1.0, abs=1e-9)
        assert max(row["probs"], key=row["probs"].get) == row["label"]
    assert out[2]["probs"] == {"AGAINST": 1.0, "FAVOR": 0.0, "NONE": 0.0}
    assert out[1]["probs"]["FAVOR"] == 0.0 and out[1]["probs"]["NONE"] == pytest.approx(0.875)


def test_expert_rows_one_hot_with_smoothing():
    out = build_soft_labels(_rows(), smoothing=0.3, labels=LABELS)
    assert out[3]["probs"]["NONE"] == pytest.approx(0.8) and out[3]["probs"]["FAVOR"] == pytest.approx(0.1)
    assert out[0]["probs"] == build_soft_labels(_rows(), labels=LABELS)[0]["probs"]  # LLM rows unsmoothed
    with pytest.raises(ConfigError, match=r"smoothing must be in \[0, 1\)"):
        build_soft_labels(_rows(), smoothing=1.0, labels=LABELS)


def test_temperature_sharpens():
    base = build_soft_labels(_rows(), labels=LABELS)[0]["probs"]["FAVOR"]
    sharp = build_soft_labels(_rows(), labels=LABELS, temperature=0.5)[0]["probs"]["FAVOR"]
    assert sharp > base


def test_soft_labels_cli(tmp_path, cli):
    src = tmp_path / "labels.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _rows()))
    assert cli("soft-labels", "--labels", src, "--out", tmp_path / "soft.jsonl", "--smoothing", "0.1") == 0
    rows = read_jsonl(tmp_path / "soft.jsonl")
    assert len(rows) == 4 and all(sum(r["probs"].values()) == pytest.approx(1.0) for r in rows)


def test_cli_pipeline_into_train_soft(mrf_labels, shared_data, tmp_path, cli):
    """sample-experts -> merge-experts --simulate-from -> soft-labels -> train --soft (frozen encoder)."""
    pytest.importorskip("torch").set_num_threads(1)
    path, rows, _, labels = mrf_labels
    review, merged, soft = tmp_path / "review", tmp_path / "merged.jsonl", tmp_path / "soft.jsonl"
    assert cli("sample-experts", "--labels", path, "--out", review, "--fraction", "0.1", "--stratify") == 0
    assert cli("merge-experts", "--labels", path, "--reviewed", review, "--out", merged,
               "--simulate-from", shared_data / "mrf" / "train.csv") == 0
    assert cli("soft-labels", "--labels", merged, "--out", soft, "--smoothing", "0.05") == 0
    assert sum(r["source"] == "expert" for r in read_jsonl(soft)) == 24
    model = tmp_path / "model"
    assert cli("train", "--data", soft, "--out", model, "--soft", "--freeze-encoder", "--max-length", "32",
               "--threads", "1") == 0
    meta = json.loads((model / "train_meta.json").read_text())
    assert meta["soft_labels"] is True and sorted(meta["labels"]) == sorted(labels)


# ---------------------------------------------------------------- multi-label: a Bernoulli per label


def _multi_cli(cli, tmp_path, rows, *args):
    src = tmp_path / "multi.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "soft_multi.jsonl"
    assert cli("soft-labels", "--labels", src, "--out", out, *args) == 0
    return read_jsonl(out)


def test_multi_label_soft_targets_per_label(emotion_labels, tmp_path, cli):
    _, rows, labels, _ = emotion_labels
    rows = [dict(r, source="expert") if i < 3 else r for i, r in enumerate(rows)]
    plain = _multi_cli(cli, tmp_path, rows)
    smooth = _multi_cli(cli, tmp_path, rows, "--smoothing", "0.2", "--temperature", "0.5")
    for i, (row, a, b) in enumerate(zip(rows, plain, smooth)):
        assert a["label"] == row["label"] and list(a["probs"]) == labels
        if i < 3:  # expert rows: 1 or 0 per label, smoothed towards 1/2
            assert a["probs"] == {n: float(n in row["label"]) for n in labels}
            assert b["probs"] == pytest.approx({n: 0.9 if n in row["label"] else 0.1 for n in labels})
            continue
        assert a["probs"] == pytest.approx(row["probs"])  # each label its own probability, not renormalized
        for name in labels:
            p, t = row["probs"][name], b["probs"][name]
            # temperature 0.5 per label: p^2 / (p^2 + (1-p)^2), sharper on the same side of 1/2
            assert t == pytest.approx(p * p / (p * p + (1 - p) ** 2))
            assert (t - 0.5) * (p - 0.5) >= 0 and abs(t - 0.5) >= abs(p - 0.5)
    assert not all(sum(r["probs"].values()) == pytest.approx(1.0) for r in plain[3:])


def test_multi_label_soft_from_crossval_and_mix(emotion_labels, tmp_path, cli):
    pytest.importorskip("torch").set_num_threads(1)
    _, rows, labels, _ = emotion_labels
    common = ("--folds", "4", "--max-length", "32", "--threads", "1")
    cv = _multi_cli(cli, tmp_path, rows, "--from", "crossval", *common)
    mix = _multi_cli(cli, tmp_path, rows, "--from", "mix", *common)
    for row, c, m in zip(rows, cv, mix):
        assert c["soft_from"] == "crossval" and m["soft_from"] == "mix" and c["label"] == row["label"]
        for name in labels:
            assert 0.0 < c["probs"][name] < 1.0
            assert m["probs"][name] == pytest.approx((row["probs"][name] + c["probs"][name]) / 2)
    # out of fold, a label is likelier on the rows that carry it than on those that do not
    for name in ("joy", "neutral"):
        on = [c["probs"][name] for c in cv if name in c["label"]]
        off = [c["probs"][name] for c in cv if name not in c["label"]]
        assert sum(on) / len(on) > sum(off) / len(off)
