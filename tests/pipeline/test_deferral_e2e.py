"""End to end on real data (MRF headlines): train a static student -> export -> calibrate -> predict --defer
-> the embedded LLM labels the deferred items -> merge-predictions, every step through the CLI (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from llm2edge.cli import main  # noqa: E402
from llm2edge.edge import read_bundle  # noqa: E402
from tests.helpers import read_csv, write_csv

pytestmark = pytest.mark.slow
N_CALIBRATE, N_NEW = 300, 12


def cli(*args: str) -> None:
    """Run one command in-process; fail the test on a non-zero exit."""
    try:
        main(list(args))
    except SystemExit as exc:
        assert not exc.code, f"llm2edge {' '.join(args)} exited {exc.code}"


def test_static_student_defers_to_the_llm(shared_data: Path, tmp_path: Path, capsys) -> None:
    train_rows = read_csv(shared_data / "mrf" / "train.csv")  # all 1,706: a static student trains in seconds
    test_rows = [{"id": f"m{i}", **r} for i, r in enumerate(read_csv(shared_data / "mrf" / "test.csv"))]
    train = write_csv(tmp_path / "train.csv", train_rows, ["text", "label"])
    held_out = write_csv(tmp_path / "calibrate.csv", test_rows[:N_CALIBRATE], ["text", "label"])
    new = write_csv(tmp_path / "new.csv", test_rows[N_CALIBRATE:N_CALIBRATE + N_NEW], ["id", "text"])
    model, bundle = tmp_path / "model", tmp_path / "bundle"

    cli("train", "-d", str(train), "-o", str(model), "--student", "static", "--threads", "1")
    cli("export", "-m", str(model), "-o", str(bundle), "--threads", "1")
    cli("calibrate", "-b", str(bundle), "-d", str(held_out), "--target", "0.8", "--confidence", "0.9",
        "--threads", "1")
    info = read_bundle(bundle)
    assert info.student == "static" and info.defer_threshold is not None, info.calibration
    assert info.calibration["lower_bound"] >= 0.8 and 0 < info.calibration["coverage"] < 1

    pred, deferred = tmp_path / "pred.csv", tmp_path / "deferred.csv"
    cli("predict", "-b", str(bundle), "-i", str(new), "-o", str(pred), "--defer", "auto",
        "--deferred-out", str(deferred), "--threads", "1", "--no-progress")
    predictions = read_csv(pred)
    to_label = read_csv(deferred)
    assert [r["id"] for r in predictions] == [r["id"] for r in test_rows[N_CALIBRATE:N_CALIBRATE + N_NEW]]
    assert [r["id"] for r in to_label] == [r["id"] for r in predictions if r["deferred"] == "true"]
    if not to_label:
        pytest.fail("no item was deferred: nothing for the LLM to label (calibration too lenient?)")

    llm = tmp_path / "llm.jsonl"
    cli("label", "--data", str(deferred), "--task", "misinfo", "--id-col", "id", "--out", str(llm),
        "--threads", "1", "--no-progress")
    llm_labels = {row["id"]: row["label"] for row in map(json.loads, llm.read_text().splitlines())}
    assert set(llm_labels) == {r["id"] for r in to_label}

    final = tmp_path / "final.csv"
    cli("merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out", str(final))
    merged = read_csv(final)
    assert [m["id"] for m in merged] == [p["id"] for p in predictions]
    for m, p in zip(merged, predictions):
        if p["deferred"] == "true":
            assert m["source"] == "llm" and m["label"] == llm_labels[p["id"]]
        else:
            assert m["source"] == "edge" and m["label"] == p["label"]
    assert f"{len(to_label)} deferred" in capsys.readouterr().err
