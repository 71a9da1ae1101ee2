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
    assert report.startswith("# llm2edge demo: movie_sentiment (positive / negative)")
    assert "| LLM labels (SmolLM2-135M-Instruct.Q4_1) |" in report
    assert "| edge student (MiniLM-L6, int8 ONNX) |" in report or "| edge student (MiniLM-L6, none ONNX) |" \
        in report
    assert "faster per item than the LLM" in report and "test split: 24 items" in report
    assert "| majority class (" in report and "points over the majority class" in report
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["edge_test"]["n"] == 24 and data["llm_test"]["n"] == 24 and data["llm_train"]["n"] == 40
    assert 0 <= data["edge_test"]["accuracy"] <= 1 and data["bundle_mb"] > 1
    assert data["bench"]["edge int8 b1"]["per_item_ms"] > 0
    assert data["bench"]["LLM scoring b1"]["per_item_ms"] > 0
    preds = (out / "predictions.csv").read_text(encoding="utf-8").splitlines()
    assert preds[0] == "id,label,gold,p_positive,p_negative" and len(preds) == 25
    gaps, majority = data["gaps_points"], data["meta"]["majority_acc"]
    assert gaps["teacher_over_majority"] == round(100 * (data["llm_test"]["accuracy"] - majority), 1)
    assert gaps["student_minus_teacher"] == round(
        100 * (data["edge_test"]["accuracy"] - data["llm_test"]["accuracy"]), 1)
    assert f"{gaps['teacher_over_majority']:+.1f} points over the majority class" in first.stdout
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
        (data / name).write_text("text,label\nsome text,funny\nother text,not_funny\n", encoding="utf-8")
    with pytest.raises(DataError, match="not labels of task 'sentiment'"):
        run_demo(DemoConfig(out=tmp_path / "o", dataset=data, progress=False))


def test_demo_student_settings_are_train_settings() -> None:
    """Issue 25: the demo's student settings are checked by TrainConfig, and `train` takes any other
    TrainConfig field (not one the demo sets itself); each error is one line naming the key."""
    from llm2edge.errors import ConfigError
    from llm2edge.pipeline.demo import DemoConfig

    config = DemoConfig(train={"weight_decay": 0.0, "grad_accum": 2}, progress=False)
    run = config.train_config(data="train.jsonl", out="model", labels=["a", "b"])
    assert (run.weight_decay, run.grad_accum, run.lr, run.class_weight) == (0.0, 2, config.lr,
                                                                         config.class_weight)
    cases = {"class_weight": ({"class_weight": "heavy"}, "class_weight must be one of"),
             "weight_decay": ({"train": {"weight_decay": -1}}, "weight_decay must be at least 0"),
             "lr": ({"train": {"lr": 1.0}}, "train: lr is the demo's own setting"),
             "nope": ({"train": {"nope": 1}}, r"train: unknown key\(s\) nope")}
    for kwargs, message in cases.values():
        with pytest.raises(ConfigError, match=message):
            DemoConfig(**kwargs)


def test_report_states_the_teacher_over_majority_and_the_student_gap() -> None:
    pytest.importorskip("transformers")
    from llm2edge.metrics import classification_report
    from llm2edge.pipeline.demo import DemoResult
    from llm2edge.pipeline.demo.report import gap_line, gaps

    gold = ["negative"] * 6 + ["positive"] * 4  # majority: negative, 0.6
    teacher = ["negative"] * 5 + ["positive"] * 5  # 0.9
    student = ["negative"] * 6 + ["positive"] * 2 + ["negative"] * 2  # 0.8
    names = ["positive", "negative"]
    llm = classification_report(gold, teacher, names)
    res = DemoResult(out=Path("o"), report=Path("o/report.md"), llm_test=llm, llm_train=llm,
                     edge_test=classification_report(gold, student, names), llm_ms=None, edge_ms=None,
                     bundle_mb=1.0, seconds=1.0)
    meta = {"majority": "negative", "majority_acc": 0.6}
    assert gaps(res, meta) == {"teacher_over_majority": 30.0, "student_over_majority": 20.0,
                               "student_minus_teacher": -10.0}
    assert gap_line(res, meta) == ("The teacher is +30.0 points over the majority class (negative, 0.600); "
                                   "the student is -10.0 points from its teacher (+20.0 over the majority "
                                   "class).")


def test_shipped_examples_match_their_tasks() -> None:
    pytest.importorskip("transformers")
    from llm2edge.defaults import DEMO_TASK
    from llm2edge.hub.label.task import load_task
    from llm2edge.pipeline.demo.config import EXAMPLE
    from llm2edge.records import read_records

    assert (EXAMPLE.name, DEMO_TASK) == ("movie_sentiment", "sentiment")
    for folder, task in ((EXAMPLE, DEMO_TASK), (EXAMPLE.parent / "reddit_humor", "humor")):
        names = set(load_task(task).label_names)
        for split in ("train.csv", "test.csv"):
            labels = {str(r.label) for r in read_records(folder / split, text_col="text", label_col="label",
                                                         require_label=True)}
            assert labels == names, (folder, split)
