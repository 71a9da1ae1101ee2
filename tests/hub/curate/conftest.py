"""Multi-label curation fixtures: real GoEmotions (ekman) texts and gold label sets, the shipped `emotions`
task's labels, and a stand-in for an LLM's per-label answers with wrong label sets injected."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from llm2edge.hub.label.task import load_task
from llm2edge.labelsets import set_confidence


def emotion_rows(shared_data: Path, n: int, *, noise: float = 0.2, seed: int = 0):
    """`n` shuffled goemotions_ekman rows as multi-label labels.jsonl rows, the task's labels, and the mask
    of rows whose label set was replaced by a wrong one (a label set sharing nothing with the gold one).

    Per-label probabilities: a right decision is confident (in the set 0.7-0.99, out of it 0.01-0.3); a
    wrong one is torn (a wrong label in the set 0.5-0.65, a gold label left out 0.3-0.49), so the set is
    still the probabilities thresholded at 0.5, as an LLM's would be."""
    task = load_task("emotions")
    labels = list(task.label_names)
    with (shared_data / "goemotions_ekman" / "train.csv").open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    random.Random(seed).shuffle(records)
    rng = np.random.default_rng(seed)
    rows, wrong = [], []
    for i, rec in enumerate(records[:n]):
        gold = set(task.label_set(rec["labels"], where=f"goemotions row {i}"))
        bad = bool(rng.random() < noise)
        given = {str(rng.choice([x for x in labels if x not in gold]))} if bad else gold
        probs = {}
        for name in labels:
            low, high = ((0.7, 0.99) if name in gold else (0.5, 0.65)) if name in given else \
                ((0.3, 0.49) if name in gold else (0.01, 0.3))
            probs[name] = round(float(rng.uniform(low, high)), 4)
        p = np.array([[probs[name] for name in labels]])
        rows.append({"id": f"g{i}", "key": f"k-g{i}", "text": rec["text"],
                     "label": [x for x in labels if x in given], "probs": probs,
                     "confidence": float(set_confidence(p)[0]), "gold": [x for x in labels if x in gold],
                     "backend": "synthetic", "model": "synthetic", "task": "emotions", "error": None,
                     "source": "llm"})
        wrong.append(bad)
    return rows, labels, np.array(wrong)


def write_rows(path: Path, rows) -> Path:
    """Write rows as labels.jsonl."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def emotion_labels(shared_data, tmp_path):
    """labels.jsonl of 120 goemotions_ekman rows with 20% wrong label sets; rows, labels, wrong mask."""
    rows, labels, wrong = emotion_rows(shared_data, 120, noise=0.2, seed=0)
    return write_rows(tmp_path / "labels.jsonl", rows), rows, labels, wrong
