"""`llm2edge demo --quick`: the whole pipeline end to end on ~40 items, then a rerun that reuses stages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm2edge.errors import DataError


def _demo(out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "llm2edge", "demo", "--quick", "--out", str(out),
                           "--threads", "1", *extra], capture_output=True, text=True, env=env, timeout=1800)
    return proc, time.perf_counter() - t0


@pytest.mark.slow
def test_demo_quick_end_to_end_and_rerun(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("optimum.onnxruntime")
    out = tmp_path / "demo"
    first, t_first = _demo(out)
    assert first.returncode == 0, first.stderr[-3000:]
    for stage in ("[1/7]", "[7/7]", "train: done", "export: done"):
        assert stage in first.stderr, stage
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# llm2edge demo: reddit_humor (funny / not_funny)")
    assert "| LLM labels (SmolLM2-135M-Instruct.Q4_1) |" in report
    assert "| edge student (MiniLM-L6, int8 ONNX) |" in report or "| edge student (MiniLM-L6, none ONNX) |" \
        in report
    assert "faster per item than the LLM" in report and "test split: 24 items" in report
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["edge_test"]["n"] == 24 and data["llm_test"]["n"] == 24 and data["llm_train"]["n"] == 40
    assert 0 <= data["edge_test"]["accuracy"] <= 1 and data["bundle_mb"] > 1
    assert data["bench"]["edge int8 b1"]["per_item_ms"] > 0
    assert data["bench"]["LLM scoring b1"]["per_item_ms"] > 0
    preds = (out / "predictions.csv").read_text(encoding="utf-8").splitlines()
    assert preds[0] == "id,label,gold,p_funny,p_not_funny" and len(preds) == 25
    assert (out / "bundle" / "manifest.json").is_file()
    assert "edge is" in first.stdout and "faster per item than the LLM" in first.stdout

    second, t_second = _demo(out)
    assert second.returncode == 0, second.stderr[-3000:]
    for stage in ("label: reused", "train: reused", "export: reused"):
        assert stage in second.stderr, stage
    assert "curate: reused" in second.stderr or "curation skipped" in second.stderr
    assert t_second < t_first
    again = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert again["edge_test"] == data["edge_test"] and again["llm_test"] == data["llm_test"]
    assert {"label", "train", "export"} <= set(again["reused"])


def test_demo_rejects_a_dataset_without_splits(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from llm2edge.pipeline.demo import DemoConfig, run_demo

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "train.csv").write_text("text,label\na,funny\n", encoding="utf-8")
    with pytest.raises(DataError, match="test.csv: missing"):
        run_demo(DemoConfig(out=tmp_path / "o", dataset=tmp_path / "d", progress=False))


def test_demo_rejects_labels_outside_the_task(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from llm2edge.pipeline.demo import DemoConfig, run_demo

    data = tmp_path / "d"
    data.mkdir()
    for name in ("train.csv", "test.csv"):
        (data / name).write_text("text,label\nsome text,positive\nother text,negative\n", encoding="utf-8")
    with pytest.raises(DataError, match="not labels of task 'humor'"):
        run_demo(DemoConfig(out=tmp_path / "o", dataset=data, progress=False))
