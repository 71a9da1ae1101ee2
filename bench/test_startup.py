"""Start-up against the floor: `llm2edge predict --bundle B TEXT` vs bench/floor.py (bench/startup.py).

Writes bench/out/startup.json, which bench/gates.py gates (CPU time and peak RSS ratios).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest

RUNS = int(os.environ.get("LLM2EDGE_BENCH_STARTUP_RUNS", "7"))
OUT = Path(os.environ.get("LLM2EDGE_BENCH_OUT", Path(__file__).parent / "out"))


def _startup_module() -> Any:
    """bench/startup.py (a script, not a package module)."""
    path = Path(__file__).with_name("startup.py")
    spec = importlib.util.spec_from_file_location("llm2edge_bench_startup", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.ci
def test_startup_against_the_floor(benchmark, bench_models: Any, startup: dict) -> None:  # noqa: ANN001
    """Medians of RUNS interleaved whole-process runs at one thread each; the labels must agree.
    (Run once under pytest-benchmark so `--benchmark-only` keeps it; the timing that counts is its own.)"""
    measure = _startup_module().measure
    result: dict = {}
    benchmark.pedantic(lambda: result.update(measure(bench_models.int8, runs=RUNS, threads=1)), rounds=1,
                       iterations=1, warmup_rounds=0)
    benchmark.extra_info.update({"startup_cpu_ratio": round(result["cpu_ratio"], 3),
                                 "startup_rss_ratio": round(result["rss_ratio"], 3)})
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    startup.update(result)
    assert result["cpu_ratio"] > 0 and result["rss_ratio"] > 0
