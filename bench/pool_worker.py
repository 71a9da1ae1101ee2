"""One fresh process: embed an unlabeled pool into the chunked cache and label it as `train --unlabeled`
does (hub.train.pool), then print peak RSS and throughput as JSON (bench/test_pool.py runs it per size).

    python bench/pool_worker.py POOL.csv LABELED.csv CACHE_DIR

The encoder is the static student's token table (distilled from the packaged MiniLM, cached): a real
encoder of the project, cheap enough for a million rows on a 2-core CPU, so the process measures the
pool's streaming machinery (read, hash, embed, cache, select) rather than a transformer's speed.
"""

from __future__ import annotations

import csv
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

DIMS = 64


def main(pool: str, labeled: str, cache: str) -> None:
    """Build the cache of `pool`, pick its rows for the labeled rows' targets; print the figures."""
    from llm2edge.export.static_model import StaticWeights
    from llm2edge.hub.models import default_student
    from llm2edge.hub.train import PoolConfig
    from llm2edge.hub.train.distill import load_or_distill
    from llm2edge.hub.train.pool_cache import hashes, open_pool
    from llm2edge.hub.train.pool_labels import label_pool

    table = load_or_distill(default_student(), DIMS, threads=1, progress=False)
    tokenizer = table.tokenizer(64)
    static = StaticWeights(embeddings=table.embeddings, weight=np.zeros((2, DIMS), dtype=np.float32),
                           bias=np.zeros(2, dtype=np.float32))

    def encode(texts: list[str]) -> np.ndarray:
        return static.mean_vectors([e.ids for e in tokenizer.encode_batch(texts)])

    with Path(labeled).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels = sorted({r["label"] for r in rows})
    t0 = time.perf_counter()
    store = open_pool(pool, "text", model="static", max_length=64, chunk_size=4096, encode=encode,
                      progress=False, cache_root=Path(cache))
    embed_s = time.perf_counter() - t0
    x = encode([r["text"] for r in rows])
    targets = np.eye(len(labels))[[labels.index(r["label"]) for r in rows]]
    t1 = time.perf_counter()
    picked = label_pool(x, targets, store, hashes(r["text"] for r in rows), PoolConfig(), seed=0,
                        class_weight="auto")
    label_s = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": store.rows, "embed_s": round(embed_s, 2), "label_s": round(label_s, 2),
                      "embed_rows_per_s": round(store.rows / embed_s, 1),
                      "label_rows_per_s": round(store.rows / label_s, 1), "peak_rss_mb": round(peak_mb, 1),
                      "picked": int(len(picked.rows)), "check": picked.info.get("check")}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
