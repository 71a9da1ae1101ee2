"""Multi-label training data: rows whose label is a set (the contract in `llm2edge.labelsets`).

A run is multi-label when TrainConfig.multi_label is set, or when the training file is JSONL and a row's
`label` is a JSON list (an LLM's multi-label labels.jsonl). Then:

- a cell holds the names joined with LABEL_SEP (`joy;anger`), a JSONL `label` a list (or such a string);
  a name outside the label order (TrainConfig.labels, else every name seen, `probs` keys included), a name
  twice or an empty part is a DataError naming file:line and the value (`labelsets.parse_label_set`);
- in JSONL, list and string labels never mix: a row whose label is a string in a file of lists (or the
  reverse) is a DataError; a labels.jsonl row (one with a `probs` object) whose label is a string is a
  single-label answer, so with multi_label it is a DataError too;
- `probs` are independent per-label probabilities in [0, 1] (they need not sum to 1); a name of the set
  must have one;
- the empty set is allowed as a JSON list (`[]`: the labeler let it through for a task with `none`); an
  empty cell is an "empty label" DataError as in single-label training.

Each Example keeps the set in `labels` (label order) and its joined form in `label` (validation.csv's cell).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from llm2edge.defaults import LABEL_SEP
from llm2edge.errors import DataError
from llm2edge.hub.train.config import PROBS_FIELD
from llm2edge.hub.train.data import Example, probs_object
from llm2edge.labelsets import join_label_set, parse_label_set
from llm2edge.records import detect_format, iter_rows


def _is_jsonl(path: str | Path) -> bool:
    """True when `path` is read as JSON lines."""
    return str(path) != "-" and detect_format(path) == "jsonl"


def has_list_labels(path: str | Path, label_col: str, text_col: str) -> bool:
    """True when `path` is JSONL and its first row's `label_col` is a JSON list (a multi-label labels file).
    A later list in a file of strings is caught by the single-label reader (a list is not a label)."""
    if not _is_jsonl(path):
        return False
    first = next(iter(iter_rows(path, text_col=text_col)), None)
    return first is not None and isinstance(first[1].get(label_col), list)


def _probs(value: object, where: str) -> dict[str, float] | None:
    """Independent per-label probabilities {label: p in [0, 1]} from a JSON object; None if absent."""
    value = probs_object(value, where)
    if value is None:
        return None
    out: dict[str, float] = {}
    for key, p in value.items():
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0 <= p <= 1:
            raise DataError(f"{where}: '{PROBS_FIELD}' has a bad probability for '{key}': {p!r} "
                            "(multi-label: each label's own probability, in [0, 1])")
        out[str(key)] = float(p)
    return out


def _raw_items(value: object) -> list[str]:
    """The names in a list or `a;b` value, unchecked (for collecting the label order)."""
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if isinstance(v, str) and v.strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(LABEL_SEP) if part.strip()]
    return []


def read_label_sets(path: str | Path, *, text_col: str, label_col: str, labels: Sequence[str] | None = None,
                    soft: bool = False) -> tuple[list[Example], list[str]]:
    """(examples, label order) of a multi-label file; `labels` fixes the order (else sorted names seen).

    With `soft` each example carries its `probs` (per label; a label without one gets 1 if in the set,
    else 0 when the targets are built)."""
    jsonl = _is_jsonl(path)
    rows: list[tuple[str, str, object, dict[str, float] | None]] = []
    kind: str | None = None
    checked = False
    for line, row in iter_rows(path, text_col=text_col):
        where = f"{path}:{line}"
        if not checked:
            missing = [c for c in (text_col, label_col) if c not in row]
            if missing:
                have = ", ".join(map(str, row)) or "none"
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (columns: {have})")
            checked = True
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: empty text in column '{text_col}'")
        value = row.get(label_col)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, (str, list)):
            raise DataError(f"{where}: label {value!r} is not a label name or a list of them")
        if isinstance(value, str) and not value.strip():
            raise DataError(f"{where}: empty label in column '{label_col}'")
        probs = _probs(row.get(PROBS_FIELD), where)
        if jsonl:
            this = "list" if isinstance(value, list) else "string"
            if kind is not None and this != kind:
                raise DataError(f"{where}: label {value!r} is a {this}, but earlier rows hold a {kind}: "
                                "single- and multi-label rows are mixed")
            kind = this
            if this == "string" and row.get(PROBS_FIELD) is not None:
                raise DataError(f"{where}: label {value!r} is one label (a single-label labels file), but "
                                "the training is multi-label (a multi-label labels.jsonl has a list per row)")
        rows.append((where, text, value, probs))
    if not rows:
        raise DataError(f"{path}: no rows")
    if labels is None:
        seen: set[str] = set()
        for _, _, value, probs in rows:
            seen.update(_raw_items(value))
            seen.update(probs or {})
        order = sorted(seen)
    else:
        order = list(labels)
    examples: list[Example] = []
    for where, text, value, probs in rows:
        chosen = parse_label_set(value, order, where=where, allow_empty=isinstance(value, list))
        if probs is not None:
            for name in chosen:
                if name not in probs:
                    raise DataError(f"{where}: label '{name}' in {value!r} has no probability in "
                                    f"'{PROBS_FIELD}' (it names: {', '.join(probs)})")
            for name in probs:
                if name not in order:
                    raise DataError(f"{where}: '{PROBS_FIELD}' names '{name}', not one of the labels {order}")
        examples.append(Example(text=text, label=join_label_set(chosen), labels=chosen,
                                probs=probs if soft else None, where=where))
    if len(order) < 2:
        raise DataError(f"a classifier needs at least 2 labels; the training data has only {order}")
    return examples, order
