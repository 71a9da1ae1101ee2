"""The labels file: torn tails repaired, last row per key wins, atomic rewrite, CSV flattening."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from llm2edge.errors import BusyError
from llm2edge.hub.label.store import (
    LabelWriter,
    item_key,
    latest_by_key,
    margins,
    read_labels,
    repair,
    write_atomic,
    write_csv,
)
from llm2edge.outputs import OutputLock


def _row(key: str, label: str | None, error: str | None = None) -> dict:
    return {"id": key, "key": key, "text": key, "label": label,
            "probs": {"a": 0.7, "b": 0.3} if label else None,
            "error": error, "fields": {"target": "t"}}


def test_append_after_a_torn_line_does_not_glue(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps(_row("k1", "a")) + "\n" + '{"id": "k2", "key": "k2", "te', encoding="utf-8")
    with LabelWriter(path) as w:  # repairs the torn tail first
        w.append(_row("k3", "b"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["k1", "k3"]


def test_a_whole_row_missing_its_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    path.write_text(json.dumps(_row("k1", "a")) + "\n" + json.dumps(_row("k2", "b")), encoding="utf-8")
    assert repair(path)
    assert not repair(path)  # idempotent
    with LabelWriter(path) as w:
        w.append(_row("k3", "a"))
    assert [r["key"] for r in read_labels(path)] == ["k1", "k2", "k3"]


def test_last_row_per_key_wins(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    with LabelWriter(a) as w:
        w.append(_row("k1", None, error="timeout"))
        w.append(_row("k2", "a"))
        w.append(_row("k1", "b"))  # the retry
    with LabelWriter(b) as w:
        w.append(_row("k2", "b"))
    latest = latest_by_key([a, b, tmp_path / "missing.jsonl"])
    assert latest["k1"]["label"] == "b" and latest["k1"]["error"] is None
    assert latest["k2"]["label"] == "b"  # later file wins


def test_write_atomic_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    rows = [_row("k1", "a"), _row("k2", None, error="boom")]
    assert write_atomic(path, rows) == 2
    assert read_labels(path) == rows
    assert not list(tmp_path.glob(".*tmp*"))
    out = write_csv(rows, tmp_path / "l.csv", ["a", "b"])
    with out.open(encoding="utf-8", newline="") as fh:
        got = list(csv.DictReader(fh))
    assert got[0]["p_a"] == "0.7" and got[0]["p_b"] == "0.3" and got[0]["target"] == "t"
    assert got[1]["p_a"] == "" and got[1]["error"] == "boom"


def test_margins() -> None:
    label, conf, margin = margins({"a": 0.2, "b": 0.5, "c": 0.3})
    assert label == "b" and math.isclose(conf, 0.2) and math.isclose(margin, math.log(0.5 / 0.3))
    assert margins({"a": 1.0, "b": 0.0})[2] is None  # an answer without scores has no log margin
    assert margins({"a": 0.6, "b": 0.4}, {"a": -1.0, "b": -3.0})[2] == 2.0


def test_item_key_depends_on_everything_that_shapes_the_label() -> None:
    base = dict(task="t", prompt_hash="p", model="m", backend="hf", shots=0, cot=False, calibrate=False)
    k = item_key("x", {"f": "1"}, **base)
    assert k == item_key("x", {"f": "1"}, **base)
    variants = [item_key("y", {"f": "1"}, **base), item_key("x", {"f": "2"}, **base)]
    for name, value in [("task", "u"), ("prompt_hash", "q"), ("model", "n"), ("backend", "openai"),
                        ("shots", 3), ("cot", True), ("calibrate", True)]:
        variants.append(item_key("x", {"f": "1"}, **{**base, name: value}))
    assert k not in variants and len(set(variants)) == len(variants)


def test_output_lock_is_exclusive_names_the_holder_and_dies_with_it(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    with OutputLock(out) as lock:
        assert lock.path.read_text() == f"{os.getpid()}\n"
        with pytest.raises(BusyError, match=rf"labels\.jsonl: another label run \(pid {os.getpid()}\)"):
            OutputLock(out).acquire()  # flock is per open file: the same process is refused too
    assert not lock.path.exists()  # released: the lock file is gone
    # a holder killed with SIGKILL leaves its lock file, but not its lock
    code = ("import sys, time; from llm2edge.outputs import OutputLock; "
            "OutputLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(BusyError, match=rf"\(pid {holder.pid}\)"):
            OutputLock(out).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    assert lock.path.exists()
    with OutputLock(out):
        assert lock.path.read_text() == f"{os.getpid()}\n"
