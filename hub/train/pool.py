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

A pool of any size streams: it is read, embedded and cached in chunks (`PoolCache`, OUT/pool/: a crashed or
repeated run reuses every finished chunk), each labeling pass reads the cached chunks one at a time and
keeps only the best `quota` rows per class, so memory holds the budget, not the pool. Rows whose text
(whitespace collapsed) is a labeled row, or an eval row, are dropped and counted.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say, warn
from llm2edge.errors import DataError
from llm2edge.hashing import digest, sha256_file
from llm2edge.hub.train.config import PoolConfig, TrainConfig
from llm2edge.records import input_files, iter_rows

#: Folder of the chosen pool rows (rows.jsonl), inside the model folder.
POOL_DIR = "pool"
#: L2 penalty of the pool's labeler (a softmax regression on standardized features).
LINEAR_L2 = 1e-3
#: L-BFGS iterations of that fit.
LINEAR_ITERS = 100


def normalize(text: str) -> str:
    """The text as pools are matched against labeled rows: whitespace collapsed."""
    return " ".join(text.split())


# ------------------------------------------------------------------ reading the pool


def text_hash(text: str) -> int:
    """A 64-bit hash of the text as pools are matched against labeled rows (`normalize`)."""
    return int.from_bytes(hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=8).digest(), "little")


def hashes(texts: Iterable[str]) -> np.ndarray:
    """`text_hash` of each text, as a sorted uint64 array (for np.isin)."""
    return np.unique(np.fromiter((text_hash(t) for t in texts), dtype=np.uint64))


def pool_texts(spec: str | Path, text_col: str, counts: dict[str, int] | None = None
               ) -> Iterator[tuple[str, str]]:
    """(where, text) of the pool's rows with a text, streaming, in file and row order; blank cells are
    skipped and counted in `counts["empty"]` (`counts["read"]`: every row).

    A missing text column or a non-text cell is a DataError naming the file, row and column."""
    counts = counts if counts is not None else {}
    counts.setdefault("read", 0)
    counts.setdefault("empty", 0)
    for path in input_files(str(spec)):
        checked = False
        for line, row in iter_rows(path, text_col=text_col):
            if not checked:
                if text_col not in row:
                    have = ", ".join(map(str, row)) or "none"
                    raise DataError(f"{path}: the unlabeled pool has no column '{text_col}' "
                                    f"(columns: {have}; --unlabeled-text-col names it)")
                checked = True
            counts["read"] += 1
            value = row.get(text_col)
            if value is None or (isinstance(value, str) and not value.strip()):
                counts["empty"] += 1
                continue
            if not isinstance(value, str):
                raise DataError(f"{path}:{line}: column '{text_col}' of the unlabeled pool holds "
                                f"{type(value).__name__} {value!r}, not text")
            yield f"{path}:{line}", value


class PoolCache:
    """A pool's embeddings on disk (the user cache, `cache_dir()/pool/<key>/`, shared by every run on the
    same pool, encoder and max_length), one chunk of `chunk_size` rows at a time: chunk-N.npy (embeddings)
    and hash-N.npy (`text_hash` per row), each written whole, then renamed. A run that stops part-way
    resumes at the first missing chunk; done.json (written last) lets later runs skip reading the pool."""

    def __init__(self, folder: Path, key: dict[str, Any]) -> None:
        self.folder = folder
        self.key = digest(key)
        self.info: dict[str, Any] = {}
        done = folder / "done.json"
        if done.is_file():
            try:
                info = json.loads(done.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                info = {}
            if info.get("key") == self.key:
                self.info = info
        self.rows = int(self.info.get("rows", 0))
        self.n_chunks = int(self.info.get("chunks", 0))
        self.meta = key

    @property
    def complete(self) -> bool:
        """True when every chunk of this pool is cached."""
        return bool(self.info)

    def _path(self, kind: str, index: int) -> Path:
        return self.folder / f"{kind}-{index:06d}.npy"

    def build(self, texts: Iterator[tuple[str, str]], chunk_size: int,
              encode: Callable[[list[str]], np.ndarray], *, counts: dict[str, int] | None = None,
              progress: bool = True) -> None:
        """Embed the texts chunk by chunk (cached chunks are reused, not re-embedded)."""
        from tqdm.auto import tqdm

        if self.complete:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        rows = chunks = reused = 0
        bar = tqdm(desc="pool: embed", unit="row", file=sys.stderr, disable=not progress)
        while True:
            chunk = [t for _, (_, t) in zip(range(chunk_size), texts)]
            if not chunk:
                break
            emb, hsh = self._path("chunk", chunks), self._path("hash", chunks)
            if emb.is_file() and hsh.is_file() and len(np.load(hsh)) == len(chunk):
                reused += 1
            else:
                tmp = emb.with_name(emb.stem + ".tmp.npy")
                np.save(tmp, encode(chunk).astype(np.float32), allow_pickle=False)
                tmp.replace(emb)
                tmp = hsh.with_name(hsh.stem + ".tmp.npy")
                np.save(tmp, np.fromiter((text_hash(t) for t in chunk), dtype=np.uint64), allow_pickle=False)
                tmp.replace(hsh)
            rows += len(chunk)
            chunks += 1
            bar.update(len(chunk))
        bar.close()
        if reused:
            say(f"llm2edge: pool: {reused} of {chunks} chunks were cached already ({self.folder})")
        self.rows, self.n_chunks = rows, chunks
        self.info = {"key": self.key, "rows": rows, "chunks": chunks, **(counts or {}), **self.meta}
        (self.folder / "done.json").write_text(json.dumps(self.info, indent=1, default=str), encoding="utf-8")

    def chunks(self, skip: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row indices, embeddings) of each chunk in order, one chunk in memory at a time; rows whose
        text hash is in `skip` (sorted uint64) are left out."""
        start = 0
        for i in range(self.n_chunks):
            x = np.load(self._path("chunk", i), allow_pickle=False)
            index = np.arange(start, start + len(x))
            start += len(x)
            if skip is not None and len(skip):
                keep = ~np.isin(np.load(self._path("hash", i), allow_pickle=False), skip)
                x, index = x[keep], index[keep]
            yield index, x

    def count(self, skip: np.ndarray) -> int:
        """How many cached rows have a text hash in `skip`."""
        if not len(skip):
            return 0
        return sum(int(np.isin(np.load(self._path("hash", i)), skip).sum()) for i in range(self.n_chunks))

    def first(self, hits: np.ndarray) -> int | None:
        """The first row whose text hash is in `hits`, else None."""
        start = 0
        for i in range(self.n_chunks):
            found = np.flatnonzero(np.isin(np.load(self._path("hash", i)), hits))
            if len(found):
                return start + int(found[0])
            start += len(np.load(self._path("hash", i)))
        return None


def open_pool(spec: str | Path, text_col: str, *, model: str | None, max_length: int, chunk_size: int,
              encode: Callable[[list[str]], np.ndarray], progress: bool = True,
              cache_root: Path | None = None) -> PoolCache:
    """The pool's embedding cache, built (or resumed) from the pool file(s) when not complete."""
    if cache_root is None:
        from llm2edge.hub.models import cache_dir

        cache_root = cache_dir() / "pool"
    key = {"pool": pool_digest(spec), "text_col": text_col, "model": model, "max_length": max_length,
           "chunk_size": chunk_size}
    cache = PoolCache(cache_root / digest(key), key)
    if cache.complete:
        say(f"llm2edge: pool: {cache.rows} rows, embeddings cached in {cache.folder}")
    else:
        counts: dict[str, int] = {}
        cache.build(pool_texts(spec, text_col, counts), chunk_size, encode, counts=counts, progress=progress)
    return cache


# ------------------------------------------------------------------ labeling the pool


def quotas(targets: np.ndarray, budget: int) -> np.ndarray:
    """Rows to keep per class: the budget split in proportion to the labeled targets' mass per class
    (largest remainders; a class the teacher uses gets at least one row while the budget allows)."""
    share = targets.sum(axis=0) / max(float(targets.sum()), 1e-12)
    exact = share * budget
    out = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[:budget - int(out.sum())]] += 1
    for c in np.flatnonzero((share > 0) & (out == 0)):  # take one from the largest class
        if out.max() > 1:
            out[out.argmax()] -= 1
            out[c] = 1
    return out


def select(predict: Callable[[np.ndarray], np.ndarray], chunks: Iterator[tuple[np.ndarray, np.ndarray]],
           quota: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stream the pool's chunks through `predict`; per predicted class keep the `quota` rows with the
    highest probability. (row indices, their probabilities), by row index; ties go to the earlier row."""
    k = len(quota)
    best: list[list[tuple[float, int, np.ndarray]]] = [[] for _ in range(k)]  # min-heaps
    for index, x in chunks:
        if not len(x):
            continue
        probs = predict(x)
        top = probs.argmax(axis=1)
        conf = probs.max(axis=1)
        for c in range(k):
            if quota[c] <= 0:
                continue
            idx = np.flatnonzero(top == c)
            if len(idx) > quota[c]:  # only this chunk's best can enter the heap
                idx = idx[np.argsort(-conf[idx], kind="stable")[:quota[c]]]
            heap = best[c]
            for i in idx:
                item = (float(conf[i]), -int(index[i]), probs[i])
                if len(heap) < quota[c]:
                    heapq.heappush(heap, item)
                elif item[:2] > heap[0][:2]:
                    heapq.heapreplace(heap, item)
    kept = sorted((-neg, p) for heap in best for _, neg, p in heap)
    if not kept:
        return np.zeros(0, dtype=np.int64), np.zeros((0, k), dtype=np.float64)
    return np.array([i for i, _ in kept], dtype=np.int64), np.stack([p for _, p in kept])


def gather(cache: PoolCache, rows: np.ndarray) -> np.ndarray:
    """The cached embeddings of the given (sorted) pool rows."""
    parts = []
    for index, x in cache.chunks():
        mine = np.isin(index, rows)
        if mine.any():
            parts.append(x[mine])
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)


def fit_linear(x: np.ndarray, targets: np.ndarray, *, seed: int, noise: float, class_weight: str,
               l2: float = LINEAR_L2, iters: int = LINEAR_ITERS) -> Callable[[np.ndarray], np.ndarray]:
    """A softmax regression on standardized features and (soft) targets, fitted full-batch with L-BFGS
    (deterministic, a fraction of a second for thousands of rows); the same class-weight rule as the
    students. `noise` > 0: Noisy Student's input noise, as two extra copies of the rows with dropout masks
    drawn from `seed`. Returns its probability function."""
    import torch
    import torch.nn.functional as F

    from llm2edge.hub.train.batches import class_weights

    k = targets.shape[1]
    y = torch.from_numpy(targets.astype(np.float32))
    weight = class_weights(y, k, class_weight)
    mu = x.mean(axis=0)
    sd = np.maximum(x.std(axis=0), 1e-6)
    xs = torch.from_numpy(((x - mu) / sd).astype(np.float32))
    if noise > 0:
        g = torch.Generator().manual_seed(seed)
        copies = [xs] + [xs * (torch.rand(xs.shape, generator=g) >= noise) / (1 - noise) for _ in range(2)]
        xs, y = torch.cat(copies), y.repeat(3, 1)
    w = torch.zeros(k, x.shape[1], requires_grad=True)
    b = torch.zeros(k, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], lr=1.0, max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(xs @ w.T + b, y, weight=weight) + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    wn = w.detach().double().numpy() / sd
    bn = b.detach().double().numpy() - wn @ mu

    def predict(features: np.ndarray) -> np.ndarray:
        logits = features @ wn.T + bn
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    return predict


@dataclass
class PoolLabels:
    """The pool rows a student learns from: their indices among the pool's rows, targets, and the story."""

    rows: np.ndarray  # indices among the pool's rows with a text, ascending
    targets: np.ndarray  # (len(rows), k) probabilities
    info: dict[str, Any] = field(default_factory=dict)


def _pick(x: np.ndarray, targets: np.ndarray, cache: PoolCache, skip: np.ndarray, quota: np.ndarray,
          settings: PoolConfig, fit: dict[str, Any], folds: int, oof_class_weight: str
          ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(pool rows, their targets, info) by the pool method, from labeled embeddings and targets."""
    k = targets.shape[1]
    info: dict[str, Any] = {}
    if settings.method == "oof":
        from llm2edge.hub.curate.confident import FoldEnsemble

        ensemble = FoldEnsemble(x, targets.argmax(axis=1), k, folds=folds, seed=fit["seed"],
                                class_weight=oof_class_weight)
        rows, probs = select(ensemble.predict_proba, cache.chunks(skip), quota)
        info["rounds"] = 1
        return rows, probs, info
    predict = fit_linear(x, targets, noise=0.0, **fit)  # the first labeler: the teacher's labels only
    history = []
    for r in range(settings.rounds):
        rows, probs = select(predict, cache.chunks(skip), quota)
        history.append(float(probs.max(axis=1).mean()) if len(rows) else 0.0)
        if r + 1 < settings.rounds:
            xs = np.concatenate([x, gather(cache, rows)])
            predict = fit_linear(xs, np.concatenate([targets, probs]), noise=settings.noise, **fit)
    info.update(rounds=settings.rounds, mean_confidence_per_round=[round(h, 4) for h in history])
    return rows, probs, info


def pool_check(x: np.ndarray, targets: np.ndarray, cache: PoolCache, skip: np.ndarray, usable: int,
               settings: PoolConfig, fit: dict[str, Any], folds: int, oof_class_weight: str
               ) -> dict[str, Any]:
    """Does the pool help? k-fold over the labeled rows: a head trained on the other folds, with and
    without the pool rows those folds pick, is scored by its agreement with the teacher on the held fold
    (the only labels there are). Agreement with the teacher, not accuracy: it cannot see a student that
    beats its teacher, but it sees one that drifts away from it (confirmation bias)."""
    from sklearn.model_selection import KFold

    y = targets.argmax(axis=1)
    hits = {"without": 0, "with": 0}
    splits = KFold(n_splits=settings.check_folds, shuffle=True, random_state=fit["seed"]).split(x)
    for train_idx, held in splits:
        xf, tf = x[train_idx], targets[train_idx]
        quota = quotas(tf, min(usable, int(round(settings.ratio * len(xf)))))
        rows, probs, _ = _pick(xf, tf, cache, skip, quota, settings, fit, folds, oof_class_weight)
        base = fit_linear(xf, tf, noise=0.0, **fit)
        hits["without"] += int((base(x[held]).argmax(axis=1) == y[held]).sum())
        if len(rows):
            xs, ts = np.concatenate([xf, gather(cache, rows)]), np.concatenate([tf, probs])
            pooled = fit_linear(xs, ts, noise=settings.noise, **fit)
            hits["with"] += int((pooled(x[held]).argmax(axis=1) == y[held]).sum())
        else:
            hits["with"] += int((base(x[held]).argmax(axis=1) == y[held]).sum())
    n = len(x)
    without, with_pool = hits["without"] / n, hits["with"] / n
    return {"folds": settings.check_folds, "agreement_without": round(without, 4),
            "agreement_with": round(with_pool, 4),
            "kept": with_pool >= without - settings.check_tolerance}


def label_pool(x: np.ndarray, targets: np.ndarray, cache: PoolCache, skip: np.ndarray, settings: PoolConfig,
               *, seed: int, class_weight: str, folds: int = 5, oof_class_weight: str = "none") -> PoolLabels:
    """Targets for the best pool rows from the labeled rows' embeddings `x` and (soft) `targets`; rows
    whose text hash is in `skip` are never picked. With `settings.check_folds` >= 2 the pool is used only
    when `pool_check` finds it keeps the student's agreement with the teacher (else no row is picked)."""
    usable = cache.rows - cache.count(skip)
    budget = min(usable, int(round(settings.ratio * len(x))))
    quota = quotas(targets, budget)
    info: dict[str, Any] = {"usable": usable, "budget": budget, "quota": quota.tolist()}
    k = targets.shape[1]
    none = PoolLabels(np.zeros(0, dtype=np.int64), np.zeros((0, k)), info)
    info["kept_per_class"] = [0] * k
    if budget == 0:
        return none
    fit = dict(seed=seed, class_weight=class_weight)
    if settings.check_folds >= 2 and len(x) >= 2 * settings.check_folds:
        info["check"] = pool_check(x, targets, cache, skip, usable, settings, fit, folds, oof_class_weight)
        if not info["check"]["kept"]:
            return none
    rows, probs, more = _pick(x, targets, cache, skip, quota, settings, fit, folds, oof_class_weight)
    info.update(more)
    info["kept_per_class"] = np.bincount(probs.argmax(axis=1), minlength=k).tolist() if len(rows) else [0] * k
    return PoolLabels(rows, probs, info)


def texts_of(spec: str | Path, text_col: str, rows: np.ndarray) -> list[str]:
    """The texts of the given pool rows (a second streaming pass)."""
    wanted = set(rows.tolist())
    out = []
    if not wanted:
        return out
    for i, (_, text) in enumerate(pool_texts(spec, text_col)):
        if i in wanted:
            out.append(text)
            if len(out) == len(wanted):
                break
    return out


def where_of(spec: str | Path, text_col: str, row: int) -> str:
    """file:line of a pool row (for an error message)."""
    for i, (where, _) in enumerate(pool_texts(spec, text_col)):
        if i == row:
            return where
    return str(spec)


# ------------------------------------------------------------------ the train stage's entry point


def pool_examples(config: TrainConfig, train: Sequence[Any], validation: Sequence[Any],
                  eval_rows: Sequence[Any] | None, labels: Sequence[str], *,
                  encoder: Callable[[list[str]], np.ndarray] | None = None
                  ) -> tuple[list[Any], dict[str, Any]]:
    """Pool rows (Examples with soft targets) for a training run, and what happened (train_meta.json's
    `pool`). `encoder` embeds texts (default: the student's frozen encoder, `config.model`)."""
    from llm2edge.hub.train.batches import target_tensor
    from llm2edge.hub.train.data import Example

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
    targets = target_tensor(train, labels, True).numpy().astype(np.float64)
    picked = label_pool(x, targets, cache, skip, config.pool, seed=config.seed,
                        class_weight=config.class_weight)
    if picked.info["usable"] == 0:
        warn(f"{config.unlabeled}: the unlabeled pool has no usable rows ({read} read, {empty} empty, "
             f"{dropped_labeled + dropped_eval} labeled or eval rows): training on the labeled rows only")
    chosen = texts_of(config.unlabeled, config.unlabeled_text_col, picked.rows)
    examples = [Example(text=t, label=labels[int(p.argmax())],
                        probs={lab: float(v) for lab, v in zip(labels, p)},
                        where=f"{config.unlabeled} (pool row {int(i) + 1})")
                for t, p, i in zip(chosen, picked.targets, picked.rows)]
    info.update(picked.info, used=len(examples), seconds=round(time.perf_counter() - t0, 2))
    if examples:
        say(f"llm2edge: pool: {len(examples)} of {picked.info['usable']} usable rows join {len(train)} "
            f"labeled rows ({config.pool.method}, per class {dict(zip(labels, info['kept_per_class']))})")
    return examples, info


def pool_digest(spec: str | Path) -> str:
    """A checksum of the pool: its file's, or a folder's files' (names and contents)."""
    files = input_files(str(spec))
    if len(files) == 1 and Path(spec).is_file():
        return sha256_file(files[0])
    return digest([[f.name, sha256_file(f)] for f in files])


def add_pool(config: TrainConfig, data: Any, *, encoder: Callable[[list[str]], np.ndarray] | None = None
             ) -> tuple[Any, dict[str, Any] | None]:
    """`data` (hub.train.data.TrainingData) with the pool's rows added to its training rows, and the pool's
    story for train_meta.json (None without --unlabeled). The chosen rows go to OUT/pool/rows.jsonl."""
    from dataclasses import replace

    if config.unlabeled is None:
        return data, None
    rows, info = pool_examples(config, data.train, data.validation, data.eval, data.labels, encoder=encoder)
    folder = Path(config.out) / POOL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "rows.jsonl").open("w", encoding="utf-8") as handle:
        for ex in rows:
            handle.write(json.dumps({"text": ex.text, "label": ex.label, "probs": ex.probs},
                                    ensure_ascii=False) + "\n")
    return replace(data, train=[*data.train, *rows]), info
