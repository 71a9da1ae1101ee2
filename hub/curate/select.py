"""Which items go to experts: the budget, per-label quotas, the least confident (or random) rows.

Single-label (`select_experts`): RED-CT's rule with `stratify`, the same budget for each LLM label and
within each label the lowest scores. Multi-label (`select_multi`, `multi_scores`): a row's score is its
least certain decision, `labelsets.set_confidence` of its per-label probabilities (`--by confidence`: the
LLM's; `--by crossval`: min over labels of the out-of-fold confidence in the row's own decision, p where
the label is in the set and 1 - p where it is not). A row carries several labels, so `stratify` cannot cut
the rows into one group per label: the groups overlap (one per label, the rows carrying it, plus one for
rows with the empty set) and are served in turns: each group's quota (the budget split evenly, as in the
single-label case) is filled with its lowest-scored rows that no earlier group took; budget a small group
cannot use moves on to the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from llm2edge.checks import fraction as check_fraction
from llm2edge.checks import one_of
from llm2edge.defaults import EXPERT_BY, EXPERT_FRACTION, EXPERT_STRATEGY, SEED
from llm2edge.errors import ConfigError
from llm2edge.hub.curate.oof import CROSSVAL, CrossvalConfig
from llm2edge.hub.curate.rows import Row, row_confidence
from llm2edge.labelsets import set_confidence

STRATEGIES = ("confidence", "random")
SCORES = ("confidence", "margin", CROSSVAL)


def check_selection(fraction: float, strategy: str, by: str) -> None:
    """ConfigError unless the expert budget, strategy and score are usable."""
    check_fraction("fraction", fraction)
    one_of("strategy", strategy, STRATEGIES)
    one_of("by", by, SCORES)


def _budget(n: int, fraction: float) -> int:
    """The number of items a fraction of `n` buys (at least one when the fraction is positive)."""
    if fraction == 0.0 or n == 0:
        return 0
    return min(n, max(1, int(round(fraction * n))))


def _quotas(sizes: Sequence[int], total: int) -> list[int]:
    """Split `total` as evenly as possible over groups of `sizes`; a small group's unused share moves on."""
    quotas = [0] * len(sizes)
    left = min(total, sum(sizes))
    open_groups = [i for i, s in enumerate(sizes) if s > 0]
    while left > 0 and open_groups:
        share, extra = divmod(left, len(open_groups))
        # the remainder goes to the largest open groups first (deterministic)
        ranked = sorted(open_groups, key=lambda i: (-(sizes[i] - quotas[i]), i))
        for rank, i in enumerate(ranked):
            give = min(share + (1 if rank < extra else 0), sizes[i] - quotas[i])
            quotas[i] += give
            left -= give
        open_groups = [i for i in open_groups if quotas[i] < sizes[i]]
    return quotas


def _tiebreak(row: Row) -> str:
    """A stable tie-breaker between equally confident items."""
    return hashlib.sha1(str(row.get("id")).encode("utf-8")).hexdigest()


def select_experts(rows: Sequence[Row], labels: Sequence[str], *, fraction: float = EXPERT_FRACTION,
                   strategy: str = EXPERT_STRATEGY, stratify: bool = False, by: str = EXPERT_BY,
                   seed: int = SEED, scores: Sequence[float] | None = None) -> list[int]:
    """Indices of the rows for experts: the lowest `scores` (per LLM label with `stratify`) or random.

    `scores` default to the rows' own `by` score; `by="crossval"` needs them (`oof.sampling_scores`)."""
    check_selection(fraction, strategy, by)
    if scores is None and strategy != "random":
        if by == CROSSVAL:
            raise ConfigError("by crossval ranks by out-of-fold scores: pass scores=oof.sampling_scores(...)")
        scores = [row_confidence(row, labels, by) for row in rows]
    n = _budget(len(rows), fraction)
    rng = np.random.default_rng(seed)
    groups = [list(range(len(rows)))]
    if stratify:
        groups = [[i for i, r in enumerate(rows) if r["label"] == name] for name in labels]
    quotas = _quotas([len(g) for g in groups], n)
    chosen: list[int] = []
    for group, quota in zip(groups, quotas):
        if quota == 0:
            continue
        if strategy == "random":
            chosen.extend(int(i) for i in rng.choice(group, size=quota, replace=False))
        else:
            ranked = sorted(group, key=lambda i: (scores[i], _tiebreak(rows[i])))  # type: ignore[index]
            chosen.extend(ranked[:quota])
    return sorted(chosen)


def multi_scores(rows: Sequence[Row], labels: Sequence[str], by: str, config: CrossvalConfig | None = None,
                 *, features: np.ndarray | None = None) -> list[float]:
    """The score `sample-experts` ranks multi-label rows by (lower: sent first; the module docstring)."""
    from llm2edge.hub.curate.multilabel import (
        label_confidence,
        label_matrix,
        llm_label_probs,
        oof_label_probs,
    )

    one_of("by", by, SCORES)
    if by == "margin":
        raise ConfigError("--by margin ranks by the log-prob margin between two labels, which a multi-label "
                          "file has none of: use --by confidence (the least certain label) or --by crossval")
    if by == CROSSVAL:
        oof = oof_label_probs(rows, labels, config, features=features)
        return [float(v) for v in label_confidence(label_matrix(rows, labels), oof).min(axis=1)]
    return [float(v) for v in set_confidence(llm_label_probs(rows, labels))]


def select_multi(rows: Sequence[Row], labels: Sequence[str], scores: Sequence[float] | None, *,
                 fraction: float = EXPERT_FRACTION, strategy: str = EXPERT_STRATEGY, stratify: bool = False,
                 seed: int = SEED) -> list[int]:
    """Indices of the multi-label rows for experts: the lowest `scores` (overlapping per-label groups
    served in turns with `stratify`: the module docstring) or random."""
    check_selection(fraction, strategy, EXPERT_BY)
    if scores is None and strategy != "random":
        raise ConfigError("select_multi ranks by scores: pass scores=select.multi_scores(...)")
    n = _budget(len(rows), fraction)
    rng = np.random.default_rng(seed)
    if strategy == "random":
        order = [int(i) for i in rng.permutation(len(rows))]
    else:
        order = sorted(range(len(rows)), key=lambda i: (scores[i], _tiebreak(rows[i])))  # type: ignore[index]
    if not stratify:
        return sorted(order[:n])
    groups = [[i for i in order if name in rows[i]["label"]] for name in labels]
    groups.append([i for i in order if not rows[i]["label"]])
    chosen: set[int] = set()
    while len(chosen) < n:
        open_groups = [[i for i in g if i not in chosen] for g in groups]
        sizes = [len(g) for g in open_groups]
        if not any(sizes):
            break
        for group, quota in zip(open_groups, _quotas(sizes, n - len(chosen))):
            for i in group:
                if quota == 0 or len(chosen) == n:
                    break
                if i not in chosen:
                    chosen.add(i)
                    quota -= 1
    return sorted(chosen)
