"""Read data files (CSV, JSONL, Parquet, plain text) as a stream of records, with errors naming file and line.

Standard library only (Parquet needs pyarrow, imported when a Parquet file is read), so the edge can use it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO

from llm2edge.defaults import TEXT_COL
from llm2edge.errors import DataError

FORMATS = ("csv", "jsonl", "parquet", "txt")

# Very long CSV fields (whole articles) are legal input.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Record:
    """One input item: its id, text, optional label and extra per-item fields, and where it came from."""

    id: str
    text: str
    label: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0


def stable_id(row: int, text: str) -> str:
    """A stable id for a row without one: row number plus a short hash of the text."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    return f"r{row}-{digest}"


def detect_format(path: str | Path, fmt: str | None = None) -> str:
    """The format of `path` from `fmt` or its suffix (csv, jsonl, parquet, txt); '-' defaults to txt."""
    if fmt:
        if fmt not in FORMATS:
            raise DataError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")
        return fmt
    name = str(path).lower()
    if name == "-":
        return "txt"
    for suffix, kind in ((".csv", "csv"), (".tsv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"),
                         (".json", "jsonl"), (".parquet", "parquet"), (".pq", "parquet"), (".txt", "txt")):
        if name.endswith(suffix):
            return kind
    raise DataError(f"{path}: cannot tell the format from the name; use .csv, .jsonl, .parquet or .txt")


def _decoded_lines(raw: IO[bytes], label: str) -> Iterator[str]:
    """Decode a binary stream line by line as UTF-8 (BOM tolerated), naming the line that is not UTF-8."""
    for lineno, line in enumerate(raw, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{label}:{lineno}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
        if lineno == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield text


def _open_binary(path: str | Path) -> IO[bytes]:
    """Open `path` for binary reading ('-' is standard input), with a clear error if it is missing."""
    if str(path) == "-":
        return sys.stdin.buffer
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    return p.open("rb")


def _rows_csv(raw: IO[bytes], label: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, row dict) from a CSV stream; the delimiter is a tab for .tsv files."""
    delimiter = "\t" if label.lower().endswith(".tsv") else ","
    reader = csv.reader(_decoded_lines(raw, label), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise DataError(f"{label}: the file is empty (no header row)") from None
    header = [h.strip() for h in header]
    line = reader.line_num
    for values in reader:
        start, line = line + 1, reader.line_num
        if not values:
            continue
        if len(values) != len(header):
            raise DataError(f"{label}:{start}: expected {len(header)} fields, found {len(values)}")
        yield start, dict(zip(header, values))


def _rows_jsonl(raw: IO[bytes], label: str) -> Iterator[tuple[int, dict[str, object]]]:
    """Yield (line, object) from a JSON-lines stream."""
    for lineno, line in enumerate(_decoded_lines(raw, label), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{label}:{lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{label}:{lineno}: expected a JSON object per line")
        yield lineno, obj


def _rows_txt(raw: IO[bytes], label: str, text_col: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, {text_col: line}) from a plain-text stream, one text per line."""
    for lineno, line in enumerate(_decoded_lines(raw, label), start=1):
        yield lineno, {text_col: line.rstrip("\r\n")}


def _rows_parquet(path: str | Path, label: str) -> Iterator[tuple[int, dict[str, object]]]:
    """Yield (row, dict) from a Parquet file in record batches (needs pyarrow)."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{label}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        pf = pq.ParquetFile(str(path))
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise DataError(f"{label}: not a readable Parquet file ({exc})") from None
    row = 0
    for batch in pf.iter_batches(batch_size=4096):
        for obj in batch.to_pylist():
            row += 1
            yield row, obj


def iter_rows(path: str | Path, *, fmt: str | None = None, text_col: str = TEXT_COL
              ) -> Iterator[tuple[int, dict[str, object]]]:
    """Yield (line or row number, raw row dict) from a data file, streaming."""
    kind = detect_format(path, fmt)
    label = "<stdin>" if str(path) == "-" else str(path)
    if kind == "parquet":
        if str(path) == "-":
            raise DataError("Parquet cannot be read from standard input")
        yield from _rows_parquet(path, label)
        return
    raw = _open_binary(path)
    try:
        if kind == "csv":
            yield from _rows_csv(raw, label)
        elif kind == "jsonl":
            yield from _rows_jsonl(raw, label)
        else:
            yield from _rows_txt(raw, label, text_col)
    finally:
        if raw is not sys.stdin.buffer:
            raw.close()


def _cell(row: dict[str, object], col: str) -> str | None:
    """A cell as a string (None if absent); numbers become their text."""
    value = row.get(col)
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def iter_records(
    path: str | Path,
    *,
    text_col: str = TEXT_COL,
    label_col: str | None = None,
    id_col: str | None = None,
    fields: Sequence[str] = (),
    fmt: str | None = None,
    require_label: bool = False,
    allow_empty: bool = False,
) -> Iterator[Record]:
    """Stream Records from a data file; a missing or empty text, label or field is a DataError."""
    label = "<stdin>" if str(path) == "-" else str(path)
    checked = False
    for n, (line, row) in enumerate(iter_rows(path, fmt=fmt, text_col=text_col)):
        if not checked:
            wanted = [text_col, *fields]
            if require_label and label_col:
                wanted.append(label_col)
            if id_col:
                wanted.append(id_col)
            missing = [c for c in wanted if c not in row]
            if missing:
                have = ", ".join(map(str, row)) or "none"
                raise DataError(f"{label}: missing column(s) {', '.join(missing)} (columns: {have})")
            checked = True
        text = _cell(row, text_col)
        if text is None or (not allow_empty and not text.strip()):
            raise DataError(f"{label}:{line}: empty text in column '{text_col}'")
        gold = _cell(row, label_col) if label_col else None
        if require_label and not (gold or "").strip():
            raise DataError(f"{label}:{line}: empty label in column '{label_col}'")
        extra = {}
        for col in fields:
            value = _cell(row, col)
            if value is None or not value.strip():
                raise DataError(f"{label}:{line}: empty field '{col}'")
            extra[col] = value
        rid = _cell(row, id_col) if id_col else None
        yield Record(id=rid or stable_id(n, text), text=text, label=gold.strip() if gold else None,
                     fields=extra, line=line)


def read_records(path: str | Path, **kwargs: object) -> list[Record]:
    """All Records of a data file (see iter_records); an empty file is a DataError."""
    records = list(iter_records(path, **kwargs))  # type: ignore[arg-type]
    if not records:
        raise DataError(f"{path}: no rows")
    return records


def chunked(items: Iterable[Record], size: int) -> Iterator[list[Record]]:
    """Split a stream into lists of at most `size` items."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def write_jsonl_line(handle: IO[str], obj: dict[str, object]) -> None:
    """Write one JSON object as a line and flush, so a crash loses at most that line."""
    handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
    handle.flush()


def read_jsonl(path: str | Path) -> list[dict[str, object]]:
    """All objects of a JSONL file; a torn last line (a crash) is skipped, other bad lines are errors."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    rows: list[dict[str, object]] = []
    lines = p.read_bytes().split(b"\n")
    for lineno, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rows.append(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, json.JSONDecodeError):
            if lineno == len(lines):  # last line without newline: torn write, ignore
                break
            raise DataError(f"{p}:{lineno}: not a valid JSON line") from None
    return rows

