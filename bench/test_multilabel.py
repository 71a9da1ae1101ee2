"""Multi-label vs single-label predict per item on the same model (issue 23 goal: within 5%).

The bench's int8 bundle and a twin of it whose manifest says `multi_label: true` (thresholds 0.5): the same
ONNX graph, so the rows differ only in what the edge does for a multi-label bundle (a sigmoid per label
instead of a softmax, a label set per row instead of the argmax, the set joined into the CSV cell). Each
row is `llm2edge predict`'s streaming path (`predict_records` into CSV, in memory) over the bench texts,
in LLM2EDGE_BENCH_ROUNDS rounds that take turns (single, multi, single, multi...); a kind's figure is the
median of its rounds' medians. LLM2EDGE_BENCH_ML_RATIO (default 1.05) bounds multi / single.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest

THREADS = int(os.environ.get("LLM2EDGE_BENCH_THREADS", "1"))
ROUNDS = int(os.environ.get("LLM2EDGE_BENCH_ROUNDS", "3"))
BOUND = float(os.environ.get("LLM2EDGE_BENCH_ML_RATIO", "1.05"))
#: Timed passes over the texts per round.
PASSES = int(os.environ.get("LLM2EDGE_BENCH_ML_PASSES", "5"))
KINDS = ("single-label", "multi-label")
RESULTS: dict[str, list[float]] = {kind: [] for kind in KINDS}


@pytest.fixture(scope="module")
def twins(bench_models: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bench int8 bundle and its multi-label twin (same files, manifest multi_label with 0.5s)."""
    from llm2edge.edge.bundle import read_bundle, write_manifest

    root = tmp_path_factory.mktemp("ml-bench")
    single, multi = root / "single", root / "multi"
    shutil.copytree(bench_models.int8, single)
    shutil.copytree(bench_models.int8, multi)
    info = read_bundle(single)
    versions = json.loads((single / "manifest.json").read_text(encoding="utf-8")).get("versions") or {}
    common = {"labels": info.labels, "max_length": info.max_length, "source_model": info.source_model,
              "quantization": info.quantization, "validation": info.validation, "versions": versions,
              "student": info.student}
    write_manifest(single, **common)  # single-label whatever the given bundle was
    write_manifest(multi, **common, multi_label=True, thresholds=dict.fromkeys(info.labels, 0.5))
    assert read_bundle(multi).multi_label and not read_bundle(single).multi_label
    return {"single-label": single, "multi-label": multi}


@pytest.mark.ci
@pytest.mark.parametrize(("turn", "kind"), [(t, k) for t in range(ROUNDS) for k in KINDS],
                         ids=[f"{k}-r{t + 1}" for t in range(ROUNDS) for k in KINDS])
def test_predict_per_item(benchmark, twins: dict[str, Path], bench_texts: list[str], turn: int,  # noqa: ANN001
                          kind: str) -> None:
    """`predict_records` (CSV) over the bench texts with one bundle kind; after the last round, the ratio."""
    from llm2edge.edge.classifier import Classifier
    from llm2edge.edge.stream import predict_records
    from llm2edge.records import Record

    clf = Classifier.load(twins[kind], threads=THREADS)
    records = [Record(id=str(i), text=t, line=i + 1) for i, t in enumerate(bench_texts)]
    predict_records(clf, records, io.StringIO(), fmt="csv")  # warm-up pass

    def run() -> None:
        predict_records(clf, records, io.StringIO(), fmt="csv")

    benchmark.pedantic(run, rounds=PASSES, iterations=1, warmup_rounds=0)
    per_item = statistics.median(benchmark.stats.stats.data) * 1000 / len(records) \
        if getattr(benchmark, "stats", None) is not None else None
    benchmark.extra_info.update({"system": f"predict {kind} int8 b1", "per_call": len(records),
                                 "threads": THREADS, "per_item_ms": per_item})
    if per_item is None:  # --benchmark-disable: nothing timed
        return
    RESULTS[kind].append(per_item)
    if all(len(v) == ROUNDS for v in RESULTS.values()):
        single, multi = (statistics.median(RESULTS[k]) for k in KINDS)
        ratio = multi / single
        print(f"\nmulti-label vs single-label predict, int8, {THREADS} thread(s), {len(records)} texts: "
              f"{multi:.3f} vs {single:.3f} ms/item ({ratio:.3f}x, bound {BOUND}x)")
        assert ratio <= BOUND, f"multi-label predict is {ratio:.3f}x single-label per item (bound {BOUND}x)"
