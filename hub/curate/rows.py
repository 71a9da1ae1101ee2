"""Read and write labels.jsonl rows (the labeling stage's output) for curation."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm2edge.errors import DataError
from llm2edge.labelsets import parse_label_set
from llm2edge.records import read_jsonl

#: One labels.jsonl row as a dict (id, text, label, probs, confidence, source, ...).
Row = dict[str, Any]


@dataclass(frozen=True)
class LabeledRows:
    """The usable rows of a labels.jsonl file, its label set, and how many rows were skipped."""

    path: str
    rows: list[Row]
    labels: tuple[str, ...]
    skipped_error: int = 0  # rows that carry `error` (no label): left out
    duplicates: int = 0  # earlier rows of the same item, superseded by a later row (append-only store)
    #: `label` is a list of labels in every row (llm2edge.labelsets), in the label set's order.
    multi_label: bool = False

    def label_counts(self) -> dict[str, int]:
        """How many rows carry each label, in label-set order."""
        counts = dict.fromkeys(self.labels, 0)
        for row in self.rows:
            for name in (row["label"] if self.multi_label else [row["label"]]):
                counts[name] += 1
        return counts


def _row_key(row: Row) -> str:
    """The item key of a row (the labeler's `key`, else its `id`)."""
    return str(row.get("key") or row.get("id"))


def load_labels(path: str | Path, labels: Sequence[str] | None = None) -> LabeledRows:
    """Read labels.jsonl: one row per item (the last good row wins), rows with `error` counted and skipped."""
    raw = read_jsonl(path)
    if not raw:
        raise DataError(f"{path}: no rows")
    latest: dict[str, tuple[int, Row]] = {}
    duplicates = 0
    for lineno, row in enumerate(raw, start=1):
        if "id" not in row or "text" not in row:
            raise DataError(f"{path}: row {lineno} has no 'id' or 'text': not a labels.jsonl file")
        key = _row_key(row)
        if key in latest:
            duplicates += 1
            old = latest[key][1]
            if _is_error(row) and not _is_error(old):
                continue  # a failed retry never replaces a good label
        latest[key] = (lineno, row)
    good: list[tuple[int, Row]] = []
    skipped = 0
    for lineno, row in latest.values():
        if _is_error(row):
            skipped += 1
        else:
            good.append((lineno, row))
    if not good:
        raise DataError(f"{path}: every row carries an error; nothing to curate")
    multi = _is_multi(path, good)
    label_set = tuple(labels) if labels else _label_set(path, [r for _, r in good])
    if multi:
        rows = [_multi_row(path, lineno, row, label_set) for lineno, row in good]
        return LabeledRows(str(path), rows, label_set, skipped, duplicates, multi_label=True)
    known = set(label_set)
    for lineno, row in good:
        if row["label"] not in known:
            raise DataError(f"{path}: row {lineno} (id {row['id']}): label '{row['label']}' is not in the "
                            f"label set {list(label_set)}")
        probs = row.get("probs")
        if probs and row["label"] not in probs:  # its distribution says nothing of its own label
            raise DataError(f"{path}: row {lineno} (id {row['id']}): label '{row['label']}' is missing from "
                            f"its own probs {sorted(probs)}")
    return LabeledRows(str(path), [dict(r) for _, r in good], label_set, skipped, duplicates)


def _is_error(row: Row) -> bool:
    """True if a row failed (an `error` is set, or no label; a multi-label row's empty list is a label)."""
    return bool(row.get("error")) or row.get("label") in (None, "")


def _is_multi(path: str | Path, rows: Sequence[tuple[int, Row]]) -> bool:
    """True when the rows' labels are lists (a multi-label file); DataError naming the first row whose
    label's JSON type differs from the first row's (lists and strings mixed in one file)."""
    first = isinstance(rows[0][1]["label"], list)
    for lineno, row in rows:
        if isinstance(row["label"], list) != first:
            kinds = ("a list", "a string") if first else ("a string", "a list")
            raise DataError(f"{path}: row {lineno} (id {row['id']}): label {json.dumps(row['label'])} is "
                            f"{kinds[1]}, but row {rows[0][0]}'s is {kinds[0]}: a labels.jsonl file is "
                            "multi-label (lists) or single-label (strings), not both")
    return first


def _multi_row(path: str | Path, lineno: int, row: Row, labels: Sequence[str]) -> Row:
    """A multi-label row with its label list checked and in `labels` order; DataError naming the row for
    an unknown or repeated name, or per-label probabilities that are not numbers in [0, 1] or miss one of
    the row's own labels. The empty list is accepted (a task with `allow_none`)."""
    where = f"{path}: row {lineno} (id {row['id']})"
    chosen = parse_label_set(row["label"], labels, where=where, allow_empty=True)
    probs = row.get("probs")
    if probs:
        for name, value in probs.items():
            if name not in labels or isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not 0.0 <= float(value) <= 1.0:
                raise DataError(f"{where}: probs[{name!r}] = {value!r}: expected a probability in [0, 1] "
                                f"for a label of {list(labels)}")
        missing = [name for name in chosen if name not in probs]
        if missing:
            raise DataError(f"{where}: label '{missing[0]}' is missing from its own probs {sorted(probs)}")
    return {**row, "label": list(chosen)}


def _label_set(path: str | Path, rows: Sequence[Row]) -> tuple[str, ...]:
    """The label set: the keys of the rows' `probs` in first-seen order, then any other label seen."""
    order: dict[str, None] = {}
    for row in rows:
        for name in (row.get("probs") or {}):
            order.setdefault(str(name), None)
    for row in rows:
        for name in (row["label"] if isinstance(row["label"], list) else [row["label"]]):
            order.setdefault(str(name), None)
    if len(order) < 2:
        raise DataError(f"{path}: fewer than two labels in the file ({list(order)}); cannot curate")
    return tuple(order)


def row_probs(row: Row, labels: Sequence[str]) -> list[float]:
    """A row's label distribution in `labels` order, normalized; one-hot on its label if it has none."""
    probs = row.get("probs") or {}
    values = [float(probs.get(name, 0.0) or 0.0) for name in labels]
    values = [v if math.isfinite(v) and v > 0 else 0.0 for v in values]
    total = sum(values)
    if total <= 0:
        return [1.0 if name == row["label"] else 0.0 for name in labels]
    return [v / total for v in values]


def row_confidence(row: Row, labels: Sequence[str], by: str = "confidence") -> float:
    """How sure the LLM was: `confidence` (top1 - top2 probability) or `margin` (log-prob margin)."""
    if by == "margin":
        value = row.get("margin_logprob")
        if value is not None and math.isfinite(float(value)):
            return float(value)
    else:
        value = row.get("confidence")
        if value is not None and math.isfinite(float(value)):
            return float(value)
    top = sorted(row_probs(row, labels), reverse=True)
    return top[0] - (top[1] if len(top) > 1 else 0.0)


def pair_text(row: Row) -> str | None:
    """The per-item fields of a row as one string (the first segment of a text pair), or None."""
    fields = row.get("fields") or {}
    return " ".join(str(v) for v in fields.values()) or None


def field_names(rows: Sequence[Row]) -> list[str]:
    """The per-item field names used by the rows (e.g. `target` for stance), in first-seen order."""
    names: dict[str, None] = {}
    for row in rows:
        for name in (row.get("fields") or {}):
            names.setdefault(str(name), None)
    return list(names)


def write_rows(path: str | Path, rows: Sequence[Row]) -> Path:
    """Write rows as JSONL (atomically: a temporary file renamed into place)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return out


def write_json(path: str | Path, obj: Any) -> Path:
    """Write a JSON document (indented, UTF-8)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out
