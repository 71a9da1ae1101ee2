"""End to end on real data: train → export (fp32 and int8) → predict in a base-only virtualenv (no torch)."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def _llm2edge(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    """Run the CLI with `python` and fail with its stderr if it exits non-zero."""
    proc = subprocess.run([python, "-m", "llm2edge", *args], capture_output=True, text=True, env=ENV,
                          timeout=1800)
    assert proc.returncode == 0, f"llm2edge {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="session")
def edge_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with only the base install (LLM2EDGE_EDGE_VENV, else built by scripts/setup.sh)."""
    given = os.environ.get("LLM2EDGE_EDGE_VENV")
    venv = Path(given) if given else tmp_path_factory.mktemp("edge") / "venv"
    if not (venv / "bin" / "llm2edge").exists():
        subprocess.run(["bash", str(REPO / "scripts" / "setup.sh"), str(venv), "--base-only"], check=True,
                       timeout=900)
    return venv


@pytest.fixture(scope="session")
def mrf_slice(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """300 train and 150 test rows of the real MRF headlines (a seeded sample: the files are sorted)."""
    out = tmp_path_factory.mktemp("mrf")
    paths = []
    for split, n in (("train", 300), ("test", 150)):
        with (shared_data / "mrf" / f"{split}.csv").open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        rows = random.Random(0).sample(rows, n)
        path = out / f"{split}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows({"text": r["text"], "label": r["label"]} for r in rows)
        paths.append(path)
    return paths[0], paths[1]


def _torch_predictions(model_dir: Path, texts: list[str], max_length: int) -> list[str]:
    """The trained model's own predictions in torch (the reference the bundles must agree with)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    preds: list[str] = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            enc = tok(texts[i:i + 32], padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")
            ids = model(**enc).logits.argmax(-1).tolist()
            preds += [model.config.id2label[j] for j in ids]
    return preds


def _edge_predict(venv: Path, bundle: Path, data: Path, out: Path) -> list[str]:
    """Classify `data` with the base-only install's CLI; return the labels in input order."""
    _llm2edge("predict", "--bundle", str(bundle), "--input", str(data), "--output", str(out),
              "--format", "jsonl", python=str(venv / "bin" / "python"))
    return [json.loads(line)["label"] for line in out.read_text(encoding="utf-8").splitlines()]


def test_train_export_predict_in_torch_free_venv(mrf_slice: tuple[Path, Path], edge_venv: Path,
                                                 tmp_path: Path) -> None:
    """The whole core path on real data; the edge venv has no torch and agrees with torch."""
    train, test = mrf_slice
    model = tmp_path / "model"
    _llm2edge("train", "--data", str(train), "--eval", str(test), "--out", str(model), "--epochs", "2",
              "--max-length", "64", "--seed", "7", "--threads", "1")
    metrics = json.loads((model / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and "weighted_f1" in metrics

    fp32, int8 = tmp_path / "bundle-fp32", tmp_path / "bundle-int8"
    _llm2edge("export", "--model", str(model), "--out", str(fp32), "--quantize", "none")
    _llm2edge("export", "--model", str(model), "--out", str(int8), "--quantize", "int8",
              "--min-agreement", "0.9")
    manifest = json.loads((int8 / "manifest.json").read_text())
    assert manifest["schema"] == 1 and manifest["quantization"] in ("int8", "none")

    probe = subprocess.run([str(edge_venv / "bin" / "python"), "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0, "the base-only virtualenv must not have torch"

    with test.open(newline="", encoding="utf-8") as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    reference = _torch_predictions(model, texts, max_length=64)
    got_fp32 = _edge_predict(edge_venv, fp32, test, tmp_path / "fp32.jsonl")
    got_int8 = _edge_predict(edge_venv, int8, test, tmp_path / "int8.jsonl")
    assert len(got_fp32) == len(got_int8) == len(texts)
    agree_fp32 = sum(a == b for a, b in zip(reference, got_fp32)) / len(texts)
    agree_int8 = sum(a == b for a, b in zip(reference, got_int8)) / len(texts)
    assert agree_fp32 == 1.0
    assert agree_int8 >= 0.9, f"int8 agreement with torch {agree_int8:.3f}"
