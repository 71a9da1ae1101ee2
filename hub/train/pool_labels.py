"""Labeling an unlabeled pool from the teacher's labels (`hub.train.pool`): a softmax regression on frozen
embeddings (`fit_linear`), per-class quotas (`quotas`), streamed top-k selection (`select`), self-training or
the out-of-fold models (`label_pool`), and the optional guard (`pool_check`).

Multi-label (`multi_label=True`: targets are per-label probabilities, not a distribution): the labeler is one
logistic regression per label (sigmoid, binary cross-entropy with the students' per-label `pos_weights`), and
a row's group for the quotas is `SetGroups`: the rarest label (by the teacher's counts) of its set at
LABEL_THRESHOLD, or one more group for the empty set, so a frequent label cannot snowball and rare labels keep
their share; its confidence is its least certain decision, min over labels of max(p, 1 - p) (the rule that
ranks label sets for experts). The guard scores agreement per (row, label) decision.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm2edge.defaults import LABEL_THRESHOLD
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


@dataclass(frozen=True)
class SetGroups:
    """Multi-label rows' groups (the module docstring): the rarest label of the set, else `k` (empty)."""

    order: tuple[int, ...]  # label indices, most common first (the rarest is applied last and wins)

    @classmethod
    def of(cls, targets: np.ndarray) -> SetGroups:
        """The groups of the teacher's per-label targets (its labels' counts at LABEL_THRESHOLD)."""
        counts = (np.asarray(targets) >= LABEL_THRESHOLD).sum(axis=0)
        return cls(tuple(int(j) for j in np.argsort(-counts, kind="stable")))

    def __call__(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(group, confidence) of each row of per-label probabilities."""
        on = probs >= LABEL_THRESHOLD
        group = np.full(len(probs), len(self.order), dtype=np.int64)
        for j in self.order:
            group[on[:, j]] = j
        return group, np.maximum(probs, 1.0 - probs).min(axis=1)

    def one_hot(self, targets: np.ndarray) -> np.ndarray:
        """(n, k + 1) one-hot groups of the teacher's targets: what `quotas` splits the budget by."""
        return np.eye(len(self.order) + 1)[self(np.asarray(targets))[0]]


def _top_class(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A single-label row's group (its most probable class) and confidence (that probability)."""
    return probs.argmax(axis=1), probs.max(axis=1)


def select(predict: Callable[[np.ndarray], np.ndarray], chunks: Iterator[tuple[np.ndarray, np.ndarray]],
           quota: np.ndarray, groups: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] = _top_class
           ) -> tuple[np.ndarray, np.ndarray]:
    """Stream the pool's chunks through `predict`; per group (the predicted class; multi-label:
    `SetGroups`) keep the `quota` most confident rows. (row indices, their probabilities), by row index;
    ties go to the earlier row."""
    k = len(quota)
    best: list[list[tuple[float, int, np.ndarray]]] = [[] for _ in range(k)]  # min-heaps
    for index, x in chunks:
        if not len(x):
            continue
        probs = predict(x)
        top, conf = groups(probs)
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
        columns = len(groups.order) if isinstance(groups, SetGroups) else k
        return np.zeros(0, dtype=np.int64), np.zeros((0, columns), dtype=np.float64)
    return np.array([i for i, _ in kept], dtype=np.int64), np.stack([p for _, p in kept])


def fit_linear(x: np.ndarray, targets: np.ndarray, *, seed: int, noise: float, class_weight: str,
               multi_label: bool = False, l2: float = LINEAR_L2, iters: int = LINEAR_ITERS
               ) -> Callable[[np.ndarray], np.ndarray]:
    """A softmax regression on standardized features and (soft) targets, fitted full-batch with L-BFGS
    (deterministic, a fraction of a second for thousands of rows); the same class-weight rule as the
    students. `noise` > 0: Noisy Student's input noise, as two extra copies of the rows with dropout masks
    drawn from `seed`. `multi_label`: one logistic regression per label (sigmoid, binary cross-entropy with
    the students' `pos_weights`) on per-label targets. Returns its probability function."""
    import torch

    from llm2edge.hub.train.batches import class_weights, objective, pos_weights

    k = targets.shape[1]
    y = torch.from_numpy(targets.astype(np.float32))
    weight = pos_weights(y, class_weight) if multi_label else class_weights(y, k, class_weight)
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
        loss = objective(xs @ w.T + b, y, weight, multi_label) + l2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    wn = w.detach().double().numpy() / sd
    bn = b.detach().double().numpy() - wn @ mu

    def predict(features: np.ndarray) -> np.ndarray:
        logits = features @ wn.T + bn
        if multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
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


Groups = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _basis(targets: np.ndarray, groups: Groups) -> np.ndarray:
    """What `quotas` splits the budget by: the targets (per class), or multi-label the one-hot set groups."""
    return groups.one_hot(targets) if isinstance(groups, SetGroups) else targets


def _fold_mean(x: np.ndarray, targets: np.ndarray, folds: int, fit: dict[str, Any]
               ) -> Callable[[np.ndarray], np.ndarray]:
    """Multi-label "oof": the mean of `fit_linear` per-label models fitted on k-1 of k folds each."""
    from sklearn.model_selection import KFold

    splits = KFold(n_splits=max(2, min(folds, len(x))), shuffle=True, random_state=fit["seed"]).split(x)
    models = [fit_linear(x[idx], targets[idx], noise=0.0, **fit) for idx, _ in splits]
    return lambda features: np.mean([m(features) for m in models], axis=0)


def _agreement(probs: np.ndarray, targets: np.ndarray, multi_label: bool) -> float:
    """Rows on which a head agrees with the teacher: its class, or multi-label the share of its per-label
    decisions (at LABEL_THRESHOLD) that agree, summed over rows."""
    if multi_label:
        return float(((probs >= LABEL_THRESHOLD) == (targets >= LABEL_THRESHOLD)).mean(axis=1).sum())
    return float((probs.argmax(axis=1) == targets.argmax(axis=1)).sum())


def _pick(x: np.ndarray, targets: np.ndarray, cache: PoolCache, skip: np.ndarray, quota: np.ndarray,
          settings: PoolConfig, fit: dict[str, Any], folds: int, oof_class_weight: str,
          groups: Groups = _top_class) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(pool rows, their targets, info) by the pool method, from labeled embeddings and targets."""
    k = targets.shape[1]
    info: dict[str, Any] = {}
    if settings.method == "oof":
        if fit.get("multi_label"):
            predict = _fold_mean(x, targets, folds, {**fit, "class_weight": oof_class_weight})
        else:
            from llm2edge.hub.curate.confident import FoldEnsemble

            predict = FoldEnsemble(x, targets.argmax(axis=1), k, folds=folds, seed=fit["seed"],
                                   class_weight=oof_class_weight).predict_proba
        rows, probs = select(predict, cache.chunks(skip), quota, groups)
        info["rounds"] = 1
        return rows, probs, info
    predict = fit_linear(x, targets, noise=0.0, **fit)  # the first labeler: the teacher's labels only
    history = []
    for r in range(settings.rounds):
        rows, probs = select(predict, cache.chunks(skip), quota, groups)
        history.append(float(groups(probs)[1].mean()) if len(rows) else 0.0)
        if r + 1 < settings.rounds:
            xs = np.concatenate([x, gather(cache, rows)])
            predict = fit_linear(xs, np.concatenate([targets, probs]), noise=settings.noise, **fit)
    info.update(rounds=settings.rounds, mean_confidence_per_round=[round(h, 4) for h in history])
    return rows, probs, info


def pool_check(x: np.ndarray, targets: np.ndarray, cache: PoolCache, skip: np.ndarray, usable: int,
               settings: PoolConfig, fit: dict[str, Any], folds: int, oof_class_weight: str,
               groups: Groups = _top_class) -> dict[str, Any]:
    """Does the pool help? k-fold over the labeled rows: a head trained on the other folds, with and
    without the pool rows those folds pick, is scored by its agreement with the teacher on the held fold
    (the only labels there are; multi-label: per label decision). Agreement with the teacher, not accuracy:
    it cannot see a student that beats its teacher, but it sees one that drifts away from it (confirmation
    bias)."""
    from sklearn.model_selection import KFold

    multi = bool(fit.get("multi_label"))
    hits = {"without": 0.0, "with": 0.0}
    splits = KFold(n_splits=settings.check_folds, shuffle=True, random_state=fit["seed"]).split(x)
    for train_idx, held in splits:
        xf, tf = x[train_idx], targets[train_idx]
        quota = quotas(_basis(tf, groups), min(usable, int(round(settings.ratio * len(xf)))))
        rows, probs, _ = _pick(xf, tf, cache, skip, quota, settings, fit, folds, oof_class_weight, groups)
        base = fit_linear(xf, tf, noise=0.0, **fit)
        hits["without"] += _agreement(base(x[held]), targets[held], multi)
        if len(rows):
            xs, ts = np.concatenate([xf, gather(cache, rows)]), np.concatenate([tf, probs])
            pooled = fit_linear(xs, ts, noise=settings.noise, **fit)
            hits["with"] += _agreement(pooled(x[held]), targets[held], multi)
        else:
            hits["with"] += _agreement(base(x[held]), targets[held], multi)
    n = len(x)
    without, with_pool = hits["without"] / n, hits["with"] / n
    return {"folds": settings.check_folds, "agreement_without": round(without, 4),
            "agreement_with": round(with_pool, 4),
            "kept": with_pool >= without - settings.check_tolerance}


def label_pool(x: np.ndarray, targets: np.ndarray, cache: PoolCache, skip: np.ndarray, settings: PoolConfig,
               *, seed: int, class_weight: str, folds: int = 5, oof_class_weight: str = "none",
               multi_label: bool = False) -> PoolLabels:
    """Targets for the best pool rows from the labeled rows' embeddings `x` and (soft) `targets`; rows
    whose text hash is in `skip` are never picked. With `settings.check_folds` >= 2 the pool is used only
    when `pool_check` finds it keeps the student's agreement with the teacher (else no row is picked).
    `multi_label`: `targets` are per-label probabilities, quotas and `kept_per_class` are per `SetGroups`
    group (the labels, then the empty set)."""
    groups: Groups = SetGroups.of(targets) if multi_label else _top_class
    usable = cache.rows - cache.count(skip)
    budget = min(usable, int(round(settings.ratio * len(x))))
    quota = quotas(_basis(targets, groups), budget)
    info: dict[str, Any] = {"usable": usable, "budget": budget, "quota": quota.tolist()}
    k = targets.shape[1]
    none = PoolLabels(np.zeros(0, dtype=np.int64), np.zeros((0, k)), info)
    info["kept_per_class"] = [0] * len(quota)
    if budget == 0:
        return none
    fit = dict(seed=seed, class_weight=class_weight, multi_label=multi_label)
    if settings.check_folds >= 2 and len(x) >= 2 * settings.check_folds:
        info["check"] = pool_check(x, targets, cache, skip, usable, settings, fit, folds, oof_class_weight,
                                   groups)
        if not info["check"]["kept"]:
            return none
    rows, probs, more = _pick(x, targets, cache, skip, quota, settings, fit, folds, oof_class_weight, groups)
    info.update(more)
    info["kept_per_class"] = (np.bincount(groups(probs)[0], minlength=len(quota)).tolist() if len(rows)
                              else [0] * len(quota))
    return PoolLabels(rows, probs, info)
