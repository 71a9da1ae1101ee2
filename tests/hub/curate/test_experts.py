"""Expert budget: sample the least-confident items, write CSV + Label Studio files, merge the answers back."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from llm2edge.errors import ConfigError, DataError, TaskError
from llm2edge.hub.curate.experts import (
    MergeConfig,
    SampleConfig,
    merge_experts,
    sample_experts,
    select_experts,
)
from llm2edge.hub.curate.rows import load_labels
from llm2edge.records import read_jsonl


def test_select_least_confident_per_label(stance_labels):
    _, rows, _, labels = stance_labels
    picked = select_experts(rows, labels, fraction=0.15, strategy="confidence", stratify=True)
    assert len(picked) == 30
    per_label = {lab: [i for i in picked if rows[i]["label"] == lab] for lab in labels}
    sizes = {lab: sum(r["label"] == lab for r in rows) for lab in labels}
    # RED-CT: the same budget per LLM label (a label with fewer items gives its share to the others)
    assert min(sizes.values()) >= 10
    assert max(len(v) for v in per_label.values()) - min(len(v) for v in per_label.values()) <= 1
    for lab, chosen in per_label.items():
        rest = [r["confidence"] for i, r in enumerate(rows) if r["label"] == lab and i not in chosen]
        assert max(rows[i]["confidence"] for i in chosen) <= min(rest)


def test_select_global_and_random(stance_labels):
    _, rows, flipped, labels = stance_labels
    glob = select_experts(rows, labels, fraction=0.1, strategy="confidence")
    conf = sorted(r["confidence"] for r in rows)
    assert sorted(rows[i]["confidence"] for i in glob) == conf[:20]
    by_margin = select_experts(rows, labels, fraction=0.1, by="margin")
    assert max(rows[i]["margin_logprob"] for i in by_margin) <= sorted(r["margin_logprob"] for r in rows)[19]
    rand = select_experts(rows, labels, fraction=0.1, strategy="random", seed=7)
    assert len(rand) == 20 and rand == select_experts(rows, labels, fraction=0.1, strategy="random", seed=7)
    assert rand != select_experts(rows, labels, fraction=0.1, strategy="random", seed=8)
    # the point of RED-CT's rule: the least-confident items hold more LLM errors than a random sample
    assert flipped[glob].mean() > flipped.mean()
    with pytest.raises(ConfigError, match=r"fraction must be in \[0, 1\], got 1.5"):
        select_experts(rows, labels, fraction=1.5)
    with pytest.raises(ConfigError, match="strategy must be one of confidence, random"):
        SampleConfig(labels=Path("x"), out=Path("y"), strategy="oldest")


def test_sample_writes_csv_and_label_studio(stance_labels, tmp_path, cli):
    path, rows, _, labels = stance_labels
    out = tmp_path / "review"
    assert cli("sample-experts", "--labels", path, "--out", out, "--fraction", "0.1", "--stratify") == 0
    with (out / "review.csv").open(encoding="utf-8", newline="") as handle:
        review = list(csv.DictReader(handle))
    assert len(review) == 20
    assert list(review[0]) == ["id", "text", "target", "llm_label", "confidence", "expert_label"]
    assert all(r["expert_label"] == "" and r["llm_label"] in labels for r in review)
    tasks = json.loads((out / "label_studio.json").read_text())
    assert len(tasks) == 20
    by_id = {r["id"]: r for r in rows}
    for task, line in zip(tasks, review):
        assert task["data"]["item_id"] == line["id"] and task["data"]["text"] == by_id[line["id"]]["text"]
        assert task["data"]["target"] == by_id[line["id"]]["fields"]["target"]
        (pred,) = task["predictions"]
        (result,) = pred["result"]
        assert result["type"] == "choices" and result["from_name"] == "label" and result["to_name"] == "text"
        assert result["value"]["choices"] == [line["llm_label"]]
        assert 0.0 <= pred["score"] <= 1.0
    root = ET.fromstring((out / "label_config.xml").read_text())
    choices = root.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "text"
    assert [c.get("value") for c in choices.findall("Choice")] == labels
    assert root.find("Text").get("value") == "$text" and "$target" in root.find("Header").get("value")
    meta = json.loads((out / "sample.json").read_text())
    assert meta["strategy"] == "confidence" and meta["stratify"] is True and meta["labels"] == labels
    assert meta["sampled"] == 20 and sorted(meta["ids"]) == sorted(r["id"] for r in review)


def _annotate_csv(folder, answers):
    """Fill expert_label in review.csv as an annotator would (answers: {row number: label})."""
    path = folder / "review.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))
    for n, label in answers.items():
        lines[n]["expert_label"] = label
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
    return lines


def test_merge_from_csv(stance_labels, tmp_path):
    path, rows, _, labels = stance_labels
    folder = tmp_path / "review"
    sample_experts(SampleConfig(labels=path, out=folder, fraction=0.1))
    other = {lab: next(x for x in labels if x != lab) for lab in labels}
    lines = _annotate_csv(folder, {0: "FAVOR", 1: other[_label_of(rows, folder, 1)], 3: "NONE"})
    res = merge_experts(MergeConfig(labels=path, reviewed=folder, out=tmp_path / "merged.jsonl"))
    merged = {r["id"]: r for r in read_jsonl(tmp_path / "merged.jsonl")}
    assert len(merged) == len(rows) and res.n_expert == 3 and res.n_reviewed == 20
    for line in lines:
        row = merged[line["id"]]
        if line["expert_label"]:
            assert row["label"] == line["expert_label"] and row["source"] == "expert"
            assert row["probs"] == {lab: float(lab == line["expert_label"]) for lab in labels}
            assert row["llm_label"] == line["llm_label"]
        else:  # empty expert label: not reviewed, stays the LLM's
            assert row["label"] == line["llm_label"] and row["source"] == "llm"
    reviewed = [ln for ln in lines if ln["expert_label"]]
    assert res.n_changed == sum(merged[ln["id"]]["label"] != ln["llm_label"] for ln in reviewed)


def _label_of(rows, folder, n):
    with (folder / "review.csv").open(encoding="utf-8", newline="") as handle:
        rid = list(csv.DictReader(handle))[n]["id"]
    return next(r["label"] for r in rows if r["id"] == rid)


def test_merge_from_label_studio_export(stance_labels, tmp_path):
    path, rows, _, labels = stance_labels
    folder = tmp_path / "review"
    sample_experts(SampleConfig(labels=path, out=folder, fraction=0.05))
    tasks = json.loads((folder / "label_studio.json").read_text())
    # what Label Studio's JSON export looks like after annotation (ids, annotations with choices results)
    export = []
    for n, task in enumerate(tasks):
        annotations = []
        if n % 3 == 0:
            annotations.append({"id": 100 + n, "completed_by": 1, "was_cancelled": False,
                                "ground_truth": False,
                                "result": [{"id": f"r{n}", "from_name": "label", "to_name": "text",
                                            "type": "choices", "origin": "manual",
                                            "value": {"choices": [labels[n % len(labels)]]}}],
                                "created_at": "2026-11-22T12:00:00Z", "lead_time": 3.2})
        if n == 1:  # a skipped task: cancelled annotation, no label
            annotations.append({"id": 200, "was_cancelled": True, "result": []})
        export.append({"id": n + 1, "data": task["data"], "annotations": annotations,
                       "predictions": task["predictions"], "meta": {}, "project": 1})
    exp_path = tmp_path / "export.json"
    exp_path.write_text(json.dumps(export))
    res = merge_experts(MergeConfig(labels=path, reviewed=exp_path, out=tmp_path / "m.jsonl"))
    merged = {r["id"]: r for r in read_jsonl(tmp_path / "m.jsonl")}
    annotated = [(t["data"]["item_id"], labels[n % len(labels)]) for n, t in enumerate(tasks) if n % 3 == 0]
    assert res.n_expert == len(annotated) and res.n_reviewed == len(tasks)
    for item_id, label in annotated:
        assert merged[item_id]["label"] == label and merged[item_id]["source"] == "expert"
    assert merged[tasks[1]["data"]["item_id"]]["source"] == "llm"


def test_simulate_from_gold(stance_labels, shared_data, tmp_path, cli):
    path, rows, flipped, labels = stance_labels
    folder = tmp_path / "review"
    sample_experts(SampleConfig(labels=path, out=folder, fraction=0.2, stratify=True))
    out = tmp_path / "sim.jsonl"
    gold_file = shared_data / "semeval2016_stance" / "train.csv"
    assert cli("merge-experts", "--labels", path, "--reviewed", folder, "--simulate-from", gold_file,
               "--out", out) == 0
    merged = read_jsonl(out)
    meta = json.loads((folder / "sample.json").read_text())
    sampled = set(meta["ids"])
    from llm2edge.records import read_records

    gold = {r.id: r.label for r in read_records(gold_file, label_col="label", fields=("target",))}
    experts = [r for r in merged if r["source"] == "expert"]
    assert {r["id"] for r in experts} == sampled
    assert all(r["label"] == gold[r["id"]] for r in experts)
    flips = {r["id"] for r, f in zip(rows, flipped) if f}
    assert sum(r["llm_label"] != r["label"] for r in experts) == len(flips & sampled) > 0
    # the same join by text when ids do not match (a gold file with other row order: join by text+target)
    shuffled = tmp_path / "gold.csv"
    with gold_file.open(encoding="utf-8", newline="") as src, shuffled.open("w", encoding="utf-8",
                                                                           newline="") as dst:
        reader = list(csv.DictReader(src))
        writer = csv.DictWriter(dst, fieldnames=["text", "target", "label"])
        writer.writeheader()
        writer.writerows(reversed(reader))
    res = merge_experts(MergeConfig(labels=path, reviewed=folder, simulate_from=shuffled,
                                    out=tmp_path / "sim2.jsonl"))
    assert res.n_simulated == len(sampled)
    assert read_jsonl(tmp_path / "sim2.jsonl") == merged


def test_unknown_expert_label_names_the_row(stance_labels, tmp_path, cli, capsys):
    path, _, _, _ = stance_labels
    folder = tmp_path / "review"
    sample_experts(SampleConfig(labels=path, out=folder, fraction=0.1))
    lines = _annotate_csv(folder, {0: "AGAINST", 2: "MAYBE"})
    assert cli("merge-experts", "--labels", path, "--reviewed", folder / "review.csv",
               "--out", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip()
    assert "review.csv:4" in err and "'MAYBE'" in err and lines[2]["id"] in err and "\n" not in err
    assert not (tmp_path / "m.jsonl").exists()
    # a Label Studio export with an unknown choice names the task
    tasks = json.loads((folder / "label_studio.json").read_text())
    tasks[1]["id"] = 52
    result = {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["Pro"]}}
    tasks[1]["annotations"] = [{"id": 7, "result": [result]}]
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    item = tasks[1]["data"]["item_id"]
    with pytest.raises(TaskError, match=rf"ls.json: task 52, annotation 7 \(item {item}\).*'Pro'"):
        merge_experts(MergeConfig(labels=path, reviewed=tmp_path / "ls.json", out=tmp_path / "m.jsonl"))


def test_load_labels_rejects_label_outside_probs(tmp_path, cli, capsys):
    p = tmp_path / "l.jsonl"
    p.write_text(json.dumps({"id": "a", "text": "x", "label": "A", "probs": {"A": 0.6, "C": 0.4}}) + "\n"
                 + json.dumps({"id": "b", "text": "y", "label": "B", "probs": {"A": 0.6, "C": 0.4}}) + "\n")
    # B is missing from its own probs: it used to join the label set silently, with probability 0
    with pytest.raises(DataError, match=r"row 2 \(id b\): label 'B' is missing from its own probs"):
        load_labels(p)
    assert cli("curate", "--labels", p, "--out", tmp_path / "cur", "--probs", "llm") == 2
    err = capsys.readouterr().err.strip()
    assert "l.jsonl: row 2 (id b)" in err and "['A', 'C']" in err and "\n" not in err
    assert not (tmp_path / "cur" / "labels.jsonl").exists()
    # a row without probs (an answer-only label) still loads: its distribution is one-hot on its label
    p.write_text(json.dumps({"id": "a", "text": "x", "label": "A", "probs": {"A": 0.6, "C": 0.4}}) + "\n"
                 + json.dumps({"id": "b", "text": "y", "label": "C"}) + "\n")
    assert load_labels(p).labels == ("A", "C")
    assert np.isclose(sum(load_labels(p).label_counts().values()), 2)
