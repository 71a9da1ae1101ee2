"""Merge an edge prediction file written with deferral and the LLM's labels of the deferred items.

The edge file comes from `llm2edge predict --defer ...` (CSV or JSONL with id, label, deferred); the LLM
file from `llm2edge label` on `predict --deferred-out` (labels.jsonl or CSV with id, label; label it with
`--id-col id` so the ids match). Deferred items take the LLM's label, the others keep the edge's label; a
deferred item without an LLM label is an error, so the final file never holds a silent edge guess. The LLM's
labels must be the bundle's (the edge file's p_<label> columns or probs keys): another label is an error
naming its row, unless `--map OLD=NEW` renames it.

From a multi-label bundle (the edge file's run record says so, or its labels are lists or `;`-joined sets)
labels are sets: the LLM's label is a list or a `;`-joined cell (`[]` is the empty set; a missing label is a
failed item), each name checked (and renamed by --map) apart, and the merged `label` / `edge_label` are
`;`-joined in CSV and lists in JSONL.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from llm2edge.checks import parse_map
from llm2edge.defaults import ID_COL, LABEL_COL, LABEL_SEP
from llm2edge.edge.labelfile import MULTI, run_record_kind
from llm2edge.edge.stream import output_format
from llm2edge.errors import DataError
from llm2edge.labelsets import join_label_set, parse_label_set
from llm2edge.outputs import distinct_files
from llm2edge.records import iter_rows

#: Columns of the merged file.
MERGED_COLUMNS = ("id", "label", "source", "edge_label", "deferred")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


@dataclass(frozen=True)
class MergeSummary:
    """What a merge did: rows written, deferred rows, and how many of those the LLM labelled differently."""

    rows: int
    deferred: int
    changed: int
    out: Path
    mapped: int = 0  # LLM labels renamed through --map

    def text(self) -> str:
        """One summary line."""
        share = self.deferred / self.rows if self.rows else 0.0
        mapped = f" ({self.mapped} LLM label(s) renamed through --map)" if self.mapped else ""
        return (f"merged {self.rows} rows: {self.deferred} deferred ({share:.1%}) took the LLM's label, "
                f"{self.changed} of them differ from the edge's{mapped} -> {self.out}")


def _flag(value: object, where: str) -> bool:
    """A deferred flag from JSON (bool) or CSV (true/false)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise DataError(f"{where}: 'deferred' must be true or false, got {value!r}")


def edge_labels(edge: str | Path) -> list[str]:
    """The bundle's label set as `predict` wrote it into an edge file: its p_<label> columns (CSV) or the
    keys of its first row's probs (JSONL); DataError when it holds neither."""
    for _, row in iter_rows(edge, text_col="label"):
        probs = row.get("probs")
        labels = list(probs) if isinstance(probs, dict) else [c[2:] for c in row if c.startswith("p_")]
        if labels:
            return labels
        break
    raise DataError(f"{edge}: no p_<label> columns or probs to tell the bundle's labels (write it with "
                    "`llm2edge predict --defer ...`)")


def edge_is_multi_label(edge: str | Path) -> bool:
    """True when an edge prediction file came from a multi-label bundle: its run record says so, or a label
    is a list or a `;`-joined set."""
    kind = run_record_kind(edge)
    if kind is not None:
        return kind == MULTI
    for _, row in iter_rows(edge, text_col="label"):
        value = row.get("label")
        if isinstance(value, list) or (isinstance(value, str) and LABEL_SEP in value):
            return True
    return False


def _llm_set(value: object, where: str, labels: Sequence[str], renames: dict[str, str], hint: str) -> str:
    """A multi-label LLM answer as the canonical `;`-joined set of bundle labels, --map applied per name."""
    names = [*labels, *(k for k in renames if k not in labels)]
    try:
        found = parse_label_set(value, names, where=where, allow_empty=True)
    except DataError as exc:
        bad = next((x for x in str(exc).split("'")[1:2]), "")
        raise DataError(f"{exc}{hint.format(label=bad) if 'unknown label' in str(exc) else ''}") from None
    mapped = {renames.get(x, x) for x in found}
    return join_label_set(x for x in labels if x in mapped)


def read_llm_labels(path: str | Path, *, id_col: str = ID_COL, label_col: str = LABEL_COL,
                    labels: Sequence[str] | None = None, renamed: Collection[str] = (), hint: str = "",
                    multi_label: bool = False, renames: dict[str, str] | None = None) -> dict[str, str]:
    """id -> label of an LLM label file; rows without a label (failed items) are left out. With `labels`,
    a label neither in them nor in `renamed` (what --map renames) is a DataError naming file:line and the
    label (`hint` says what to do about it). `multi_label`: each label is a set (a list, or `;`-joined),
    returned `;`-joined in `labels` order with `renames` applied."""
    found: dict[str, str] = {}
    for n, (line, row) in enumerate(iter_rows(path, text_col=label_col)):
        if n == 0 and id_col not in row:
            raise DataError(f"{path}: no '{id_col}' column (label the deferred file with --id-col id)")
        rid = row.get(id_col)
        if rid is None or not str(rid).strip():
            raise DataError(f"{path}:{line}: empty id in column '{id_col}'")
        if str(rid) in found:
            raise DataError(f"{path}:{line}: duplicate id '{rid}'")
        value = row.get(label_col)
        if multi_label and labels is not None and (isinstance(value, list) or
                                                   (isinstance(value, str) and value.strip())):
            found[str(rid)] = _llm_set(value, f"{path}:{line}", labels, renames or {}, hint)
            continue
        if value is None or not str(value).strip():
            continue
        label = str(value).strip()
        if labels is not None and label not in labels and label not in renamed:
            raise DataError(f"{path}:{line}: label '{label}' is not one of the bundle's labels "
                            f"{', '.join(labels)}{hint.format(label=label)}")
        found[str(rid)] = label
    return found


def merge_predictions(edge: str | Path, llm: str | Path, out: str | Path, *, fmt: str | None = None,
                      id_col: str = ID_COL, label_col: str = LABEL_COL, map: str | None = None
                      ) -> MergeSummary:
    """Write `out` (CSV or JSONL): every edge row, deferred ones with the LLM's label (source 'llm').

    The LLM's labels must be the bundle's (`edge_labels`); `map` ('OLD=NEW,...') renames others."""
    kind = output_format(out, fmt)
    for given in ({"--edge": edge}, {"--llm": llm}):  # the inputs may be one file, the output neither
        distinct_files({**given, "--out": out})
    labels = edge_labels(edge)
    renames = parse_map(map, labels)
    multi = edge_is_multi_label(edge)
    llm_labels = read_llm_labels(llm, id_col=id_col, label_col=label_col, labels=labels, renamed=renames,
                                 hint=f" (from {edge}); map it with --map '{{label}}=LABEL'",
                                 multi_label=multi, renames=renames)
    rows: list[dict[str, object]] = []
    deferred = changed = mapped = 0
    for n, (line, row) in enumerate(iter_rows(edge, text_col="label")):
        where = f"{edge}:{line}"
        if n == 0:
            missing = [c for c in ("id", "label", "deferred") if c not in row]
            if missing:
                hint = " (predict it with --defer auto or --defer P)" if "deferred" in missing else ""
                raise DataError(f"{edge}: missing column(s) {', '.join(missing)}{hint}")
        rid = str(row["id"])
        edge_label = (join_label_set(parse_label_set(row["label"], labels, where=where, allow_empty=True))
                      if multi else str(row["label"]))
        is_deferred = _flag(row["deferred"], where)
        label, source = edge_label, "edge"
        if is_deferred:
            if rid not in llm_labels:
                raise DataError(f"{where}: deferred item '{rid}' has no LLM label in {llm}")
            answer = llm_labels[rid]
            label, source = (answer if multi else renames.get(answer, answer)), "llm"
            mapped += not multi and llm_labels[rid] in renames
            deferred += 1
            changed += label != edge_label
        rows.append({"id": rid, "label": label, "source": source, "edge_label": edge_label,
                     "deferred": is_deferred})
    if not rows:
        raise DataError(f"{edge}: no rows")
    path = Path(out)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if kind == "csv":
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(MERGED_COLUMNS)
            writer.writerows([[r[c] if c != "deferred" else str(r[c]).lower() for c in MERGED_COLUMNS]
                              for r in rows])
        else:
            for r in rows:
                if multi:  # JSONL sets are lists
                    r = {**r, **{c: [x for x in str(r[c]).split(LABEL_SEP) if x]
                                 for c in ("label", "edge_label")}}
                handle.write(json.dumps(r, ensure_ascii=False) + "\n")
    return MergeSummary(rows=len(rows), deferred=deferred, changed=changed, out=path, mapped=mapped)
