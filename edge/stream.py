"""Streaming prediction: read records in chunks, classify, write CSV or JSONL rows in input order, flush.

Memory stays flat on millions of rows (one chunk in flight). With `resume=True` an output file left by a
crashed run is checked, its torn last row cut off, and prediction continues after the last complete row.

A run into a file holds the file's lock (`outputs.OutputLock`: a second run on it fails at once) and first
writes `OUT.run.json` beside it: what decides a row's content (the bundle's checksum, the deferral threshold,
format, text copy, how the input is read). A resume made with anything else is refused, so one file never
mixes two models' or two thresholds' rows.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from llm2edge.checks import at_least, one_of
from llm2edge.defaults import CHUNK_SIZE, PREDICT_BATCH_SIZE
from llm2edge.edge.defer import deferred_mask
from llm2edge.errors import ConfigError, DataError, Interrupted
from llm2edge.labelsets import decide, join_label_set, sets_of
from llm2edge.outputs import OutputLock, distinct_files
from llm2edge.records import Record, chunked, naming

if TYPE_CHECKING:
    from llm2edge.edge.classifier import Classifier

OUTPUT_FORMATS = ("csv", "jsonl")
_SUFFIXES = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
#: Suffix of the file beside a prediction file that says what made its rows (`OUT.run.json`).
RUN_SUFFIX = ".run.json"
#: The run record's keys, as the option a user changes to change them (for the refusal message).
RUN_KEYS = {"bundle": "bundle (checksum)", "labels": "bundle labels", "defer": "--defer threshold",
            "format": "--format", "with_text": "--with-text", "text_col": "--text-col", "id_col": "--id-col",
            "input_format": "--input-format", "multi_label": "a multi-label bundle"}


@dataclass(frozen=True)
class PredictSummary:
    """What a streaming prediction run did."""

    rows: int
    skipped: int
    truncated: int
    empty: int
    seconds: float
    deferred: int = 0  # rows marked deferred (top probability under the --defer threshold)


def output_format(output: str | Path | None, fmt: str | None = None) -> str:
    """The output format from `fmt`, else from the output file's suffix, else jsonl."""
    if fmt:
        one_of("format", fmt, OUTPUT_FORMATS)
        return fmt
    if output is None or str(output) == "-":
        return "jsonl"
    suffix = Path(output).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(f"{output}: cannot tell the output format; use .csv, .jsonl or --format")
    return _SUFFIXES[suffix]


def csv_header(labels: Sequence[str], *, with_text: bool = False, deferred: bool = False) -> list[str]:
    """Columns of a CSV prediction file: id, [text,] label, [deferred,] p_<label>..."""
    return ["id", *(["text"] if with_text else []), "label", *(["deferred"] if deferred else []),
            *(f"p_{name}" for name in labels)]


class PredictionWriter:
    """Writes prediction rows as CSV (id,[text,]label,[deferred,]p_<label>...) or JSONL
    ({id,[text,]label,[deferred,]probs}); with a `threshold`, rows whose top probability is under it are
    marked deferred and (with `deferred_handle`) also written there as an `llm2edge label` input (id,text).

    With the per-label `thresholds` of a multi-label bundle, `label` is the set of labels with p_l >= t_l
    (CSV: joined with `;`, '' for none; JSONL: a list) and `threshold` is the deferral band
    (edge/defer.py)."""

    def __init__(self, handle: IO[str], fmt: str, labels: Sequence[str], *, with_text: bool = False,
                 header: bool = True, digits: int = 6, threshold: float | None = None,
                 deferred_handle: IO[str] | None = None, thresholds: np.ndarray | None = None) -> None:
        self.handle = handle
        self.fmt = fmt
        self.labels = list(labels)
        self.with_text = with_text
        self.digits = digits
        self.threshold = threshold
        self.thresholds = thresholds
        self.deferred = 0
        self.rows = 0  # rows handed to `handle` (each whole: an interrupt falls between rows)
        self._csv = csv.writer(handle, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None and header:
            self._csv.writerow(csv_header(self.labels, with_text=with_text, deferred=threshold is not None))
        self._deferred_csv = csv.writer(deferred_handle, lineterminator="\n") if deferred_handle else None
        self._deferred_handle = deferred_handle
        if self._deferred_csv is not None:
            self._deferred_csv.writerow(["id", "text"])

    def write(self, records: Sequence[Record], proba: np.ndarray) -> None:
        """Write one row per record (argmax label, or the label set, and rounded probabilities) and flush."""
        marks = deferred_mask(proba, self.threshold, self.thresholds)
        flag = [] if self.threshold is None else [None]
        for rec, row, label, deferred in zip(records, proba.tolist(), self._labels(proba), marks.tolist()):
            probs = [round(p, self.digits) for p in row]
            if flag:
                flag[0] = "true" if deferred else "false"
            if self._csv is not None:
                self._csv.writerow([rec.id, *([rec.text] if self.with_text else []), label, *flag, *probs])
            else:
                obj: dict[str, object] = {"id": rec.id}
                if self.with_text:
                    obj["text"] = rec.text
                obj["label"] = label
                if flag:
                    obj["deferred"] = deferred
                obj["probs"] = dict(zip(self.labels, probs))
                self.handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
            self.rows += 1
            if deferred:
                self.deferred += 1
                if self._deferred_csv is not None:
                    self._deferred_csv.writerow([rec.id, rec.text])
        self.handle.flush()
        if self._deferred_handle is not None:
            self._deferred_handle.flush()

    def _labels(self, proba: np.ndarray) -> list[str] | list[list[str]] | list[str | list[str]]:
        """Each row's label: the argmax name; multi-label: the set as a list (JSONL) or joined (CSV)."""
        if not len(proba):
            return []
        if self.thresholds is None:
            return [self.labels[int(i)] for i in proba.argmax(axis=1)]
        sets = sets_of(decide(proba, self.thresholds), self.labels)
        if self._csv is not None:
            return [join_label_set(s) for s in sets]
        return [list(s) for s in sets]


class _CountingLines:
    """Iterate a binary file's lines as text while counting the bytes consumed."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.consumed = 0
        self.last_complete = True

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = self.raw.readline()
        if not line:
            raise StopIteration
        self.consumed += len(line)
        self.last_complete = line.endswith(b"\n")
        return line.decode("utf-8", errors="replace")


def resume_point(path: Path, fmt: str, labels: Sequence[str], *, with_text: bool = False,
                 deferred: bool = False) -> tuple[int, str | None, bool]:
    """Cut a torn last row off an existing prediction file; return (complete rows, last id, has header)."""
    if not path.is_file() or path.stat().st_size == 0:
        return 0, None, False
    rows, last_id, good, has_header = 0, None, 0, False
    with path.open("rb") as raw:
        lines = _CountingLines(raw)
        if fmt == "csv":
            expected = csv_header(labels, with_text=with_text, deferred=deferred)
            reader = csv.reader(lines)
            for n, values in enumerate(reader):
                if not lines.last_complete:
                    break
                if n == 0:
                    if values != expected:
                        raise DataError(f"{path}: existing columns {values} differ from {expected}; "
                                        "use another --output or drop --resume")
                    has_header, good = True, lines.consumed
                    continue
                if len(values) != len(expected):
                    break
                rows, last_id, good = rows + 1, values[0], lines.consumed
        else:
            for line in lines:
                if not lines.last_complete:
                    break
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    break
                if not isinstance(obj, dict) or "id" not in obj:
                    break
                rows, last_id, good = rows + 1, str(obj["id"]), lines.consumed
    if good < path.stat().st_size:
        with path.open("r+b") as raw:
            raw.truncate(good)
    return rows, last_id, has_header


def _skip(records: Iterable[Record], n: int, last_id: str | None, output: Path) -> Iterator[Record]:
    """Skip the first `n` records, checking that the n-th one has the id the output file ends with."""
    it = iter(records)
    seen = None
    for rec in islice(it, n):
        seen = rec
    if n and (seen is None or seen.id != last_id):
        raise DataError(f"{output}: holds {n} rows ending with id '{last_id}', which does not match the "
                        "input; use another --output or drop --resume")
    return it


def predict_records(
    classifier: Classifier,
    records: Iterable[Record],
    handle: IO[str],
    *,
    fmt: str = "jsonl",
    batch_size: int = PREDICT_BATCH_SIZE,
    chunk_size: int = CHUNK_SIZE,
    with_text: bool = False,
    header: bool = True,
    on_chunk: Callable[[int], None] | None = None,
    defer: float | None = None,
    deferred_handle: IO[str] | None = None,
) -> PredictSummary:
    """Classify a stream of records chunk by chunk and write one row each to `handle`, in input order.

    `defer`: a threshold; rows whose top probability is under it are marked deferred (and written to
    `deferred_handle` as id,text when given). Ctrl-C raises Interrupted with the rows written."""
    at_least("chunk_size", chunk_size)
    start = time.perf_counter()
    before = (classifier.counts.truncated, classifier.counts.empty)
    cuts = classifier.info.threshold_array if classifier.info.multi_label else None
    writer = PredictionWriter(handle, fmt, classifier.labels, with_text=with_text, header=header,
                              threshold=defer, deferred_handle=deferred_handle, thresholds=cuts)
    rows = 0
    try:
        for chunk in chunked(records, chunk_size):
            proba = classifier.predict_proba([r.text for r in chunk], batch_size=batch_size)
            writer.write(chunk, proba)
            rows += len(chunk)
            if on_chunk is not None:
                on_chunk(rows)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted: {writer.rows:,} rows written", rows=writer.rows) from None
    return PredictSummary(rows=rows, skipped=0,
                          truncated=classifier.counts.truncated - before[0],
                          empty=classifier.counts.empty - before[1],
                          seconds=time.perf_counter() - start, deferred=writer.deferred)


@contextlib.contextmanager
def _deferred_file(path: str | Path | None) -> Iterator[IO[str] | None]:
    """The open --deferred-out file (or None when not asked for)."""
    if path is None:
        yield None
        return
    target = Path(path)
    if target.parent and not target.parent.is_dir():
        raise DataError(f"{target}: the output folder does not exist")
    with target.open("w", encoding="utf-8", newline="") as handle:
        yield handle


def run_path(output: str | Path) -> Path:
    """The run record beside a prediction file: `OUT.run.json`."""
    p = Path(output)
    return p.with_name(p.name + RUN_SUFFIX)


def run_record(classifier: Classifier, *, fmt: str, with_text: bool, defer: float | None,
               source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What decides the content of a prediction file's rows: the bundle's checksum and labels, the
    deferral threshold, the format, the text copy, and `source` (how the input is read: text column, id
    column, input format); `multi_label: true` for a multi-label bundle (`evaluate` reads it)."""
    kind = {"multi_label": True} if classifier.info.multi_label else {}
    return {"bundle": classifier.info.checksum, "labels": list(classifier.labels), "defer": defer,
            "format": fmt, "with_text": with_text, **kind, **dict(source or {})}


def _write_run(path: Path, record: Mapping[str, Any]) -> None:
    """Write the run record beside `path` (atomically: a crash leaves the old record or the new one)."""
    target = run_path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    with naming(target):
        tmp.write_text(json.dumps(dict(record), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(target)


def check_resume(path: Path, record: Mapping[str, Any]) -> None:
    """ConfigError (one line naming the file and what differs) when the rows of `path` were made with
    another run record than `record`, or when nothing beside it says what made them."""
    recorded = run_path(path)
    try:
        old = json.loads(recorded.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no {recorded.name} beside it says what made its rows, so they cannot be "
                          "continued safely; drop --resume to start over, or use another --output") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ConfigError(f"{recorded}: not a valid run record; drop --resume to start over") from None
    if not isinstance(old, dict):
        raise ConfigError(f"{recorded}: not a valid run record; drop --resume to start over")
    for key, value in record.items():
        if old.get(key) != value:
            what = RUN_KEYS.get(key, key)
            raise ConfigError(f"{path}: its rows were made with {what} {_shown(old.get(key))}, this run has "
                              f"{_shown(value)}; resume with the same bundle and options, or use another "
                              "--output")


def _shown(value: Any) -> str:
    """A run record's value in a message: a checksum cut to 12 digits, anything else as repr."""
    if isinstance(value, str) and len(value) == 64:
        return repr(value[:12] + "...")
    return repr(value)


def predict_to_path(
    classifier: Classifier,
    records: Iterable[Record],
    output: str | Path | None,
    *,
    fmt: str | None = None,
    batch_size: int = PREDICT_BATCH_SIZE,
    chunk_size: int = CHUNK_SIZE,
    with_text: bool = False,
    resume: bool = False,
    on_chunk: Callable[[int], None] | None = None,
    defer: float | None = None,
    deferred_out: str | Path | None = None,
    source: Mapping[str, Any] | None = None,
) -> PredictSummary:
    """Classify records into a file (or stdout for None / '-'); `resume` continues a crashed run.

    `defer` (a threshold) marks rows whose top probability is under it deferred; `deferred_out` also
    writes those rows as id,text CSV, the input of `llm2edge label` (not together with `resume`). A file
    output is locked for the run (BusyError for a second run on it) and gets `OUT.run.json` (`run_record`
    with `source`, how the input is read) before its first row; `resume` refuses rows made otherwise
    (`check_resume`). Ctrl-C raises Interrupted saying how many rows the file holds."""
    kind = output_format(output, fmt)
    if deferred_out is not None and (defer is None or resume):
        raise ConfigError("--deferred-out needs a --defer threshold and cannot be combined with --resume")
    distinct_files({"--output": output, "--deferred-out": deferred_out})
    if output is None or str(output) == "-":
        try:
            with naming("<stdout>"), _deferred_file(deferred_out) as deferred_handle:
                return predict_records(classifier, records, sys.stdout, fmt=kind, batch_size=batch_size,
                                       chunk_size=chunk_size, with_text=with_text, on_chunk=on_chunk,
                                       defer=defer, deferred_handle=deferred_handle)
        except Interrupted as exc:
            raise Interrupted(f"{exc} to standard output", rows=exc.rows) from None
    path = Path(output)
    if path.parent and not path.parent.is_dir():
        raise DataError(f"{path}: the output folder does not exist")
    with OutputLock(path, what="predict", option="--output"):
        return _predict_into(classifier, records, path, kind=kind, batch_size=batch_size,
                             chunk_size=chunk_size, with_text=with_text, resume=resume, on_chunk=on_chunk,
                             defer=defer, deferred_out=deferred_out,
                             record=run_record(classifier, fmt=kind, with_text=with_text, defer=defer,
                                               source=source))


def _predict_into(classifier: Classifier, records: Iterable[Record], path: Path, *, kind: str,
                  batch_size: int, chunk_size: int, with_text: bool, resume: bool,
                  on_chunk: Callable[[int], None] | None, defer: float | None,
                  deferred_out: str | Path | None, record: Mapping[str, Any]) -> PredictSummary:
    """predict_to_path into a file, under its lock: check or write the run record, then the rows."""
    skipped, has_header, mode = 0, False, "w"
    if resume and path.exists() and path.stat().st_size > 0:
        check_resume(path, record)
        skipped, last_id, has_header = resume_point(path, kind, classifier.labels, with_text=with_text,
                                                    deferred=defer is not None)
        records = _skip(records, skipped, last_id, path)
        mode = "a"
    else:
        _write_run(path, record)
    done = (lambda n: on_chunk(n + skipped)) if on_chunk is not None else None
    again = "; rerun with --resume to continue"
    try:
        with (naming(path), path.open(mode, encoding="utf-8", newline="") as handle,
              _deferred_file(deferred_out) as deferred_handle):
            summary = predict_records(classifier, records, handle, fmt=kind, batch_size=batch_size,
                                      chunk_size=chunk_size, with_text=with_text, header=not has_header,
                                      on_chunk=done, defer=defer, deferred_handle=deferred_handle)
    except Interrupted as exc:
        rows = skipped + (exc.rows or 0)
        raise Interrupted(f"interrupted: {rows:,} rows written to {path}{again}", rows=rows) from None
    except KeyboardInterrupt:  # before the first row (reading the first chunk, opening the files)
        raise Interrupted(f"interrupted: {skipped:,} rows written to {path}{again}", rows=skipped) from None
    return PredictSummary(rows=summary.rows, skipped=skipped, truncated=summary.truncated,
                          empty=summary.empty, seconds=summary.seconds, deferred=summary.deferred)
