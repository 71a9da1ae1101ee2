"""Classification metrics with numpy only: accuracy, macro-F1, weighted F1 (RED-CT's metric), per class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ClassReport:
    """Precision, recall, F1 and support of one class."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Report:
    """A full classification report over a fixed label order."""

    labels: list[str]
    n: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class: list[ClassReport]
    confusion: list[list[int]]  # rows: gold, columns: predicted, in `labels` order

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return asdict(self)

    def table(self) -> str:
        """A plain-text table for the terminal (markdown-compatible)."""
        lines = [
            f"n={self.n}  accuracy={self.accuracy:.4f}  macro-F1={self.macro_f1:.4f}  "
            f"weighted-F1={self.weighted_f1:.4f}",
            "",
            "| label | precision | recall | f1 | support |",
            "|---|---:|---:|---:|---:|",
        ]
        for c in self.per_class:
            lines.append(f"| {c.label} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {c.support} |")
        lines += ["", "confusion (rows gold, columns predicted):",
                  "| gold \\ pred | " + " | ".join(self.labels) + " |",
                  "|---|" + "---:|" * len(self.labels)]
        for label, row in zip(self.labels, self.confusion):
            lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
        return "\n".join(lines)


def classification_report(gold: Sequence[str], pred: Sequence[str],
                          labels: Sequence[str] | None = None) -> Report:
    """Compare predictions with gold labels; `labels` fixes the order (default: sorted union)."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} items, predictions {len(pred)}")
    order = list(labels) if labels is not None else sorted(set(gold) | set(pred))
    index = {label: i for i, label in enumerate(order)}
    k = len(order)
    cm = np.zeros((k, k), dtype=np.int64)
    for g, p in zip(gold, pred):
        if g not in index or p not in index:
            raise ValueError(f"label '{g if g not in index else p}' is not in the label set {order}")
        cm[index[g], index[p]] += 1
    return report_from_confusion(cm, order)


def report_from_confusion(confusion: Sequence[Sequence[int]] | np.ndarray, labels: Sequence[str]) -> Report:
    """The report of a confusion matrix (rows: gold, columns: predicted, in `labels` order); summed
    matrices of disjoint test sets (cross-validation folds) give the pooled report."""
    order = list(labels)
    cm = np.asarray(confusion, dtype=np.int64)
    k = len(order)
    if cm.shape != (k, k):
        raise ValueError(f"a confusion matrix of shape {cm.shape} for {k} labels")
    tp = np.diag(cm).astype(float)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        denom = np.maximum(precision + recall, 1e-12)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / denom, 0.0)
    n = int(cm.sum())
    per_class = [ClassReport(order[i], float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
                 for i in range(k)]
    present = (support > 0) | (predicted > 0)
    return Report(
        labels=order,
        n=n,
        accuracy=float(tp.sum() / n) if n else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        weighted_f1=float((f1 * support).sum() / support.sum()) if support.sum() else 0.0,
        per_class=per_class,
        confusion=cm.tolist(),
    )
