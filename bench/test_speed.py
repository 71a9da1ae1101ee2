"""Per-item latency, one system per worker process, all with the same thread count (see conftest.py)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from llm2edge.pipeline.bench.run import STREAM_CHUNK
from llm2edge.pipeline.bench.runners import cuda_unavailable
from llm2edge.pipeline.bench.spec import SystemSpec

THREADS = int(os.environ.get("LLM2EDGE_BENCH_THREADS", "1"))
BUDGET_S = float(os.environ.get("LLM2EDGE_BENCH_BUDGET", "3"))
ROUNDS = int(os.environ.get("LLM2EDGE_BENCH_ROUNDS", "3"))

#: (row name, kind, which model, batch, texts per call (0 = batch), in the CI subset)
STUDENT_ROWS = [
    ("static b1", "static", "static", 1, 0, True),
    ("static b32", "static", "static", 32, 0, False),
    ("edge int8 b1", "edge", "int8", 1, 0, True),
    ("edge int8 b32", "edge", "int8", 32, 0, True),
    ("edge int8 b32 stream", "edge", "int8", 32, STREAM_CHUNK, True),
    ("edge fp32 b1", "edge", "fp32", 1, 0, True),
    ("edge fp32 b32", "edge", "fp32", 32, 0, True),
    ("torch eager b1", "torch", "model", 1, 0, True),
    ("torch eager b32", "torch", "model", 32, 0, False),
    ("optimum ORTModel int8 b1", "ortmodel", "int8", 1, 0, False),
    ("optimum ORTModel int8 b32", "ortmodel", "int8", 32, 0, False),
]


def _param(row: tuple, turn: int) -> object:
    marks = [pytest.mark.ci] if row[-1] else []
    return pytest.param(*row[:-1], id=row[0].replace(" ", "-") + (f"-r{turn + 1}" if ROUNDS > 1 else ""),
                        marks=marks)


def _path(models: Any, which: str) -> str:
    path = {"int8": models.int8, "fp32": models.fp32, "model": models.model, "static": models.static}[which]
    if path is None:
        pytest.skip(f"no {which} model (set LLM2EDGE_BENCH_BUNDLE_FP32 / _STATIC / LLM2EDGE_BENCH_MODEL)")
    return str(path)


@pytest.mark.ci
def test_pipe_overhead(run_system) -> None:  # noqa: ANN001
    """The worker pipe's own round trip (a system that does nothing): every other row includes it."""
    row = run_system(SystemSpec(name="noop (pipe round trip)", kind="noop", threads=THREADS), budget_s=0.5)
    assert row.per_item_ms < 5


@pytest.mark.ci
def test_edge_two_threads(run_system, bench_models: Any) -> None:  # noqa: ANN001
    """The stream row (256-text chunk per call) at two threads: two model calls at once (edge/workers.py);
    bench/gates.py compares it with the same row at LLM2EDGE_BENCH_THREADS (1)."""
    spec = SystemSpec(name="edge int8 b32 stream 2 threads", kind="edge", batch=32, chunk=STREAM_CHUNK,
                      path=str(bench_models.int8), threads=2, labels=bench_models.labels,
                      max_length=bench_models.max_length)
    assert run_system(spec).per_item_ms > 0


# every row once per round, rounds one after another: the systems take turns (conftest.merge_rounds)
@pytest.mark.parametrize(("name", "kind", "which", "batch", "chunk"),
                         [_param(r, turn) for turn in range(ROUNDS) for r in STUDENT_ROWS])
def test_student(run_system, bench_models: Any, name: str, kind: str, which: str, batch: int,  # noqa: ANN001
                 chunk: int) -> None:
    """The student ladder: the static-embedding student and the MiniLM student (edge runtime int8 and fp32,
    torch eager pipeline, optimum ORTModel pipeline), trained on the same labels."""
    if kind in ("torch", "ortmodel"):
        pytest.importorskip("transformers", reason="torch rows need the hub extra")
    if kind == "ortmodel":
        pytest.importorskip("optimum.onnxruntime", reason="ORTModel rows need the export extra")
    spec = SystemSpec(name=name, kind=kind, batch=batch, chunk=chunk, path=_path(bench_models, which),
                      threads=THREADS, labels=bench_models.labels, max_length=bench_models.max_length)
    row = run_system(spec)
    assert row.per_item_ms > 0


LLM_ROWS = [
    pytest.param("LLM scoring b1", "llm-score", 1, id="LLM-scoring-b1"),
    pytest.param("LLM scoring b8", "llm-score", 8, id="LLM-scoring-b8"),
    pytest.param("LLM generation b1", "llm-generate", 1, id="LLM-generation-b1"),
]


@pytest.mark.parametrize(("name", "kind", "batch"), LLM_ROWS)
def test_llm_in_process(run_system, name: str, kind: str, batch: int) -> None:  # noqa: ANN001
    """The embedded SmolLM2 labeler in-process: constrained scoring (one forward) and free generation."""
    pytest.importorskip("transformers", reason="LLM rows need the hub extra")
    spec = SystemSpec(name=name, kind=kind, batch=batch, task="humor", threads=THREADS, max_new_tokens=16)
    row = run_system(spec, budget_s=2 * BUDGET_S)
    assert row.per_item_ms > 0


def test_llm_server(run_system, llm_server_url: str) -> None:  # noqa: ANN001
    """The same LLM behind the OpenAI-compatible llama.cpp server (one request per item)."""
    pytest.importorskip("openai", reason="the server row needs the openai client (hub extra)")
    spec = SystemSpec(name="LLM via server b1", kind="llm-server", task="humor", url=llm_server_url,
                      model="smollm2", threads=THREADS)
    row = run_system(spec, budget_s=2 * BUDGET_S)
    assert row.per_item_ms > 0


GPU_ROWS = [
    pytest.param("edge int8 cuda b1", "edge", 1, id="edge-int8-cuda-b1"),
    pytest.param("edge int8 cuda b32", "edge", 32, id="edge-int8-cuda-b32"),
    pytest.param("edge fp32 cuda b32", "edge-fp32", 32, id="edge-fp32-cuda-b32"),
    pytest.param("LLM scoring cuda b1", "llm-score", 1, id="LLM-scoring-cuda-b1"),
    pytest.param("LLM scoring cuda b16", "llm-score", 16, id="LLM-scoring-cuda-b16"),
]


@pytest.mark.gpu
@pytest.mark.parametrize(("name", "kind", "batch"), GPU_ROWS)
def test_gpu(run_system, bench_models: Any, name: str, kind: str, batch: int) -> None:  # noqa: ANN001
    """The GPU path: the bundle on onnxruntime-gpu's CUDA provider, the hf labeler on CUDA."""
    real = "edge" if kind.startswith("edge") else kind
    reason = cuda_unavailable(real)
    if reason:
        pytest.skip(reason)
    path = str(bench_models.fp32 if kind == "edge-fp32" else bench_models.int8)
    spec = SystemSpec(name=name, kind=real, batch=batch, path=path if real == "edge" else None, device="cuda",
                      task="humor" if real != "edge" else None, threads=THREADS)
    row = run_system(spec)
    assert row.per_item_ms > 0
