"""The `+pool` interventions: a run also learns from its data set's unlabeled pool (`unlabeled = FILE`).

The pool is embedded once per (data set, student) with the student's frozen encoder and cached in chunks
(OUT/embeddings/pool/<key>/, `hub.train.pool.PoolCache`). Pool rows carry no gold and no LLM
label into a run: each run labels them itself from its own training rows (`hub.train.pool.label_pool`).
A pool row whose text is a labeled row is leakage (with `folds`, every labeled row is some fold's test
row): a DataError naming the row, unless the data set says `unlabeled_drop_labeled = true` (e.g.
raop_persuasion, whose pool is its own train.csv: the rows with a recorded answer are dropped and counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.defaults import LABEL_THRESHOLD
from llm2edge.errors import ConfigError, DataError
from llm2edge.hashing import digest
from llm2edge.hub.curate.rows import Row
from llm2edge.hub.train.config import PoolConfig
from llm2edge.hub.train.pool_cache import PoolCache, gather, hashes, open_pool, texts_of, where_of
from llm2edge.hub.train.pool_labels import label_pool
from llm2edge.pipeline.experiment.sources import Source
from llm2edge.pipeline.experiment.specs import DatasetSpec, ExperimentConfig, StudentSpec

#: The step that adds the pool to an intervention ("naive+pool", "experts_crossval+soft+pool").
POOL_STEP = "pool"


@dataclass
class Pool:
    """A data set's embedded pool: its cache, the rows never picked (labeled rows), how to read it back."""

    dataset: DatasetSpec
    cache: PoolCache
    skip: np.ndarray  # text hashes of the labeled rows (sorted uint64)
    dropped: int  # pool rows left out as labeled rows

    def texts(self, rows: np.ndarray) -> list[str]:
        """The texts of the given pool rows."""
        assert self.dataset.unlabeled is not None
        return texts_of(self.dataset.unlabeled, self.dataset.unlabeled_text_col, rows)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The cached embeddings of the given pool rows."""
        return gather(self.cache, rows)


def load_pool(dataset: DatasetSpec, student: StudentSpec, source: Source, config: ExperimentConfig, out: Path,
              memo: dict[str, Any]) -> Pool:
    """The data set's pool for this student, embedded and cached (OUT/embeddings/pool/), checked for
    leakage against every labeled row of the source."""
    from llm2edge.hub.curate.embed import Encoder
    from llm2edge.pipeline.experiment.students import student_threads

    if dataset.unlabeled is None:
        raise ConfigError(f"data set '{dataset.name}' has no unlabeled pool")
    if dataset.student_template.strip() != "{text}" and dataset.fields:
        raise ConfigError(f"data set '{dataset.name}': pool rows have no per-item fields, but the student "
                          f"reads '{dataset.student_template}'")
    labeled = hashes(str(r["text"]) for split in source.splits for r in [*split.train.rows, *split.test])
    name = digest([dataset.name, student.name, str(dataset.unlabeled), labeled.tobytes().hex()])
    if name in memo:
        return memo[name]
    encoder: list[Any] = []

    def encode(texts: list[str]) -> np.ndarray:
        if not encoder:
            encoder.append(Encoder(student.model, max_length=student.max_length,
                                   threads=student_threads(student, config)))
        return encoder[0].encode(texts)

    cache = open_pool(dataset.unlabeled, dataset.unlabeled_text_col, model=student.model,
                      max_length=student.max_length, chunk_size=config.pool.chunk_size, encode=encode,
                      cache_root=out / "embeddings" / "pool")
    if not dataset.unlabeled_drop_labeled:
        first = cache.first(labeled)
        if first is not None:
            where = where_of(dataset.unlabeled, dataset.unlabeled_text_col, first)
            raise DataError(f"{where}: this unlabeled pool row of data set '{dataset.name}' is also a "
                            "labeled (test) row: leakage; remove it, or set unlabeled_drop_labeled = true")
    pool = Pool(dataset, cache, labeled, cache.count(labeled))
    memo[name] = pool
    return pool


def pool_rows(pool: Pool, x: np.ndarray, rows: Sequence[Row], labels: Sequence[str], student: StudentSpec,
              settings: PoolConfig, config: ExperimentConfig, *, multi_label: bool = False
              ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(pool row indices, their targets, stats) for one run from its training rows' embeddings `x`
    (`multi_label`: the rows hold label sets; targets per label, `hub.train.pool_labels`)."""
    if multi_label:  # each label's own probability (the set's indicator where a row has no probs)
        targets = np.array([[float((r.get("probs") or {}).get(name, name in r["label"])) for name in labels]
                            for r in rows], dtype=np.float64)
    else:
        targets = np.array([[float((r.get("probs") or {r["label"]: 1.0}).get(name, 0.0)) for name in labels]
                            for r in rows], dtype=np.float64)
        targets = targets / np.clip(targets.sum(axis=1, keepdims=True), 1e-12, None)
    picked = label_pool(x, targets, pool.cache, pool.skip, settings, seed=config.seed,
                        class_weight=student.class_weight, folds=config.curate.folds,
                        oof_class_weight=config.curate.oof_class_weight, multi_label=multi_label)
    stats = {"n_pool": len(picked.rows), "pool_usable": picked.info["usable"], "pool_dropped": pool.dropped}
    return picked.rows, picked.targets, stats


def pool_train_rows(pool: Pool, picked: np.ndarray, targets: np.ndarray, labels: Sequence[str], *,
                    multi_label: bool = False) -> list[Row]:
    """The chosen pool rows as training rows (soft targets; `source: pool`); multi-label, `label` is the set
    of labels at LABEL_THRESHOLD."""
    def label(p: np.ndarray) -> Any:
        if multi_label:
            return [name for name, v in zip(labels, p) if v >= LABEL_THRESHOLD]
        return labels[int(p.argmax())]

    return [{"id": f"pool-{int(i)}", "text": text, "label": label(p),
             "probs": {name: float(v) for name, v in zip(labels, p)}, "source": "pool"}
            for i, text, p in zip(picked, pool.texts(picked), targets)]
