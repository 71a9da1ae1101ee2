"""Multi-label tasks: a row's label is a set of the task's labels: parsing, checks, decisions (numpy only).

The contract every stage keeps for a task declared `multi_label = true`:

- **In a cell** (CSV, Parquet, a `--labels`-style string): the names joined with `LABEL_SEP` (`joy;surprise`);
  in **JSONL** a list of names (a `;`-joined string is accepted too). The empty set (`""` or `[]`) is allowed
  only where the task declares `allow_none = true`.
- **Canonical order**: a set is written in the task's label order, never in the order it was read.
- **labels.jsonl**: `label` is the list; `probs` holds each label's own probability of applying (they need
  not sum to 1); `confidence` is the least certain decision, min over labels of max(p, 1 - p). A reader tells
  a multi-label file from a single-label one by the JSON type of `label` (list vs string).
- **Model dir** (train): `config.json` has `problem_type = "multi_label_classification"` (the Hugging Face
  name) and `label_thresholds = {label: t}`; **bundle** (export): `manifest.json` has `multi_label: true` and
  `thresholds: {label: t}`. Label l applies when p_l >= t_l.
- **Predictions**: CSV `label` = the joined set, JSONL `label` = the list; `p_<label>` per label.

Bad input raises DataError with one line naming the place (`where`) and the value: a name outside the
task's labels, a name twice in one list, an empty list where the task has no `none`, and a single-label
value that holds the separator given to a single-label task (`looks_like_a_list`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from llm2edge.defaults import LABEL_SEP, LABEL_THRESHOLD
from llm2edge.errors import DataError

#: The Hugging Face config's `problem_type` of a multi-label model.
PROBLEM_TYPE = "multi_label_classification"


def _items(value: object, sep: str, where: str) -> list[str]:
    """The raw names in `value`: a list of strings, a JSON list in a string, or a `sep`-joined string."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = list(value)
        bad = [v for v in items if not isinstance(v, str)]
        if bad:
            raise DataError(f"{where}: label list holds {bad[0]!r}, not a label name")
        return [v.strip() for v in items]
    if not isinstance(value, str):
        raise DataError(f"{where}: label {value!r} is not a label name or a list of them")
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return _items(parsed, sep, where)
    if not text:
        return []
    return [part.strip() for part in text.split(sep)]


def parse_label_set(value: object, names: Sequence[str], *, where: str, sep: str = LABEL_SEP,
                    allow_empty: bool = False) -> tuple[str, ...]:
    """The label set in `value` (a list, a JSON list or a `sep`-joined string), in `names` order.

    DataError naming `where` and the value for a name outside `names`, a name given twice, an empty part
    (`a;;b`) or an empty set where `allow_empty` is False."""
    items = _items(value, sep, where)
    if any(not item for item in items) and len(items) > 1:
        raise DataError(f"{where}: empty name in label list {value!r}")
    items = [item for item in items if item]
    known = set(names)
    for item in items:
        if item not in known:
            raise DataError(f"{where}: unknown label '{item}' in {value!r} (labels: {', '.join(names)})")
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise DataError(f"{where}: label '{item}' given twice in {value!r}")
        seen.add(item)
    if not items and not allow_empty:
        raise DataError(f"{where}: empty label list, and the task does not allow none (allow_none = true)")
    return tuple(name for name in names if name in seen)


def join_label_set(labels: Iterable[str], sep: str = LABEL_SEP) -> str:
    """A label set as one cell: the names joined with `sep` (the empty set is '')."""
    return sep.join(labels)


def looks_like_a_list(value: str, names: Sequence[str], sep: str = LABEL_SEP) -> bool:
    """True when a single-label value is not a label name but splits at `sep` into label names: a
    multi-label file given to a single-label task."""
    if value in names or sep not in value:
        return False
    parts = [p.strip() for p in value.split(sep)]
    return all(p in names for p in parts if p) and any(parts)


def check_single(value: str, names: Sequence[str], *, where: str, sep: str = LABEL_SEP) -> None:
    """DataError when a single-label task gets a label list (`a;b`), naming `where` and the value."""
    if looks_like_a_list(value, names, sep):
        raise DataError(f"{where}: label {value!r} is a list of labels, but the task is single-label "
                        f"(declare multi_label = true in the task, or pass --multi-label)")


def indicator(sets: Iterable[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    """An (n, k) 0/1 uint8 matrix: row i has a 1 in column j when label names[j] is in sets[i]."""
    index = {name: j for j, name in enumerate(names)}
    rows = list(sets)
    out = np.zeros((len(rows), len(index)), dtype=np.uint8)
    for i, labels in enumerate(rows):
        for label in labels:
            out[i, index[label]] = 1
    return out


def thresholds_array(thresholds: Mapping[str, float] | None, names: Sequence[str]) -> np.ndarray:
    """The per-label thresholds in `names` order (LABEL_THRESHOLD for a label not given)."""
    given = thresholds or {}
    return np.array([float(given.get(name, LABEL_THRESHOLD)) for name in names], dtype=np.float64)


def decide(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The (n, k) bool decisions: label j applies to row i when probs[i, j] >= thresholds[j]."""
    return np.asarray(probs) >= np.asarray(thresholds)[None, :]


def sets_of(decisions: np.ndarray, names: Sequence[str]) -> list[tuple[str, ...]]:
    """The label set of each row of an (n, k) bool matrix, in `names` order."""
    return [tuple(names[j] for j in np.flatnonzero(row)) for row in np.asarray(decisions, dtype=bool)]


def set_confidence(probs: np.ndarray) -> np.ndarray:
    """Each row's confidence: its least certain decision, min over labels of max(p, 1 - p)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.size == 0:
        return np.zeros(len(p))
    return np.maximum(p, 1.0 - p).min(axis=1)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 per column from counts (0 where a label was neither predicted nor present)."""
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def tune_thresholds(probs: np.ndarray, gold: np.ndarray, *, grid: Sequence[float] | None = None,
                    min_positives: int = 5) -> np.ndarray:
    """Per-label thresholds that maximise each label's F1 on a held-back slice.

    `probs` (n, k) and `gold` (n, k) 0/1. A label with fewer than `min_positives` positives keeps
    LABEL_THRESHOLD (too few to tune on); ties go to the threshold nearest LABEL_THRESHOLD, so the result
    is the same on every run."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(gold).astype(bool)
    cand = np.asarray(grid if grid is not None else np.round(np.arange(0.05, 0.951, 0.05), 2))
    out = np.full(p.shape[1], LABEL_THRESHOLD)
    for j in range(p.shape[1]):
        if int(y[:, j].sum()) < min_positives:
            continue
        pred = p[:, j][:, None] >= cand[None, :]
        tp = (pred & y[:, j][:, None]).sum(axis=0)
        fp = (pred & ~y[:, j][:, None]).sum(axis=0)
        fn = (~pred & y[:, j][:, None]).sum(axis=0)
        f1 = _f1(tp, fp, fn)
        best = f1.max()
        ties = np.flatnonzero(np.isclose(f1, best))
        out[j] = float(cand[ties[np.argmin(np.abs(cand[ties] - LABEL_THRESHOLD))]])
    return out


@dataclass(frozen=True)
class LabelScore:
    """Precision, recall, F1 and support (gold positives) of one label of a multi-label task."""

    label: str
    precision: float
    recall: float
    f1: float
    support: int
    predicted: int


@dataclass(frozen=True)
class MultiLabelReport:
    """A multi-label evaluation: micro/macro-F1, subset accuracy, Hamming loss and a per-label table."""

    labels: list[str]
    n: int
    micro_f1: float
    macro_f1: float
    subset_accuracy: float
    hamming_loss: float
    micro_precision: float
    micro_recall: float
    per_label: list[LabelScore]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {"multi_label": True, **asdict(self)}

    def table(self) -> str:
        """A plain-text table for the terminal (markdown-compatible)."""
        lines = [
            f"n={self.n}  micro-F1={self.micro_f1:.4f}  macro-F1={self.macro_f1:.4f}  "
            f"subset-accuracy={self.subset_accuracy:.4f}  hamming-loss={self.hamming_loss:.4f}",
            "",
            "| label | precision | recall | f1 | support | predicted |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for c in self.per_label:
            lines.append(f"| {c.label} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | {c.support} "
                         f"| {c.predicted} |")
        return "\n".join(lines)


def multilabel_report(gold: np.ndarray | Sequence[Sequence[str]], pred: np.ndarray | Sequence[Sequence[str]],
                      labels: Sequence[str]) -> MultiLabelReport:
    """Compare predicted label sets with gold ones (sets of names, or (n, k) 0/1 matrices in `labels`
    order). Macro-F1 averages the labels present in gold or predictions (as llm2edge.metrics does)."""
    names = list(labels)

    def matrix(x: np.ndarray | Sequence[Sequence[str]]) -> np.ndarray:
        if isinstance(x, np.ndarray):
            return x.astype(bool)
        return indicator(x, names).astype(bool)

    y, p = matrix(gold), matrix(pred)
    if y.shape != p.shape:
        raise ValueError(f"gold has shape {y.shape}, predictions {p.shape}")
    n = y.shape[0]
    tp = (y & p).sum(axis=0).astype(float)
    fp = (~y & p).sum(axis=0).astype(float)
    fn = (y & ~p).sum(axis=0).astype(float)
    f1 = _f1(tp, fp, fn)
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
    present = (tp + fp + fn) > 0
    stp, sfp, sfn = tp.sum(), fp.sum(), fn.sum()
    per = [LabelScore(names[j], float(precision[j]), float(recall[j]), float(f1[j]), int(tp[j] + fn[j]),
                      int(tp[j] + fp[j])) for j in range(len(names))]
    return MultiLabelReport(
        labels=names, n=int(n),
        micro_f1=float(2 * stp / (2 * stp + sfp + sfn)) if (2 * stp + sfp + sfn) else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        subset_accuracy=float((y == p).all(axis=1).mean()) if n else 0.0,
        hamming_loss=float((y != p).mean()) if y.size else 0.0,
        micro_precision=float(stp / (stp + sfp)) if (stp + sfp) else 0.0,
        micro_recall=float(stp / (stp + sfn)) if (stp + sfn) else 0.0,
        per_label=per,
    )
