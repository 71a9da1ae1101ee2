"""Cold start and peak memory: a fresh process loads the model and classifies 100 texts (edge vs torch)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from llm2edge.pipeline.bench.spec import SystemSpec
from llm2edge.pipeline.bench.timing import fresh_peak_rss

THREADS = int(os.environ.get("LLM2EDGE_BENCH_THREADS", "1"))
N = 100


@pytest.mark.parametrize("system", ["edge int8", "edge fp32", "torch eager"])
def test_fresh_process(benchmark, bench_models: Any, bench_texts: list[str], memory: dict,  # noqa: ANN001
                       system: str) -> None:
    """Wall time (process start, imports, load, 100 texts at batch 32) and peak RSS of a fresh process."""
    kind, which = {"edge int8": ("edge", "int8"), "edge fp32": ("edge", "fp32"),
                   "torch eager": ("torch", "model")}[system]
    if kind == "torch":
        pytest.importorskip("transformers", reason="the torch row needs the hub extra")
    path = getattr(bench_models, which)
    if path is None:
        pytest.skip(f"no {which} model (set LLM2EDGE_BENCH_BUNDLE_FP32 / LLM2EDGE_BENCH_MODEL)")
    spec = SystemSpec(name=f"{system} fresh", kind=kind, batch=32, chunk=N, path=str(path), threads=THREADS,
                      max_length=bench_models.max_length)
    peaks: list[float] = []

    def fresh() -> None:
        rss, _ = fresh_peak_rss(spec, bench_texts[:N])
        peaks.append(rss)

    benchmark.pedantic(fresh, rounds=2, iterations=1, warmup_rounds=0)
    stats = getattr(benchmark, "stats", None)
    seconds = stats.stats.median if stats is not None else float("nan")
    memory[system] = {"rss_mb": max(peaks), "seconds": seconds}
    benchmark.extra_info.update({"system": f"{system} fresh", "kind": kind, "rss_mb": max(peaks), "texts": N})
    assert max(peaks) > 0
