"""Multi-label labeling with the hf backend: each text's prefix forwarded once for its k yes/no questions
(`group`, the default) against the batch-shared prefix (the system turn and shots cached, every prompt
forwarded whole in micro-batches), on the embedded SmolLM2 and the shipped `emotions` task (7 labels).

One backend, both modes in each round (order alternating) over the same LLM2EDGE_BENCH_LABEL_TEXTS bench
texts in `label`'s batches of 8: on a shared machine the load drifts between rounds, and a pair taken back
to back sees about the same load. The figure is the median of the per-round shared / grouped time ratios;
LLM2EDGE_BENCH_LABEL_SPEEDUP (default 1.10) is the least it may be. Both modes give the same probabilities
to within 1e-4 (the test asserts it).
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import pytest

THREADS = int(os.environ.get("LLM2EDGE_BENCH_THREADS", "1"))
ROUNDS = int(os.environ.get("LLM2EDGE_BENCH_ROUNDS", "3"))
N_TEXTS = int(os.environ.get("LLM2EDGE_BENCH_LABEL_TEXTS", "8"))
BOUND = float(os.environ.get("LLM2EDGE_BENCH_LABEL_SPEEDUP", "1.10"))
#: Texts per `score_sets` call (`llm2edge label`'s default batch size).
BATCH = 8
MODES = ("shared", "grouped")
#: Seconds per pass of each mode (paired by index).
RESULTS: dict[str, list[float]] = {mode: [] for mode in MODES}


@pytest.mark.ci
def test_grouped_prefix_vs_shared_prefix_labeling(benchmark: Any, bench_texts: list[str]) -> None:
    pytest.importorskip("torch")
    from llm2edge.hub.label.hf_backend import HFBackend
    from llm2edge.hub.label.multilabel import score_sets, yes_no_builders
    from llm2edge.hub.label.prompts import PromptBuilder
    from llm2edge.hub.label.task import load_task

    items = [(f"t{i}", text, {}) for i, text in enumerate(bench_texts[:N_TEXTS])]
    builders = yes_no_builders(PromptBuilder.create(load_task("emotions")))
    backend = HFBackend(threads=THREADS)
    score_sets(backend, builders, items[:2])  # loads the model
    probs: dict[str, list[dict[str, float]]] = {}

    def run(mode: str) -> None:
        backend.shares_group_prefix = mode == "grouped"  # type: ignore[misc]
        start = time.perf_counter()
        out = []
        for i in range(0, len(items), BATCH):
            out += score_sets(backend, builders, items[i:i + BATCH])
        RESULTS[mode].append(time.perf_counter() - start)
        probs[mode] = [s.probs or {} for s in out]

    turn = [0]

    def pair() -> None:
        order = MODES if turn[0] % 2 == 0 else MODES[::-1]
        turn[0] += 1
        for mode in order:
            run(mode)

    benchmark.pedantic(pair, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    backend.close()
    diff = max(abs(a[n] - b[n]) for a, b in zip(probs["grouped"], probs["shared"]) for n in a)
    speedup = statistics.median(s / g for s, g in zip(RESULTS["shared"], RESULTS["grouped"]))
    rates = {mode: len(items) / statistics.median(RESULTS[mode]) for mode in MODES}
    benchmark.extra_info.update({
        "system": "label multi-label hf, shared then grouped prefix (a pair per round)",
        "per_call": 2 * len(items), "threads": THREADS, "labels": len(builders),
        "shared_texts_per_s": rates["shared"], "grouped_texts_per_s": rates["grouped"], "speedup": speedup,
        "max_prob_diff": diff})
    print(f"\nmulti-label labeling, SmolLM2, {len(builders)} labels, {THREADS} thread(s), {len(items)} "
          f"texts, {len(RESULTS['grouped'])} paired rounds: grouped {rates['grouped']:.2f} vs shared "
          f"{rates['shared']:.2f} texts/s (median paired speed-up {speedup:.2f}x, bound {BOUND}x; "
          f"max |dp| {diff:.1e})")
    assert diff < 1e-4, f"grouped and shared prefixes disagree by {diff:.2e}"
    assert speedup >= BOUND, f"grouped-prefix labeling is {speedup:.2f}x the shared prefix (bound {BOUND}x)"
