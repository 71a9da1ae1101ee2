"""Labeling an unlabeled pool from the teacher's labels (`hub.train.pool`): a softmax regression on frozen
embeddings (`fit_linear`), per-class quotas (`quotas`), streamed top-k selection (`select`), self-training or
the out-of-fold models (`label_pool`), and the optional guard (`pool_check`)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm2edge.hub.train.config import PoolConfig
from llm2edge.hub.train.pool_cache import PoolCache, gather

#: L2 penalty of the pool's labeler (a softmax regression on standardized features).
LINEAR_L2 = 1e-3
#: L-BFGS iterations of that fit.
LINEAR_ITERS = 100


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


