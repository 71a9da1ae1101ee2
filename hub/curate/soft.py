"""Soft labels: each row's label distribution normalized to sum to 1 (expert rows one-hot, maybe smoothed).

RED-CT's code took `expit` of the log-probabilities as the soft target: that is neither a distribution
nor bounded in sum. Here the LLM's probabilities are renormalized over the task's label set, so a
cross-entropy with soft targets is a proper one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llm2edge.checks import fraction, positive
from llm2edge.defaults import SOFT_SMOOTHING, SOFT_TEMPERATURE
from llm2edge.errors import TaskError
from llm2edge.hub.curate.rows import Row, row_probs


def build_soft_labels(rows: Sequence[Row], smoothing: float = SOFT_SMOOTHING,
                      labels: Sequence[str] | None = None, *,
                      temperature: float = SOFT_TEMPERATURE) -> list[Row]:
    """Rows with `probs` a distribution over `labels` (sum 1); expert rows one-hot with `smoothing`."""
    fraction("smoothing", smoothing, closed=False)
    positive("temperature", temperature)
    if labels is None:
        seen: dict[str, None] = {}
        for row in rows:
            for name in (row.get("probs") or {}):
                seen.setdefault(str(name), None)
            seen.setdefault(str(row["label"]), None)
        labels = tuple(seen)
    k = len(labels)
    out = []
    for row in rows:
        if row["label"] not in labels:
            raise TaskError(f"row id {row.get('id')}: label '{row['label']}' is not in {list(labels)}")
        if row.get("source") == "expert":
            probs = [(1.0 - smoothing) * (name == row["label"]) + smoothing / k for name in labels]
        else:
            probs = row_probs(row, labels)
            if temperature != 1.0:  # sharpen (<1) or flatten (>1) the LLM's distribution
                logs = [math.log(max(p, 1e-12)) / temperature for p in probs]
                top = max(logs)
                exps = [math.exp(v - top) for v in logs]
                probs = [e / sum(exps) for e in exps]
        total = sum(probs)
        new = dict(row)
        new["probs"] = {name: p / total for name, p in zip(labels, probs)}
        out.append(new)
    return out
