"""Score a prediction file against a gold file (joined by id, or by row order), with numpy only."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm2edge.defaults import ID_COL, LABEL_COL, TEXT_COL
from llm2edge.errors import DataError
from llm2edge.metrics import Report, classification_report
from llm2edge.records import iter_rows, stable_id


@dataclass(frozen=True)
class LabelColumn:
    """The labels of one file, with their ids (None when the file has none) and line numbers."""

    path: str
    labels: list[str]
    ids: list[str] | None
    lines: list[int]


def read_label_column(path: str | Path, *, label_col: str = LABEL_COL, id_col: str = ID_COL,
                      text_col: str | None = TEXT_COL, fmt: str | None = None) -> LabelColumn:
    """Read a file's labels and ids; without an id column, ids are derived from text as `predict` does."""
    name = str(path)
    labels: list[str] = []
    ids: list[str] | None = None
    lines: list[int] = []
    id_from: str | None = None
    for n, (line, row) in enumerate(iter_rows(path, fmt=fmt, text_col=label_col)):
        if n == 0:
            if label_col not in row:
                have = ", ".join(map(str, row)) or "none"
                raise DataError(f"{name}: missing column {label_col} (columns: {have})")
            if id_col in row:
                id_from, ids = "id", []
            elif text_col and text_col in row and text_col != label_col:
                id_from, ids = "text", []
        value = row.get(label_col)
        label = "" if value is None else str(value).strip()
        if not label:
            raise DataError(f"{name}:{line}: empty label in column '{label_col}'")
        labels.append(label)
        lines.append(line)
        if ids is not None:
            if id_from == "id":
                rid = row.get(id_col)
                if rid is None or not str(rid).strip():
                    raise DataError(f"{name}:{line}: empty id in column '{id_col}'")
                ids.append(str(rid))
            else:
                text = row.get(text_col or "")
                ids.append(stable_id(n, "" if text is None else str(text)))
    if not labels:
        raise DataError(f"{name}: no rows")
    return LabelColumn(path=name, labels=labels, ids=ids, lines=lines)


def _names(items: list[str], limit: int = 5) -> str:
    """A short list of names for an error message."""
    shown = ", ".join(f"'{x}'" for x in items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _by_id(col: LabelColumn) -> dict[str, str]:
    """id -> label, with duplicate ids as an error naming the line."""
    out: dict[str, str] = {}
    assert col.ids is not None
    for rid, label, line in zip(col.ids, col.labels, col.lines):
        if rid in out:
            raise DataError(f"{col.path}:{line}: duplicate id '{rid}'")
        out[rid] = label
    return out


def align(pred: LabelColumn, gold: LabelColumn) -> tuple[list[str], list[str], str]:
    """Gold and predicted labels paired by id when both files have ids, else by row order."""
    if pred.ids is not None and gold.ids is not None:
        p, g = _by_id(pred), _by_id(gold)
        missing = [i for i in g if i not in p]
        unknown = [i for i in p if i not in g]
        if unknown:
            raise DataError(f"{pred.path}: {len(unknown)} id(s) not in {gold.path}: {_names(unknown)}")
        if missing:
            raise DataError(f"{pred.path}: no prediction for {len(missing)} id(s) of {gold.path}: "
                            f"{_names(missing)}")
        return list(g.values()), [p[i] for i in g], "id"
    if len(pred.labels) != len(gold.labels):
        raise DataError(f"{pred.path} has {len(pred.labels)} rows but {gold.path} has {len(gold.labels)}; "
                        "without ids on both sides rows are paired by order")
    return gold.labels, pred.labels, "row order"


def evaluate_files(pred: str | Path, gold: str | Path, *, id_col: str = ID_COL, pred_col: str = LABEL_COL,
                   gold_col: str = LABEL_COL, text_col: str = TEXT_COL) -> tuple[Report, str]:
    """Compare a prediction file with a gold file; returns the Report and how rows were joined."""
    p = read_label_column(pred, label_col=pred_col, id_col=id_col, text_col=None)
    g = read_label_column(gold, label_col=gold_col, id_col=id_col, text_col=text_col)
    gold_labels, pred_labels, how = align(p, g)
    return classification_report(gold_labels, pred_labels), how
