"""Peak memory of `train --unlabeled` is flat in the pool's size: a small and a large pool, each embedded and
labeled in a fresh process (bench/pool_worker.py), peak RSS side by side; the large one within 1.3x.

Sizes: LLM2EDGE_BENCH_POOL_ROWS (default "10000,200000" in CI; bench/RESULTS.md has the 1,000,000-row run).
Texts: the shipped movie-review snippets, each with its row number appended (every pool row distinct).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the pool needs the hub extra")

HERE = Path(__file__).resolve().parent
MOVIES = HERE.parent / "examples" / "movie_sentiment"
SIZES = [int(n) for n in os.environ.get("LLM2EDGE_BENCH_POOL_ROWS", "10000,200000").split(",")]
#: The largest pool's peak RSS over the smallest's may be at most this.
FLAT = 1.3
RESULTS: dict[int, dict] = {}


@pytest.fixture(scope="module")
def pool_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The labeled rows (400 train snippets) and one pool file per size."""
    d = tmp_path_factory.mktemp("pool-bench")
    with (MOVIES / "train.csv").open(encoding="utf-8", newline="") as handle:
        train = list(csv.DictReader(handle))
    with (MOVIES / "test.csv").open(encoding="utf-8", newline="") as handle:
        texts = [r["text"] for r in train[400:]] + [r["text"] for r in csv.DictReader(handle)]
    labeled = d / "labeled.csv"
    with labeled.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows((r["text"], r["label"]) for r in train[:400])
    files = {"labeled": labeled}
    for n in SIZES:
        path = d / f"pool-{n}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text"])
            writer.writerows([f"{texts[i % len(texts)]} #{i}"] for i in range(n))
        files[str(n)] = path
    return files


@pytest.mark.ci
@pytest.mark.parametrize("rows", SIZES)
def test_pool_memory(benchmark, pool_files: dict[str, Path], tmp_path: Path, rows: int) -> None:  # noqa: ANN001
    """Embed and label a pool of `rows` rows in a fresh process; peak RSS and rows per second."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}

    def run() -> None:
        done = subprocess.run([sys.executable, str(HERE / "pool_worker.py"), str(pool_files[str(rows)]),
                               str(pool_files["labeled"]), str(tmp_path / "cache")],
                              capture_output=True, text=True, env=env, check=True)
        RESULTS[rows] = json.loads(done.stdout.strip().splitlines()[-1])

    benchmark.pedantic(run, rounds=1, iterations=1, warmup_rounds=0)
    # per_call: the summary's ms/item is then milliseconds per pool row (embed, cache and label)
    benchmark.extra_info.update({"system": f"pool {rows:,} rows", "per_call": rows, **RESULTS[rows]})
    assert RESULTS[rows]["rows"] == rows
    if len(RESULTS) == len(SIZES):
        small, large = RESULTS[min(SIZES)], RESULTS[max(SIZES)]
        ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
        print(f"\npool memory: {min(SIZES):,} rows {small['peak_rss_mb']:.0f} MB, {max(SIZES):,} rows "
              f"{large['peak_rss_mb']:.0f} MB ({ratio:.2f}x, bound {FLAT}x); embed "
              f"{large['embed_rows_per_s']:,.0f} rows/s, label {large['label_rows_per_s']:,.0f} rows/s")
        assert ratio <= FLAT, f"peak RSS grows with the pool: {ratio:.2f}x"
