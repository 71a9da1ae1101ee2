"""`llm2edge import-labels`: labels an LLM produced elsewhere (a batch job, a notebook, a spreadsheet) as a
labels.jsonl that every later stage (curate, sample-experts, merge-experts, soft-labels, train) accepts.

A bare answer becomes a one-hot distribution (`prob_source: answer`); probability columns `<prefix><label>`
(one per label) become `probs` (`prob_source: given`), checked: finite, non-negative, summing to 1 within
PROB_TOLERANCE (then renormalised exactly). A label is matched to the label set exactly, else
case-insensitively, else through `--map`; an unknown label is a DataError naming file, line and value.
Rows with an empty label (and no probabilities) are skipped and counted; a row whose probability cells are
empty or partly empty is an error, and rows whose label is not the top of their own probabilities are
counted in a warning. Ids are kept (`id_col`, else an `id` column when the file has one, as `predict` reads
it) or derived as `label` derives them (`records.stable_id` of the row number and text), so
`merge-experts --simulate-from` and `evaluate` join. The run holds the lock of `out` (a second import into
it fails at once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.checks import parse_map
from llm2edge.console import warn
from llm2edge.defaults import LABEL_COL, LABEL_SEP, TEXT_COL
from llm2edge.errors import ConfigError, DataError
from llm2edge.hashing import digest
from llm2edge.hub.label.import_sets import import_set, prob_cells, set_probs
from llm2edge.hub.label.multilabel import decide_set
from llm2edge.hub.label.store import ROW_KEYS, margins, write_atomic
from llm2edge.hub.label.task_choice import LABELS_TASK, TaskChoice, parse_labels
from llm2edge.labelsets import check_single, set_confidence
from llm2edge.outputs import OutputLock, distinct_files
from llm2edge.params import check_fields, param
from llm2edge.records import cell, default_id_col, iter_rows, naming, stable_id

#: How far the probabilities of a row may sum from 1 before the row is an error (then renormalised).
PROB_TOLERANCE = 1e-3
#: The `backend` of imported rows (they were not produced by an llm2edge backend).
IMPORT_BACKEND = "import"
#: The `model` of imported rows when no model name is given.
IMPORTED_MODEL = "imported"
#: prob_source of a row whose only evidence is the answer (one-hot probs).
ANSWER = "answer"
#: prob_source of a row whose probabilities came from the file.
GIVEN = "given"
#: How a label was matched to the label set, in the order they are tried.
MATCHES = ("exact", "case", "map")


@dataclass(kw_only=True)
class ImportConfig(TaskChoice):
    """Everything `import-labels` needs (checked when built). Exactly one of `task` and `labels`."""

    data: Path | str = param(help="File with the LLM's labels: CSV, JSONL or Parquet.")
    #: Replaced atomically.
    out: Path | str = param(help="labels.jsonl to write (what curate, sample-experts and train read).")
    label_sep: str = param(LABEL_SEP, help="Separator of the names in a multi-label cell.")
    #: May be absent when probability columns are given.
    label_col: str = param(LABEL_COL, help="Column with the LLM's label.")
    text_col: str = param(TEXT_COL, help="Column with the text.")
    #: Kept as they are.
    id_col: str | None = param(None, help="Column with unique ids (default: 'id' if the file has one, else "
                                          "row number + text hash, as `label` derives them).")
    #: None: no probabilities.
    prob_prefix: str | None = param(None, help="Prefix of probability columns, one per label (p_ reads "
                                               "p_<label>); they must sum to 1.")
    map: str | None = param(None, help="Rename answers: 'A=Liberal,B=Conservative' (after exact and "
                                       "case-insensitive matching).")
    #: The rows' `model`; None: "imported".
    model_name: str | None = param(None, help="The LLM that made the labels (recorded in every row).")
    #: Besides the task's (e.g. a recorded file's `target`); each must be in the file and non-empty on
    #: every row, as the task's fields.
    fields: tuple[str, ...] = param((), cli=False, help="More per-item columns to carry as the rows' fields.")

    def __post_init__(self) -> None:
        """ConfigError on arguments that cannot work, before the data file is opened."""
        check_fields(self)
        self.check_task_choice()
        if not self.label_sep.strip() or self.label_sep.strip() == ",":
            raise ConfigError(f"--label-sep must be a separator other than ',' and blanks, got "
                              f"{self.label_sep!r}")
        if self.prob_prefix is not None and not self.prob_prefix.strip():
            raise ConfigError("--prob-prefix must not be empty (e.g. p_ for columns p_<label>)")
        for name in ("label_col", "text_col"):
            if not str(getattr(self, name)).strip():
                raise ConfigError(f"{name} must not be empty")
        out = Path(self.out)
        if out.suffix.lower() not in (".jsonl", ".ndjson"):
            raise ConfigError(f"{out}: the labels file must end in .jsonl")
        distinct_files({"--data": self.data, "--out": out})


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote: rows, skipped empty labels, how labels were matched, the distribution."""

    out: Path
    rows: int
    skipped_empty: int
    prob_source: str  # "answer" or "given"
    matched: dict[str, int]  # exact / case / map -> rows
    renamed: dict[str, int] = field(default_factory=dict)  # "answer -> label" -> rows (case or map)
    distribution: dict[str, int] = field(default_factory=dict)
    #: Rows whose label is not the top of their own given probabilities (kept as given).
    not_argmax: int = 0

    def text(self) -> str:
        """The summary lines: rows written, then one line of how labels were matched (what was mapped)."""
        dist = ", ".join(f"{k} {v}" for k, v in sorted(self.distribution.items(), key=lambda kv: -kv[1]))
        renamed = ", ".join(f"{k} ({v})" for k, v in sorted(self.renamed.items(), key=lambda kv: -kv[1]))
        lines = [f"imported {self.rows} rows ({self.prob_source} probabilities), skipped "
                 f"{self.skipped_empty} with an empty label -> {self.out}",
                 f"labels matched: {self.matched.get('exact', 0)} exactly, {self.matched.get('case', 0)} "
                 f"ignoring case, {self.matched.get('map', 0)} through --map"
                 + (f": {renamed}" if renamed else ""),
                 f"labels: {dist or 'none'}"]
        if self.not_argmax:
            lines.append(f"{self.not_argmax} row(s) have a label that is not the top of their own "
                         "probabilities (both kept as given)")
        return "\n".join(lines)


class _Matcher:
    """Matches raw answers to the label set: exactly, then ignoring case, then through the map."""

    def __init__(self, labels: Sequence[str], mapping: Mapping[str, str]) -> None:
        self.labels = tuple(labels)
        self.exact = set(labels)
        folded = Counter(x.casefold() for x in labels)
        self.case = {x.casefold(): x for x in labels if folded[x.casefold()] == 1}
        self.mapping = dict(mapping)
        mfold = Counter(k.casefold() for k in mapping)
        self.map_case = {k.casefold(): v for k, v in mapping.items() if mfold[k.casefold()] == 1}

    def match(self, raw: str) -> tuple[str, str] | None:
        """(label, how) for an answer, or None when nothing matches."""
        if raw in self.exact:
            return raw, "exact"
        if raw.casefold() in self.case:
            return self.case[raw.casefold()], "case"
        if raw in self.mapping:
            return self.mapping[raw], "map"
        if raw.casefold() in self.map_case:
            return self.map_case[raw.casefold()], "map"
        return None


def _label_set(config: ImportConfig) -> tuple[str, tuple[str, ...], tuple[str, ...], bool, bool]:
    """(task name, labels, per-item fields, multi-label, allow none) from the task or from --labels."""
    if config.task is not None:
        task = config.load_task()
        return task.name, task.label_names, task.fields, task.multi_label, task.allow_none
    return LABELS_TASK, parse_labels(str(config.labels)), (), config.multi_label, False


def _prob_columns(header: Sequence[str], prefix: str, labels: Sequence[str], path: str) -> dict[str, str]:
    """label -> its probability column; DataError when one is missing or a prefixed column names no label."""
    cols = {label: f"{prefix}{label}" for label in labels}
    missing = [c for c in cols.values() if c not in header]
    if missing:
        raise DataError(f"{path}: missing probability column(s) {', '.join(missing)} (one {prefix}<label> "
                        f"column per label; columns: {', '.join(header)})")
    extra = [c for c in header if c.startswith(prefix) and c not in cols.values()]
    if extra:
        raise DataError(f"{path}: probability column '{extra[0]}' names no label "
                        f"(labels: {', '.join(labels)})")
    return cols


def _probs(row: Mapping[str, Any], cols: Mapping[str, str], where: str) -> dict[str, float] | None:
    """The checked, renormalised distribution of a row; None when every probability cell is empty (a row
    with some cells empty is a DataError naming the first)."""
    probs = prob_cells(row, cols, where)
    if probs is None:
        return None
    total = sum(probs.values())
    if abs(total - 1.0) > PROB_TOLERANCE:
        raise DataError(f"{where}: the probabilities sum to {total:.6g}, not 1 (tolerance {PROB_TOLERANCE}); "
                        f"columns {', '.join(cols.values())}")
    return {label: p / total for label, p in probs.items()}


def _cell(row: Mapping[str, Any], col: str, where: str) -> str:
    """A cell as stripped text ('' when absent or null); anything but a string or an integer is a DataError
    (`records.cell`, the check every reader makes)."""
    return (cell(row, col, where) or "").strip()


def import_labels(config: ImportConfig) -> ImportSummary:
    """Convert `config.data` into the labels.jsonl `config.out` (see the module doc); returns the summary.

    Holds the lock of `config.out` for the run (BusyError when another import or label run writes it)."""
    with OutputLock(config.out, what="import-labels", option="--out"):
        return _import(config)


def _import(config: ImportConfig) -> ImportSummary:
    """The run of import_labels (under its lock)."""
    task_name, labels, task_fields, multi, allow_none = _label_set(config)
    task_fields = (*task_fields, *(f for f in config.fields if f not in task_fields))
    matcher = _Matcher(labels, parse_map(config.map, labels))
    model = config.model_name or IMPORTED_MODEL
    path = str(config.data)
    id_col = config.id_col
    if id_col is None and Path(path).is_file():
        id_col = default_id_col(path, text_col=config.text_col)
    rows: list[dict[str, Any]] = []
    matched: Counter[str] = Counter()
    renamed: Counter[str] = Counter()
    seen_ids: dict[str, int] = {}
    skipped = 0
    not_argmax: list[str] = []
    cols: dict[str, str] | None = None
    has_label = True
    for n, (line, row) in enumerate(iter_rows(path, text_col=config.text_col)):
        where = f"{path}:{line}"
        if n == 0:
            header = [str(c) for c in row]
            has_label = config.label_col in header
            need = [config.text_col, *task_fields, *([id_col] if id_col else [])]
            if config.prob_prefix is None:
                need.append(config.label_col)
            missing = [c for c in need if c not in header]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} "
                                f"(columns: {', '.join(header)})")
            if config.prob_prefix is not None:
                cols = _prob_columns(header, config.prob_prefix, labels, path)
        text = cell(row, config.text_col, where, text=True)
        if text is None or not text.strip():
            raise DataError(f"{where}: empty text in column '{config.text_col}'")
        rid = stable_id(n, text)  # as `label`, `evaluate` and `merge-experts --simulate-from` derive it
        if id_col:
            rid = _cell(row, id_col, where)
            if not rid:
                raise DataError(f"{where}: blank id in column '{id_col}'")
            if rid in seen_ids:
                raise DataError(f"{where}: id '{rid}' already used on line {seen_ids[rid]}: ids must be "
                                "unique")
            seen_ids[rid] = line
        if multi:  # a set per row (import_sets)
            rows.append(_set_row(config, row, where, rid, text, matcher, labels, cols, task_fields, has_label,
                                 allow_none, task=task_name, model=model, matched=matched, renamed=renamed))
            continue
        value = row.get(config.label_col) if has_label else None
        if isinstance(value, list):
            raise DataError(f"{where}: label {value!r} in column '{config.label_col}' is a list of labels, "
                            "but the task is single-label (declare multi_label = true or pass --multi-label)")
        raw = _cell(row, config.label_col, where) if has_label else ""
        if raw:
            check_single(raw, labels, where=f"{where}: column '{config.label_col}'", sep=config.label_sep)
        probs = _probs(row, cols, where) if cols is not None else None
        if not raw and probs is None:
            skipped += 1
            continue
        if cols is not None and probs is None:
            raise DataError(f"{where}: the probability columns ({', '.join(cols.values())}) are empty: give "
                            "the row's probabilities, or import without --prob-prefix")
        if raw:
            hit = matcher.match(raw)
            if hit is None:
                hint = f"; map it with --map '{raw}=LABEL'" if not matcher.mapping else ""
                raise DataError(f"{where}: label '{raw}' in column '{config.label_col}' is not one of the "
                                f"labels {', '.join(labels)}{hint}")
            label, how = hit
            matched[how] += 1
            if how != "exact":
                renamed[f"{raw} -> {label}"] += 1
            if probs is not None and probs[label] < max(probs.values()):
                not_argmax.append(where)
        else:
            label = max(labels, key=lambda x: probs[x])  # type: ignore[index]  # no answer: the top label
        fields = {}
        for f in task_fields:
            value = _cell(row, f, where)
            if not value:
                raise DataError(f"{where}: empty field '{f}'")
            fields[f] = value
        rows.append(_row(rid, text, label, raw, probs, labels, fields, task=task_name, model=model))
    if not rows:
        raise DataError(f"{path}: no labeled rows ({skipped} rows with an empty label)")
    if not_argmax:
        warn(f"{len(not_argmax)} row(s) have a label that is not the top of their own probabilities (first: "
             f"{not_argmax[0]}); both are kept as given: check the label and probability columns match")
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with naming(out):
        write_atomic(out, rows)
    return ImportSummary(out=out, rows=len(rows), skipped_empty=skipped,
                         prob_source=GIVEN if cols is not None else ANSWER,
                         matched={m: matched.get(m, 0) for m in MATCHES}, renamed=dict(renamed),
                         distribution=dict(Counter(lab for r in rows for lab in (
                             r["label"] if multi else [r["label"]]))), not_argmax=len(not_argmax))


def _set_row(config: ImportConfig, row: Mapping[str, Any], where: str, rid: str, text: str, matcher: _Matcher,
             labels: Sequence[str], cols: dict[str, str] | None, task_fields: Sequence[str], has_label: bool,
             allow_none: bool, *, task: str, model: str, matched: Counter[str], renamed: Counter[str]
             ) -> dict[str, Any]:
    """One multi-label row: its answer set (matched name by name), or the labels its probability columns
    put at or over LABEL_THRESHOLD (`multilabel.decide_set`)."""
    probs = set_probs(row, cols, where) if cols is not None else None
    value = row.get(config.label_col) if has_label else None
    given = not (value is None or (isinstance(value, (str, list)) and not value))
    if given or probs is None:
        chosen, hows = import_set(value, matcher, sep=config.label_sep, allow_none=allow_none,
                                  where=f"{where}: column '{config.label_col}'")
        for raw_name, how in hows:
            matched[how] += 1
            if how != "exact":
                renamed[f"{raw_name} -> {matcher.match(raw_name)[0]}"] += 1  # type: ignore[index]
        label = list(chosen)
    else:
        label = decide_set(probs, labels, allow_none=allow_none)
    fields = {}
    for f in task_fields:
        fields[f] = _cell(row, f, where)
        if not fields[f]:
            raise DataError(f"{where}: empty field '{f}'")
    raw = config.label_sep.join(map(str, value)) if isinstance(value, list) else str(value or "")
    return _row(rid, text, label, raw, probs, labels, fields, task=task, model=model)


def _row(rid: str, text: str, label: str | list[str], raw: str, probs: dict[str, float] | None,
         labels: Sequence[str], fields: dict[str, str], *, task: str, model: str) -> dict[str, Any]:
    """One labels.jsonl row (store.ROW_KEYS) for an imported item (a multi-label item's label a list)."""
    source = GIVEN if probs is not None else ANSWER
    dist = probs if probs is not None else {x: float(x in label if isinstance(label, list) else x == label)
                                            for x in labels}
    confidence = margin = None
    if probs is not None and isinstance(label, list):  # each label's own probability
        confidence = float(set_confidence([[probs[x] for x in labels]])[0])
    elif probs is not None:  # a bare answer says nothing about confidence: leave it unknown
        _, confidence, margin = margins(probs)
    key = digest([IMPORT_BACKEND, model, task, rid, text, sorted(fields.items())], length=24,
                 ensure_ascii=False)
    row = {"id": rid, "key": key, "text": text, "label": label, "probs": dist, "confidence": confidence,
           "margin_logprob": margin, "prob_source": source, "backend": IMPORT_BACKEND, "model": model,
           "task": task, "prompt_hash": None, "raw": raw or None, "error": None, "source": "llm",
           "fields": fields}
    return {k: row[k] for k in ROW_KEYS}
