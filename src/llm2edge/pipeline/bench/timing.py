"""Timing a worker: how many calls fit a budget, the calls themselves, per-item rows, fresh-process memory."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from llm2edge.pipeline.bench.spec import SpeedRow, SystemSpec
from llm2edge.pipeline.bench.worker import Worker


def plan_rounds(call_s: float, *, budget_s: float, min_rounds: int, max_rounds: int) -> int:
    """How many timed calls fit in `budget_s` given one call's seconds, clamped to [min, max]."""
    fit = int(budget_s / max(call_s, 1e-6))
    return max(min_rounds, min(max_rounds, fit))


def time_calls(worker: Worker, rounds: int, *, warmup: int = 2) -> list[float]:
    """Wall seconds of `rounds` round trips (after `warmup` untimed calls), as the parent sees them."""
    for _ in range(warmup):
        worker.run()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        worker.run()
        times.append(time.perf_counter() - t)
    return times


def speed_row(spec: SystemSpec, call_seconds: Sequence[float], *, load_s: float | None = None,
              rss_mb: float | None = None, note: str = "") -> SpeedRow:
    """A table row from per-call times: per-item latency = median call / texts per call."""
    per_item = statistics.median(call_seconds) / spec.per_call
    return SpeedRow(system=spec.name, kind=spec.kind, batch=spec.batch, per_item_ms=per_item * 1000,
                    items_per_s=1 / per_item if per_item > 0 else math.inf, rounds=len(call_seconds),
                    load_s=load_s, rss_mb=rss_mb, per_call=spec.per_call, note=note)


def measure(spec: SystemSpec, texts: Sequence[str], *, budget_s: float, log_dir: Path | None = None,
            warmup: int = 2, min_rounds: int = 10) -> SpeedRow:
    """Load one system in a worker, time it (warmup, then as many calls as fit the budget), read its RSS."""
    with Worker(spec, texts, log_dir=log_dir) as worker:
        for _ in range(warmup):
            worker.run()
        probe = worker.run()
        per_pass = worker.batches
        low = min(min_rounds, 2 * per_pass) if spec.per_call > 1 else min_rounds
        rounds = plan_rounds(probe, budget_s=budget_s, min_rounds=low, max_rounds=max(2 * per_pass, 5))
        times = time_calls(worker, rounds, warmup=0)
        return speed_row(spec, times, load_s=worker.load_s, rss_mb=worker.peak_rss_mb())


def fresh_peak_rss(spec: SystemSpec, texts: Sequence[str]) -> tuple[float, float]:
    """(peak RSS MiB, seconds) of a fresh process that loads `spec` and classifies `texts` once."""
    with Worker(spec, texts) as worker:
        seconds, _ = worker.run_all()
        return worker.peak_rss_mb(), (worker.load_s or 0.0) + seconds
