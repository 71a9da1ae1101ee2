"""llm2edge.pipeline.bench.worker: the worker process, its pipe protocol, and the spec it is started with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from llm2edge.errors import BackendError
from llm2edge.pipeline.bench.spec import SystemSpec
from llm2edge.pipeline.bench.texts import sample_texts
from llm2edge.pipeline.bench.worker import WORKER_MODULE, Worker


def test_spec_round_trip_and_per_call() -> None:
    spec = SystemSpec(name="edge int8 b32 stream", kind="edge", batch=32, chunk=256, path="/b",
                      labels=("a", "b"))
    back = SystemSpec.from_json(spec.to_json())
    assert back == spec and back.per_call == 256
    assert SystemSpec(name="x", kind="edge", batch=32).per_call == 32


def test_worker_module_usage() -> None:
    """`python -m llm2edge.pipeline.bench.worker --help` explains the protocol; bad arguments exit 2."""
    ok = subprocess.run([sys.executable, "-m", WORKER_MODULE, "--help"], capture_output=True, text=True,
                        timeout=120)
    assert ok.returncode == 0 and "SPEC_JSON TEXTS_FILE" in ok.stderr and "`run K`" in ok.stderr
    assert "found in sys.modules" not in ok.stderr  # the package does not import its worker twice
    bad = subprocess.run([sys.executable, "-m", WORKER_MODULE], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "usage:" in bad.stderr


def test_noop_worker_protocol() -> None:
    spec = SystemSpec(name="noop", kind="noop", batch=2)
    with Worker(spec, ["a", "b", "c", "d", "e"]) as worker:
        assert worker.batches == 2  # the last partial batch is dropped
        assert worker.run() >= 0 and worker.run(7) >= 0
        seconds, items = worker.run_all()
        assert items == 4 and seconds >= 0
        assert worker.peak_rss_mb() > 1


def test_unknown_kind_fails_in_the_worker() -> None:
    with pytest.raises(BackendError, match="unknown system kind 'gpu-magic'"):
        Worker(SystemSpec(name="bad", kind="gpu-magic"), ["a"]).start()


def test_edge_worker_and_bad_bundle(tiny: Path, tmp_path: Path) -> None:
    texts = sample_texts(None, n=16)
    spec = SystemSpec(name="edge fp32 b4", kind="edge", batch=4, path=str(tiny))
    with Worker(spec, texts) as worker:
        assert worker.batches == 4 and worker.load_s is not None
        assert worker.run() > 0
    bad = SystemSpec(name="edge missing", kind="edge", path=str(tmp_path / "nope"))
    with pytest.raises(BackendError, match="bundle folder not found"):
        Worker(bad, texts).start()
