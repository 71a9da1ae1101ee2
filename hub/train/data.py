"""Training data: hard or soft labelled examples, the label order, the held-back validation slice."""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llm2edge.defaults import LABEL_SEP
from llm2edge.errors import DataError
from llm2edge.hub.train.config import PROBS_FIELD, TrainConfig
from llm2edge.labelsets import check_single
from llm2edge.records import iter_rows, read_records


@dataclass(frozen=True)
class Example:
    """One item to train or evaluate on: text, gold label, optional soft target, and where it came from."""

    text: str
    label: str  # the hard label (for soft rows: the label column, else the most probable label)
    probs: dict[str, float] | None = None  # normalized soft target (soft_labels only)
    where: str = ""  # "file:line", for error messages
    labels: tuple[str, ...] | None = None  # multi-label: the set in label order (`label` is its joined form)


def read_hard(path: str | Path, *, text_col: str, label_col: str, id_col: str | None = None) -> list[Example]:
    """Examples with one gold label each (CSV/JSONL/Parquet); bad rows are DataErrors naming file:line."""
    records = read_records(path, text_col=text_col, label_col=label_col, id_col=id_col, require_label=True)
    return [Example(text=r.text, label=str(r.label), where=f"{path}:{r.line}") for r in records]


def probs_object(value: object, where: str) -> dict[object, object] | None:
    """The `probs` cell as a non-empty mapping, values unchecked: from a JSON object, a JSON string or a
    Parquet map; None if absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{where}: '{PROBS_FIELD}' is not a JSON object") from None
    if isinstance(value, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        value = dict(value)  # a Parquet map column arrives as [(key, value), ...]
    if not isinstance(value, dict) or not value:
        raise DataError(f"{where}: '{PROBS_FIELD}' must be a non-empty object {{label: probability}}")
    return value


def _parse_probs(value: object, where: str) -> dict[str, float] | None:
    """A {label: p} mapping (normalized to sum to 1) from a JSON object, a JSON string or a Parquet map;
    None if absent."""
    value = probs_object(value, where)
    if value is None:
        return None
    probs: dict[str, float] = {}
    for key, p in value.items():
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 0:
            raise DataError(f"{where}: '{PROBS_FIELD}' has a bad probability for '{key}': {p!r}")
        probs[str(key)] = float(p)
    total = sum(probs.values())
    if total <= 0:
        raise DataError(f"{where}: '{PROBS_FIELD}' sums to 0")
    return {k: p / total for k, p in probs.items()}


def read_soft(path: str | Path, *, text_col: str, label_col: str) -> list[Example]:
    """Examples with a label distribution from the `probs` field; a row with only a label is one-hot."""
    examples: list[Example] = []
    checked = False
    for line, row in iter_rows(path, text_col=text_col):
        where = f"{path}:{line}"
        if not checked:
            if text_col not in row:
                have = ", ".join(map(str, row)) or "none"
                raise DataError(f"{path}: missing column(s) {text_col} (columns: {have})")
            if PROBS_FIELD not in row and label_col not in row:
                raise DataError(f"{path}: soft labels need a '{PROBS_FIELD}' field "
                                f"(or a '{label_col}' column)")
            checked = True
        text = row.get(text_col)
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: empty text in column '{text_col}'")
        probs = _parse_probs(row.get(PROBS_FIELD), where)
        label = row.get(label_col)
        label = str(label).strip() if label is not None else ""
        if probs is None:
            if not label:
                raise DataError(f"{where}: neither '{PROBS_FIELD}' nor a label in column '{label_col}'")
            probs = {label: 1.0}
        if not label:
            label = max(probs, key=lambda k: probs[k])
        examples.append(Example(text=text, label=label, probs=probs, where=where))
    if not examples:
        raise DataError(f"{path}: no rows")
    return examples


def label_order(examples: Sequence[Example], explicit: Sequence[str] | None = None) -> list[str]:
    """The label order: `explicit`, else the sorted labels seen (soft targets' keys included)."""
    seen: set[str] = set()
    for ex in examples:
        seen.add(ex.label)
        if ex.probs:
            seen.update(ex.probs)
    if explicit is None:
        order = sorted(seen)
    else:
        order = list(explicit)
        for ex in examples:
            for label in [ex.label, *(ex.probs or {})]:
                if label not in order:
                    raise DataError(f"{ex.where}: label '{label}' is not one of the given labels {order}")
    if len(order) < 2:
        raise DataError(f"a classifier needs at least 2 labels; the training data has only {order}")
    return order


def check_labels(examples: Sequence[Example], labels: Sequence[str], what: str) -> None:
    """Raise DataError naming the first row whose gold label is not a training label."""
    known = set(labels)
    for ex in examples:
        if ex.label not in known:
            raise DataError(f"{ex.where}: {what} label '{ex.label}' is not one of the training labels "
                            f"{list(labels)}")


def split_validation(examples: Sequence[Example], *, fraction: float, max_rows: int, seed: int
                     ) -> tuple[list[Example], list[Example]]:
    """(train, validation): a seeded random slice of round(fraction * n) rows (at most max_rows) held back."""
    n = len(examples)
    k = min(max_rows, round(n * fraction)) if fraction > 0 else 0
    if fraction > 0 and k == 0 and n >= 10:
        k = 1
    if n - k < 1:
        raise DataError(f"only {n} training rows: nothing left to train on after the validation slice")
    held = set(random.Random(seed).sample(range(n), k))
    train = [ex for i, ex in enumerate(examples) if i not in held]
    val = [ex for i, ex in enumerate(examples) if i in held]
    return train, val


def check_not_sets(examples: Sequence[Example], labels: Sequence[str] | None) -> None:
    """DataError naming the first row of a single-label run whose label is a set (`a;b`): of names in
    `labels` when given (`labelsets.check_single`), else of any non-empty names (without a label order, a
    single label cannot hold the separator: it reads as a multi-label file given without --multi-label)."""
    if labels is not None:
        names = list(labels)
    else:
        names = sorted({part.strip() for ex in examples for part in ex.label.split(LABEL_SEP)} - {""})
    for ex in examples:
        check_single(ex.label, names, where=ex.where)


def write_validation(path: str | Path, examples: Sequence[Example]) -> None:
    """Write the validation slice as CSV with columns text,label (what export validates against); a
    multi-label row's label is its set joined with LABEL_SEP in label order ('' for the empty set)."""
    with Path(path).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for ex in examples:
            writer.writerow([ex.text, ex.label])


@dataclass(frozen=True)
class TrainingData:
    """What a run trains and checks on: the train and validation slices, eval rows, and the label order."""

    train: list[Example]
    validation: list[Example]
    eval: list[Example] | None  # config.eval_data's rows, None without it
    labels: list[str]
    multi_label: bool = False  # rows hold label sets (Example.labels)


def load_training_data(config: TrainConfig) -> TrainingData:
    """Read config.data (hard or soft labels) and config.eval_data, fix the label order, split validation.
    Multi-label (config.multi_label, or a JSONL of list labels) reads label sets (`label_sets`)."""
    from llm2edge.hub.train.label_sets import has_list_labels, read_label_sets

    if config.multi_label or has_list_labels(config.data, config.label_col, config.text_col):
        examples, labels = read_label_sets(config.data, text_col=config.text_col, label_col=config.label_col,
                                           labels=config.labels, soft=config.soft_labels)
        eval_sets = None
        if config.eval_data is not None:
            eval_sets, _ = read_label_sets(config.eval_data, text_col=config.text_col,
                                           label_col=config.label_col, labels=labels)
        train, val = split_validation(examples, fraction=config.val_fraction, max_rows=config.val_max_rows,
                                      seed=config.seed)
        return TrainingData(train=train, validation=val, eval=eval_sets, labels=labels, multi_label=True)
    if config.soft_labels:
        examples = read_soft(config.data, text_col=config.text_col, label_col=config.label_col)
    else:
        examples = read_hard(config.data, text_col=config.text_col, label_col=config.label_col,
                             id_col=config.id_col)
    check_not_sets(examples, config.labels)
    labels = label_order(examples, config.labels)
    eval_examples: list[Example] | None = None
    if config.eval_data is not None:
        eval_examples = read_hard(config.eval_data, text_col=config.text_col, label_col=config.label_col,
                                  id_col=config.id_col)
        check_not_sets(eval_examples, labels)
        check_labels(eval_examples, labels, "eval")
    train, val = split_validation(examples, fraction=config.val_fraction, max_rows=config.val_max_rows,
                                  seed=config.seed)
    return TrainingData(train=train, validation=val, eval=eval_examples, labels=labels)
