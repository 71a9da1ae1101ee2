"""Timing a worker: how many calls fit a budget, the calls themselves, per-item rows, fresh-process memory."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from llm2edge.pipeline.bench.spec import SpeedRow, SystemSpec
from llm2edge.pipeline.bench.worker import Worker

#: A whole pass over the texts is timed when it takes at most this many seconds (or the budget, if more).
WHOLE_PASS_S = 30.0


def plan_rounds(call_s: float, *, budget_s: float, min_rounds: int, max_rounds: int) -> int:
    """How many timed calls fit in `budget_s` given one call's seconds, clamped to [min, max]."""
    fit = int(budget_s / max(call_s, 1e-6))
    return max(min_rounds, min(max_rounds, fit))


def plan_passes(call_s: float, per_pass: int, *, budget_s: float, min_rounds: int, max_rounds: int) -> int:
    """Timed calls in whole passes over the texts (the calls start at the first batch), so every system of
    a run is timed on the same texts: a median over a speed-dependent prefix of texts of varying length
    compares different work. A pass longer than max(budget_s, WHOLE_PASS_S) (an LLM at batch 1) falls back
    to the prefix that fits `plan_rounds`."""
    pass_s = call_s * max(per_pass, 1)
    if per_pass < 1 or pass_s > max(budget_s, WHOLE_PASS_S):
        return plan_rounds(call_s, budget_s=budget_s, min_rounds=min_rounds, max_rounds=max_rounds)
    fit = int(budget_s / max(pass_s, 1e-6))
    passes = max(-(-min_rounds // per_pass), min(max(1, max_rounds // per_pass), fit), 1)
    return passes * per_pass


def warm_and_plan(worker: Worker, spec: SystemSpec, *, budget_s: float, warmup: int, min_rounds: int,
                  batch_min_rounds: int) -> tuple[float, int]:
    """Warm a loaded worker, time one probe call and plan the timed calls (`plan_passes`; at least
    `min_rounds` at batch 1, `batch_min_rounds` or two passes with batches); the next call is the first
    batch. Returns (probe seconds, timed calls)."""
    for _ in range(warmup):
        worker.run()
    probe = worker.run()
    per_pass = worker.batches
    low = min(batch_min_rounds, 2 * per_pass) if spec.per_call > 1 else min_rounds
    rounds = plan_passes(probe, per_pass, budget_s=budget_s, min_rounds=low, max_rounds=max(2 * per_pass, 5))
    worker.rewind()
    return probe, rounds


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
    """Load one system in a worker, time it (warmup, then whole passes over the texts: `plan_passes`), read
    its RSS."""
    with Worker(spec, texts, log_dir=log_dir) as worker:
        _, rounds = warm_and_plan(worker, spec, budget_s=budget_s, warmup=warmup, min_rounds=min_rounds,
                                  batch_min_rounds=min_rounds)
        times = time_calls(worker, rounds, warmup=0)
        return speed_row(spec, times, load_s=worker.load_s, rss_mb=worker.peak_rss_mb())


def fresh_peak_rss(spec: SystemSpec, texts: Sequence[str]) -> tuple[float, float]:
    """(peak RSS MiB, seconds) of a fresh process that loads `spec` and classifies `texts` once."""
    with Worker(spec, texts) as worker:
        seconds, _ = worker.run_all()
        return worker.peak_rss_mb(), (worker.load_s or 0.0) + seconds


def merge_rounds(rows: Sequence[SpeedRow]) -> list[SpeedRow]:
    """One row per system from rows measured in several rounds (bench/test_speed.py's ROUNDS: the systems
    take turns, a fresh process each time): the median round's latency, all calls, the largest RSS.

    One process can be 20-30% slower than another for its whole life (the same int8 bundle on the same
    texts: 7.7-10.0 ms per item over 8 processes) and the machine drifts over minutes (torch eager b1:
    22.9-31.1 ms in three runs of 3 minutes), so a ratio of two single processes timed minutes apart is a
    coin flip at a 10% margin; turns and the median of rounds are not.
    """
    groups: dict[str, list[SpeedRow]] = {}
    for row in rows:
        groups.setdefault(row.system, []).append(row)
    merged = []
    for group in groups.values():
        per_item = statistics.median(r.per_item_ms for r in group)
        loads = [r.load_s for r in group if r.load_s is not None]
        rss = [r.rss_mb for r in group if r.rss_mb is not None]
        merged.append(SpeedRow(system=group[0].system, kind=group[0].kind, batch=group[0].batch,
                               per_item_ms=per_item,
                               items_per_s=1000 / per_item if per_item > 0 else math.inf,
                               rounds=sum(r.rounds for r in group),
                               load_s=statistics.median(loads) if loads else None,
                               rss_mb=max(rss) if rss else None, per_call=group[0].per_call,
                               note=group[0].note))
    return merged
