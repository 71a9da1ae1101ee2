"""Learning from unlabeled text: `train --unlabeled POOL` and the experiment's `+pool` interventions.

Every user holds far more unlabeled text than the LLM labeled. The pool's rows get targets from a linear
model on the frozen encoder's sentence embeddings of the teacher's labels, then train the student beside
the labeled rows (as soft targets):

- "self" (self-training, UST / Noisy Student style): a head fitted on the labeled rows labels the pool; per
  class, the most confident rows predicted as that class are kept, up to a quota in proportion to the
  teacher's label shares (so its majority label cannot snowball); the head refits on labeled + kept rows
  (with dropout on the features when `noise` > 0) and labels the pool again, `rounds` passes in all.
- "oof": the k out-of-fold models of the teacher's labels (the crossval machinery of `curate`) score the
  pool; each row's target is their mean; the same quotas pick the rows.

A pool of any size streams: it is read, embedded and cached in chunks (`pool_cache.PoolCache`, in the
user cache: a crashed or repeated run reuses every finished chunk), each labeling pass reads the cached
chunks one at a time and keeps only the best `quota` rows per class, so memory holds the budget, not the
pool. Rows whose text
(whitespace collapsed) is a labeled row, or an eval row, are dropped and counted.

Multi-label: the labeler is one logistic regression per label, quotas go per label group (the rarest label
of a row's set, or the empty set) and a pool row's targets are its per-label probabilities, its set those
at LABEL_THRESHOLD (`pool_labels`).

Reading and caching live in `pool_cache`, labeling in `pool_labels`; this module is the train stage's entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say, warn
from llm2edge.defaults import LABEL_THRESHOLD
from llm2edge.hub.train.config import TrainConfig
from llm2edge.hub.train.pool_cache import hashes, open_pool, texts_of
from llm2edge.hub.train.pool_labels import label_pool

__all__ = ["POOL_DIR", "add_pool", "pool_examples"]

#: Folder of the chosen pool rows (rows.jsonl), inside the model folder.
POOL_DIR = "pool"


def pool_examples(config: TrainConfig, train: Sequence[Any], validation: Sequence[Any],
                  eval_rows: Sequence[Any] | None, labels: Sequence[str], *,
                  encoder: Callable[[list[str]], np.ndarray] | None = None, multi_label: bool = False
                  ) -> tuple[list[Any], dict[str, Any]]:
    """Pool rows (Examples with soft targets) for a training run, and what happened (train_meta.json's
    `pool`). `encoder` embeds texts (default: the student's frozen encoder, `config.model`); `multi_label`:
    the rows hold label sets (targets per label)."""
    from llm2edge.hub.train.batches import set_targets, target_tensor

    assert config.unlabeled is not None
    t0 = time.perf_counter()
    loaded: list[Callable[[list[str]], np.ndarray]] = [encoder] if encoder is not None else []

    def encode(texts: list[str]) -> np.ndarray:
        if not loaded:
            from llm2edge.hub.curate.embed import Encoder

            loaded.append(Encoder(config.model, max_length=config.max_length, threads=config.threads).encode)
        return loaded[0](texts)

    cache = open_pool(config.unlabeled, config.unlabeled_text_col, model=config.model,
                      max_length=config.max_length, chunk_size=config.pool.chunk_size, encode=encode,
                      progress=config.progress)
    labeled = hashes(ex.text for ex in [*train, *validation])
    evals = np.setdiff1d(hashes(ex.text for ex in eval_rows or ()), labeled)
    skip = np.union1d(labeled, evals)
    dropped_labeled, dropped_eval = cache.count(labeled), cache.count(evals)
    read, empty = int(cache.info.get("read", cache.rows)), int(cache.info.get("empty", 0))
    info: dict[str, Any] = {"file": Path(config.unlabeled).name, "sha256": cache.meta["pool"],
                            **asdict(config.pool), "read": read, "empty": empty,
                            "dropped_labeled": dropped_labeled, "dropped_eval": dropped_eval}
    if empty:
        warn(f"{config.unlabeled}: {empty} of {read} pool rows have an empty text (skipped)")
    if dropped_labeled or dropped_eval:
        warn(f"{config.unlabeled}: {dropped_labeled} pool rows are labeled rows and {dropped_eval} are "
             "--eval rows: left out of the pool")
    x = encode([ex.text for ex in train])
    targets = (set_targets(train, labels, True) if multi_label else target_tensor(train, labels, True)
               ).numpy().astype(np.float64)
    picked = label_pool(x, targets, cache, skip, config.pool, seed=config.seed,
                        class_weight=config.class_weight, multi_label=multi_label)
    if picked.info["usable"] == 0:
        warn(f"{config.unlabeled}: the unlabeled pool has no usable rows ({read} read, {empty} empty, "
             f"{dropped_labeled + dropped_eval} labeled or eval rows): training on the labeled rows only")
    chosen = texts_of(config.unlabeled, config.unlabeled_text_col, picked.rows)
    examples = [_example(t, p, labels, multi_label, f"{config.unlabeled} (pool row {int(i) + 1})")
                for t, p, i in zip(chosen, picked.targets, picked.rows)]
    info.update(picked.info, used=len(examples), seconds=round(time.perf_counter() - t0, 2))
    groups = [*labels, NO_SET] if multi_label else list(labels)
    if examples:
        per = "per label group" if multi_label else "per class"
        say(f"llm2edge: pool: {len(examples)} of {picked.info['usable']} usable rows join {len(train)} "
            f"labeled rows ({config.pool.method}, {per} {dict(zip(groups, info['kept_per_class']))})")
    return examples, info


#: The name of the empty set's group in the pool's multi-label story (`pool_labels.SetGroups`).
NO_SET = "(no label)"


def _example(text: str, probs: np.ndarray, labels: Sequence[str], multi_label: bool, where: str) -> Any:
    """A pool row as a training Example: soft targets; its label the most probable class, or multi-label
    the set of labels at LABEL_THRESHOLD."""
    from llm2edge.hub.train.data import Example
    from llm2edge.labelsets import join_label_set

    soft = {lab: float(v) for lab, v in zip(labels, probs)}
    if not multi_label:
        return Example(text=text, label=labels[int(probs.argmax())], probs=soft, where=where)
    chosen = tuple(lab for lab, v in zip(labels, probs) if v >= LABEL_THRESHOLD)
    return Example(text=text, label=join_label_set(chosen), probs=soft, where=where, labels=chosen)


def add_pool(config: TrainConfig, data: Any, *, encoder: Callable[[list[str]], np.ndarray] | None = None
             ) -> tuple[Any, dict[str, Any] | None]:
    """`data` (hub.train.data.TrainingData) with the pool's rows added to its training rows, and the pool's
    story for train_meta.json (None without --unlabeled). The chosen rows go to OUT/pool/rows.jsonl."""
    from dataclasses import replace

    if config.unlabeled is None:
        return data, None
    rows, info = pool_examples(config, data.train, data.validation, data.eval, data.labels, encoder=encoder,
                               multi_label=data.multi_label)
    folder = Path(config.out) / POOL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "rows.jsonl").open("w", encoding="utf-8") as handle:
        for ex in rows:
            label = list(ex.labels or ()) if data.multi_label else ex.label
            handle.write(json.dumps({"text": ex.text, "label": label, "probs": ex.probs},
                                    ensure_ascii=False) + "\n")
    return replace(data, train=[*data.train, *rows]), info
