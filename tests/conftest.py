"""Shared fixtures: paths to the repo, the shipped example and ../shared/data."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from llm2edge.records import read_records

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "reddit_humor"
SHARED_DATA = Path(os.environ.get("LLM2EDGE_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def example_dir() -> Path:
    """The shipped example dataset (reddit_humor, MIT)."""
    return EXAMPLE


@pytest.fixture(scope="session")
def unprivileged(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """A command prefix under which file permissions hold (a chmod 000 file is unreadable): nothing for an
    ordinary user; as root, `setpriv` without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (else skip)."""
    if os.geteuid() != 0:
        return []
    prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: cannot make a permission check fail")
    probe = tmp_path_factory.mktemp("perm") / "secret"
    probe.write_text("x", encoding="utf-8")
    probe.chmod(0)
    res = subprocess.run([*prefix, "cat", str(probe)], capture_output=True, text=True)
    if res.returncode == 0 or "Permission denied" not in res.stderr:
        pytest.skip(f"cannot drop root's permission override here: {res.stderr.strip()}")
    return prefix


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def recorded(shared_data: Path) -> Path:
    """../shared/recorded_teacher (real big-LLM answers joined to gold; LLM2EDGE_RECORDED_TEACHER
    overrides), or skip with a reason when it is absent."""
    folder = Path(os.environ.get("LLM2EDGE_RECORDED_TEACHER", shared_data.parent / "recorded_teacher"))
    if not (folder / "summary.csv").is_file():
        pytest.skip(f"recorded teacher answers not found at {folder}")
    return folder


# Synthetic labels.jsonl files (curation and experiment tests): the texts and gold labels are real, the
# noise and probabilities are a stand-in for an LLM's labels.


def synth_rows(records, labels, *, noise=0.2, seed=0, llm_like=True):
    """LLM-like rows from gold records: a `noise` share flipped (less confident); the label is the argmax."""
    rng = np.random.default_rng(seed)
    rows, flipped = [], []
    for rec in records:
        wrong = bool(rng.random() < noise)
        label = rng.choice([x for x in labels if x != rec.label]) if wrong else rec.label
        p = np.full(len(labels), 0.0)
        if llm_like and wrong:  # torn between the given (wrong) label and the true one
            top = rng.uniform(0.40, 0.60)
            p[labels.index(label)] = top
            p[labels.index(rec.label)] = min((1 - top) * 0.9, top - 0.02)  # the label stays the argmax
        else:
            top = rng.uniform(0.55, 0.99)
            p[labels.index(label)] = top
            others = [i for i in range(len(labels)) if labels[i] != label]
            p[rng.choice(others)] = (1 - top) * 0.8
        rest = 1 - p.sum()
        p += rest / len(labels)
        s = sorted(p, reverse=True)
        rows.append({
            "id": rec.id, "key": f"k-{rec.id}", "text": rec.text, "label": str(label),
            "probs": {name: float(v) for name, v in zip(labels, p)}, "confidence": float(s[0] - s[1]),
            "margin_logprob": float(np.log(s[0]) - np.log(s[1])), "prob_source": "scores",
            "backend": "synthetic", "model": "synthetic", "task": "test", "prompt_hash": "0", "raw": None,
            "error": None, "source": "llm", "fields": dict(rec.fields),
        })
        flipped.append(wrong)
    return rows, np.array(flipped)


def write_labels(path: Path, rows) -> Path:
    """Write rows as labels.jsonl."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def sample_records(shared_data: Path, name: str, n: int, *, fields=(), split="train", seed=0):
    """`n` shuffled records (with gold labels) of a shared data set, and its sorted label set."""
    recs = read_records(shared_data / name / f"{split}.csv", label_col="label", require_label=True,
                        fields=fields)
    labels = sorted({r.label for r in recs})
    random.Random(seed).shuffle(recs)
    return recs[:n], labels


@pytest.fixture
def mrf_labels(shared_data: Path, tmp_path: Path):
    """A labels.jsonl of 240 mrf headlines with 20% flipped labels; also the flip mask and the gold file."""
    recs, labels = sample_records(shared_data, "mrf", 240)
    rows, flipped = synth_rows(recs, labels, noise=0.2, seed=1)
    return write_labels(tmp_path / "labels.jsonl", rows), rows, flipped, labels


@pytest.fixture
def stance_labels(shared_data, tmp_path):
    """labels.jsonl of 200 SemEval-2016 stance tweets (with their `target` field), 25% synthetic noise."""
    recs, labels = sample_records(shared_data, "semeval2016_stance", 200, fields=("target",))
    rows, flipped = synth_rows(recs, labels, noise=0.25, seed=3)
    return write_labels(tmp_path / "labels.jsonl", rows), rows, flipped, labels


@pytest.fixture
def cli():
    """Run `llm2edge ARGS...` in-process; returns the exit code (0 on success)."""
    from llm2edge.cli import main

    def run(*args: str) -> int:
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    return run
