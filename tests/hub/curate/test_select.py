"""The expert sample of a multi-label file: least confident by labelsets.set_confidence, per-label strata."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from llm2edge.hub.curate.select import select_multi
from llm2edge.labelsets import set_confidence


def _confidence(rows, labels) -> np.ndarray:
    return set_confidence(np.array([[r["probs"][name] for name in labels] for r in rows]))


def _sample(tmp_path, name):
    folder = tmp_path / name
    return (json.loads((folder / "sample.json").read_text()),
            list(csv.DictReader((folder / "review.csv").open(encoding="utf-8"))),
            (folder / "label_config.xml").read_text(), json.loads((folder / "label_studio.json").read_text()))


def test_least_confident_sets_go_first(emotion_labels, tmp_path, cli):
    path, rows, labels, wrong = emotion_labels
    assert cli("sample-experts", "--labels", path, "--out", tmp_path / "s", "--fraction", "0.25") == 0
    sample, review, config, tasks = _sample(tmp_path, "s")
    conf = _confidence(rows, labels)
    expected = sorted(range(len(rows)), key=lambda i: conf[i])[:30]
    assert sorted(sample["ids"]) == sorted(rows[i]["id"] for i in expected)
    assert sample["multi_label"] and sample["sampled"] == 30
    by_id = {r["id"]: r for r in rows}
    # review.csv: least confident first, the LLM's set joined, its confidence, an empty expert column
    assert [float(r["confidence"]) for r in review] == sorted(float(r["confidence"]) for r in review)
    for line in review:
        assert line["llm_label"] == ";".join(by_id[line["id"]]["label"]) and line["expert_label"] == ""
        assert float(line["confidence"]) == pytest.approx(conf[int(line["id"][1:])], abs=1e-6)
    # Label Studio: a multiple-choice control, the LLM's set as the prediction
    assert 'choice="multiple"' in config and all(f'<Choice value="{n}"/>' in config for n in labels)
    for task in tasks:
        choices = task["predictions"][0]["result"][0]["value"]["choices"]
        assert choices == by_id[task["data"]["item_id"]]["label"]
    # the torn (wrong) sets are the least confident: the sample holds them
    picked = np.isin([r["id"] for r in rows], sample["ids"])
    assert picked[wrong].mean() > 0.9


def test_stratify_serves_every_label(emotion_labels, tmp_path, cli):
    _, rows, labels, _ = emotion_labels
    # every joy decision torn: the least confident rows are all joy rows unless the sample is stratified
    rows = [dict(r, probs={**r["probs"], "joy": 0.52}) if "joy" in r["label"] else r for r in rows]
    path = tmp_path / "joy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert cli("sample-experts", "--labels", path, "--out", tmp_path / "flat", "--fraction", "0.15") == 0
    assert cli("sample-experts", "--labels", path, "--out", tmp_path / "strat", "--fraction", "0.15",
               "--stratify") == 0
    flat, strat = _sample(tmp_path, "flat")[0], _sample(tmp_path, "strat")[0]
    assert strat["sampled"] == flat["sampled"] == 18
    assert flat["per_label"]["joy"] > 9 and min(flat["per_label"].values()) == 0  # a label left out
    sizes = {name: sum(name in r["label"] for r in rows) for name in labels}
    # 18 items over 7 label groups: at least two of every label (all of a label's rows if it has fewer)
    assert all(strat["per_label"][name] >= min(2, sizes[name]) for name in labels)
    # within a label, its least confident rows are taken first
    conf = dict(zip((r["id"] for r in rows), _confidence(rows, labels)))
    chosen = set(strat["ids"])
    for name in labels:
        group = sorted((r["id"] for r in rows if name in r["label"]), key=lambda i: (conf[i], i))
        assert group[0] in chosen


def test_random_stratified_is_seeded(emotion_labels):
    _, rows, labels, _ = emotion_labels
    pick = [select_multi(rows, labels, None, fraction=0.2, strategy="random", stratify=True, seed=s)
            for s in (1, 1, 2)]
    assert pick[0] == pick[1] != pick[2] and len(pick[0]) == 24


def test_crossval_score_and_margin(emotion_labels, tmp_path, cli, capsys):
    pytest.importorskip("torch").set_num_threads(1)
    path, rows, _, wrong = emotion_labels
    assert cli("sample-experts", "--labels", path, "--out", tmp_path / "cv", "--fraction", "0.25", "--by",
               "crossval", "--folds", "4", "--max-length", "32", "--threads", "1") == 0
    sample = json.loads((tmp_path / "cv" / "sample.json").read_text())
    picked = np.isin([r["id"] for r in rows], sample["ids"])
    assert sample["folds"] == 4 and picked.sum() == 30
    assert wrong[picked].mean() > wrong.mean()  # the out-of-fold models doubt the wrong sets more
    capsys.readouterr()
    assert cli("sample-experts", "--labels", path, "--out", tmp_path / "m", "--by", "margin") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--by margin" in err and "multi-label" in err
