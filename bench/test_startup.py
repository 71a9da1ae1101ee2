"""Start-up against the floor: `llm2edge predict --bundle B TEXT` vs bench/floor.py (bench/startup.py).

Writes bench/out/startup.json, which bench/gates.py gates (CPU time and peak RSS ratios).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

RUNS = int(os.environ.get("LLM2EDGE_BENCH_STARTUP_RUNS", "7"))
OUT = Path(os.environ.get("LLM2EDGE_BENCH_OUT", Path(__file__).parent / "out"))


@pytest.mark.ci
def test_startup_against_the_floor(benchmark, bench_models: Any, startup: dict) -> None:  # noqa: ANN001
    """Medians of RUNS interleaved whole-process runs at one thread each; the labels must agree.

    bench/startup.py runs as its own small process: Linux carries a process's peak RSS across exec, so a
    child forked from this pytest process (hundreds of MiB with torch loaded) would report pytest's peak,
    not the command's. (Run once under pytest-benchmark so `--benchmark-only` keeps it.)"""
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "startup.json"
    cmd = [sys.executable, str(Path(__file__).with_name("startup.py")), "--bundle", str(bench_models.int8),
           "--runs", str(RUNS), "--threads", "1", "--json", str(out)]
    benchmark.pedantic(lambda: subprocess.run(cmd, check=True, capture_output=True, timeout=600), rounds=1,
                       iterations=1, warmup_rounds=0)
    result = json.loads(out.read_text(encoding="utf-8"))
    startup.update(result)
    benchmark.extra_info.update({"startup_cpu_ratio": round(result["cpu_ratio"], 3),
                                 "startup_rss_ratio": round(result["rss_ratio"], 3)})
    assert result["cpu_ratio"] > 0 and result["rss_ratio"] > 0
