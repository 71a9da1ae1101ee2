"""Score a prediction file against a gold file (joined by id, or by row order), with numpy only.

Multi-label files (label lists in JSONL, `a;b` cells, or a prediction file whose run record says a
multi-label bundle made it; edge/labelfile.py) are scored with `labelsets.multilabel_report`: micro/macro-F1,
subset accuracy, Hamming loss and a per-label table. A single-label file compared with a multi-label one is
a DataError naming the single-label file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm2edge.defaults import ID_COL, LABEL_COL, LABEL_SEP, TEXT_COL
from llm2edge.edge.labelfile import EITHER, MULTI, SINGLE, cell_kind, run_record_kind, run_record_labels
from llm2edge.errors import DataError
from llm2edge.labelsets import MultiLabelReport, join_label_set, multilabel_report, parse_label_set
from llm2edge.metrics import Report, classification_report
from llm2edge.records import detect_format, iter_rows, stable_id


@dataclass(frozen=True)
class LabelColumn:
    """The labels of one file, with their ids (None when the file has none) and line numbers."""

    path: str
    labels: list[str]
    ids: list[str] | None
    lines: list[int]
    #: What the labels show (labelfile.MULTI, SINGLE or EITHER).
    kind: str = EITHER
    #: Label names the file's probability columns give (CSV p_<label>, JSONL probs keys), in order.
    names: tuple[str, ...] = ()
    #: Line of the first empty label (an error unless the file is multi-label: the empty set).
    empty_line: int | None = None


def read_label_column(path: str | Path, *, label_col: str = LABEL_COL, id_col: str = ID_COL,
                      text_col: str | None = TEXT_COL, fmt: str | None = None,
                      allow_empty: bool = False) -> LabelColumn:
    """Read a file's labels and ids; without an id column, ids are derived from text as `predict` does.

    A JSONL label list is kept joined with LABEL_SEP; `allow_empty` keeps empty labels (the empty set of a
    multi-label file) and notes the first one's line."""
    name = str(path)
    labels: list[str] = []
    ids: list[str] | None = None
    lines: list[int] = []
    id_from: str | None = None
    jsonl = Path(path).exists() and detect_format(path, fmt) == "jsonl"
    kinds: set[str] = set()
    names: tuple[str, ...] = ()
    empty_line: int | None = None
    for n, (line, row) in enumerate(iter_rows(path, fmt=fmt, text_col=label_col)):
        if n == 0:
            if label_col not in row:
                have = ", ".join(map(str, row)) or "none"
                raise DataError(f"{name}: missing column {label_col} (columns: {have})")
            if id_col in row:
                id_from, ids = "id", []
            elif text_col and text_col in row and text_col != label_col:
                id_from, ids = "text", []
            probs = row.get("probs")
            names = (tuple(map(str, probs)) if isinstance(probs, dict) else
                     tuple(str(c)[2:] for c in row if str(c).startswith("p_")))
        value = row.get(label_col)
        kinds.add(cell_kind(value, jsonl) if value not in (None, "") else EITHER)
        if isinstance(value, (list, tuple)):
            value = join_label_set(str(v) for v in value)
        label = "" if value is None else str(value).strip()
        if not label:
            if not allow_empty:
                raise DataError(f"{name}:{line}: empty label in column '{label_col}'")
            empty_line = line if empty_line is None else empty_line
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
    kind = MULTI if MULTI in kinds else SINGLE if SINGLE in kinds else EITHER
    return LabelColumn(path=name, labels=labels, ids=ids, lines=lines, kind=kind, names=names,
                       empty_line=empty_line)


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


def _kinds(pred: LabelColumn, gold: LabelColumn) -> bool:
    """True when the two files are scored as multi-label; DataError naming the single-label file when one
    is multi-label and the other single-label."""
    p_kind = run_record_kind(pred.path) or pred.kind
    kinds = {pred.path: p_kind, gold.path: gold.kind}
    if MULTI in kinds.values() and SINGLE in kinds.values():
        single = next(path for path, kind in kinds.items() if kind == SINGLE)
        multi = next(path for path, kind in kinds.items() if kind == MULTI)
        why = "its run record says a single-label bundle made it" if kinds[pred.path] == SINGLE and \
            single == pred.path and pred.kind != SINGLE else "its labels are single names, not lists"
        raise DataError(f"{single}: single-label ({why}), but {multi} is multi-label (label sets); "
                        "compare predictions and gold of the same kind")
    return MULTI in kinds.values()


def _sets(col: LabelColumn, names: list[str]) -> list[str]:
    """The column's labels as canonical joined sets; DataError naming file:line for an unknown name."""
    return [join_label_set(parse_label_set(label, names, where=f"{col.path}:{line}", allow_empty=True))
            for label, line in zip(col.labels, col.lines)]


def _multi_report(p: LabelColumn, g: LabelColumn) -> tuple[MultiLabelReport, str]:
    """The multi-label report of aligned prediction and gold sets, in the bundle's label order (the run
    record's, else the probability columns', else the names seen, sorted)."""
    names = run_record_labels(p.path) or list(p.names)
    if not names:
        seen = {x.strip() for col in (p, g) for label in col.labels for x in label.split(LABEL_SEP)}
        names = sorted(x for x in seen if x)
    p = LabelColumn(p.path, _sets(p, names), p.ids, p.lines)
    g = LabelColumn(g.path, _sets(g, names), g.ids, g.lines)
    gold_sets, pred_sets, how = align(p, g)
    split = [[tuple(x for x in s.split(LABEL_SEP) if x) for s in sets] for sets in (gold_sets, pred_sets)]
    return multilabel_report(split[0], split[1], names), how


def evaluate_files(pred: str | Path, gold: str | Path, *, id_col: str = ID_COL, pred_col: str = LABEL_COL,
                   gold_col: str = LABEL_COL, text_col: str = TEXT_COL
                   ) -> tuple[Report | MultiLabelReport, str]:
    """Compare a prediction file with a gold file; returns the Report (a MultiLabelReport for multi-label
    files) and how rows were joined."""
    p = read_label_column(pred, label_col=pred_col, id_col=id_col, text_col=None, allow_empty=True)
    g = read_label_column(gold, label_col=gold_col, id_col=id_col, text_col=text_col, allow_empty=True)
    if _kinds(p, g):
        return _multi_report(p, g)
    for col, column in ((p, pred_col), (g, gold_col)):
        if col.empty_line is not None:
            raise DataError(f"{col.path}:{col.empty_line}: empty label in column '{column}'")
    gold_labels, pred_labels, how = align(p, g)
    return classification_report(gold_labels, pred_labels), how
