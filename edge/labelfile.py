"""Label sets in data files at the edge (numpy only): read a multi-label file's sets, and tell a file's kind.

A file's labels are multi-label when a JSONL `label` is a list, or a cell holds the separator (`a;b`) or is
empty (the empty set); a JSONL string label without the separator is single-label (the contract of
llm2edge.labelsets: the JSON type tells). A prediction file's run record (`OUT.run.json`, written by
`llm2edge predict`) says which kind of bundle made it. Anything else (a CSV of single names) fits either
kind and takes the kind of the file it is compared with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm2edge.defaults import LABEL_SEP, TEXT_COL
from llm2edge.errors import DataError
from llm2edge.labelsets import indicator, parse_label_set
from llm2edge.records import cell, iter_rows

#: What a file's labels show: a list / set (multi), a single name where a list would be typed (single),
#: or nothing either way (either).
MULTI, SINGLE, EITHER = "multi-label", "single-label", "either"


def cell_kind(value: object, fmt_jsonl: bool) -> str:
    """What one label value shows: MULTI (a list, `a;b`, or empty), SINGLE (a JSONL string name), EITHER."""
    if isinstance(value, (list, tuple)):
        return MULTI
    text = "" if value is None else str(value).strip()
    if not text or LABEL_SEP in text or (text.startswith("[") and text.endswith("]")):
        return MULTI
    return SINGLE if fmt_jsonl else EITHER


def run_record_kind(path: str | Path) -> str | None:
    """MULTI or SINGLE as the run record beside a prediction file says (`OUT.run.json`), else None."""
    record = Path(str(path) + ".run.json")
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or "labels" not in data:
        return None
    return MULTI if data.get("multi_label") is True else SINGLE


def run_record_labels(path: str | Path) -> list[str] | None:
    """The bundle labels the run record beside a prediction file names, or None."""
    try:
        data = json.loads(Path(str(path) + ".run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    labels = data.get("labels") if isinstance(data, dict) else None
    return [str(x) for x in labels] if isinstance(labels, list) else None


@dataclass(frozen=True)
class LabelSets:
    """The texts (where asked for) and label sets of a labelled file, in the given label order."""

    path: str
    texts: list[str]
    sets: list[tuple[str, ...]]
    lines: list[int]

    def matrix(self, labels: Sequence[str]) -> np.ndarray:
        """The sets as an (n, k) 0/1 matrix in `labels` order."""
        return indicator(self.sets, labels)


def read_label_sets(path: str | Path, labels: Sequence[str], *, text_col: str | None = TEXT_COL,
                    label_col: str = "label") -> LabelSets:
    """Every row's label set (a JSONL list or a `;`-joined cell, `labelsets.parse_label_set`; the empty set
    is allowed) and text (when `text_col`); DataError naming file:line for a missing column, an unknown or
    repeated name, or a missing text."""
    name = str(path)
    if not Path(path).exists():
        raise DataError(f"{name}: no such file")
    if Path(path).is_dir():
        raise DataError(f"{name}: is a folder, not a file")
    texts: list[str] = []
    sets: list[tuple[str, ...]] = []
    lines: list[int] = []
    for n, (line, row) in enumerate(iter_rows(path, text_col=text_col or TEXT_COL)):
        where = f"{name}:{line}"
        if n == 0:
            missing = [c for c in (label_col, text_col) if c and c not in row]
            if missing:
                raise DataError(f"{name}: missing column {missing[0]} (columns: {', '.join(map(str, row))})")
        sets.append(parse_label_set(row.get(label_col), labels, where=where, allow_empty=True))
        if text_col:
            text = cell(row, text_col, where, text=True)
            if text is None:
                raise DataError(f"{where}: empty text in column '{text_col}'")
            texts.append(text)
        lines.append(line)
    if not sets:
        raise DataError(f"{name}: no rows")
    return LabelSets(path=name, texts=texts, sets=sets, lines=lines)
