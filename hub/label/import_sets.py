"""Cells of `import-labels`: probability columns, and the label sets of a multi-label import.

A multi-label answer is a list (JSONL) or a cell of names joined with the separator (`--label-sep`,
LABEL_SEP by default); each name is matched like a single-label answer (exactly, ignoring case, through
`--map`), then the set is checked by `llm2edge.labelsets.parse_label_set`: an unknown name, a name twice,
or an empty set where the task does not allow none is a DataError naming file, line and value. Probability
columns of a multi-label task are each label's own probability: each in [0, 1], no sum asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from llm2edge.errors import DataError
from llm2edge.labelsets import parse_label_set


class Matcher(Protocol):
    """Matches one raw answer to a label: (label, how) or None (importer._Matcher)."""

    labels: tuple[str, ...]

    def match(self, raw: str) -> tuple[str, str] | None:
        """(label, how) for an answer, or None when nothing matches."""
        ...


def prob_cells(row: Mapping[str, Any], cols: Mapping[str, str], where: str) -> dict[str, float] | None:
    """label -> its probability cell as a float (finite, non-negative); None when every cell is empty, a
    DataError naming the column when only some are, or one holds something else."""
    cells = {label: row.get(col) for label, col in cols.items()}
    blank = [label for label, v in cells.items() if v is None or (isinstance(v, str) and not v.strip())]
    if len(blank) == len(cells):
        return None
    if blank:
        raise DataError(f"{where}: probability column '{cols[blank[0]]}' is empty while the row's other "
                        "probabilities are given: give every label's probability")
    probs: dict[str, float] = {}
    for label, value in cells.items():
        try:
            if isinstance(value, bool):
                raise ValueError
            p = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DataError(f"{where}: probability column '{cols[label]}' holds {value!r}, not a number"
                            ) from None
        if not math.isfinite(p) or p < 0:
            raise DataError(f"{where}: probability column '{cols[label]}' holds {value!r}: probabilities "
                            "must be finite and non-negative")
        probs[label] = p
    return probs


def set_probs(row: Mapping[str, Any], cols: Mapping[str, str], where: str) -> dict[str, float] | None:
    """A multi-label row's per-label probabilities (each in [0, 1], independent: no sum asked)."""
    probs = prob_cells(row, cols, where)
    if probs is None:
        return None
    over = [label for label, p in probs.items() if p > 1.0]
    if over:
        raise DataError(f"{where}: probability column '{cols[over[0]]}' holds {probs[over[0]]!r}: a label's "
                        "probability must be in [0, 1]")
    return probs


def import_set(value: object, matcher: Matcher, *, sep: str, allow_none: bool, where: str
               ) -> tuple[tuple[str, ...], list[tuple[str, str]]]:
    """(the label set in task order, [(raw name, how matched)] of the names that matched) of one cell."""
    if value is None:
        items: list[Any] = []
    elif isinstance(value, str):
        items = [part.strip() for part in value.split(sep)] if value.strip() else []
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise DataError(f"{where}: label {value!r} is not a label list")
    names: list[Any] = []
    hows: list[tuple[str, str]] = []
    for item in items:
        hit = matcher.match(item.strip()) if isinstance(item, str) and item.strip() else None
        if hit is None:
            names.append(item)  # parse_label_set names it (unknown, empty or not a string)
            continue
        names.append(hit[0])
        hows.append((item.strip(), hit[1]))
    shown: object = sep.join(str(n) for n in names) if isinstance(value, str) else names
    labels = parse_label_set(shown, matcher.labels, where=where, sep=sep, allow_empty=allow_none)
    return labels, hows
