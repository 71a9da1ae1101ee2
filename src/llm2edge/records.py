"""Read data files (CSV, JSONL, Parquet, plain text) as a stream of records, with errors naming file and line.

Standard library only (Parquet needs pyarrow, imported when a Parquet file is read), so the edge can use it.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

from llm2edge.defaults import ID_COL, TEXT_COL
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


#: Suffixes of the data files a folder's listing picks up (a single file or a glob may name any format).
DATA_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".jsonl", ".ndjson", ".json")
_GLOB_CHARS = frozenset("*?[")


def names_many(spec: str | None) -> bool:
    """True when `spec` names a folder or a glob pattern (folder mode), not a single file or stdin."""
    return spec is not None and spec != "-" and (Path(spec).is_dir() or bool(_GLOB_CHARS & set(spec)))


def _hidden(path: Path, root: Path) -> bool:
    """True for files a data folder holds beside its data: names starting with '.' or '_' (_SUCCESS,
    _temporary/, .crc) anywhere below `root`."""
    return any(part.startswith((".", "_")) for part in path.relative_to(root).parts)


def input_files(spec: str) -> list[Path]:
    """The data files `spec` names, sorted: a folder's data files (recursively, hidden ones skipped), a
    glob's matching files, or one file. DataError when there are none."""
    import glob

    root = Path(spec)
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in DATA_SUFFIXES
                       and not _hidden(p, root))
        if not files:
            raise DataError(f"{spec}: no data files ({', '.join(DATA_SUFFIXES)}) in this folder")
        return files
    if _GLOB_CHARS & set(spec):
        files = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not files:
            raise DataError(f"{spec}: the pattern matches no file")
        return files
    if not root.is_file():
        raise DataError(f"{spec}: no such file or folder")
    return [root]


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


def _universal_lines(raw: IO[bytes]) -> Iterator[bytes]:
    """The lines of a binary stream, ending at \\n, \\r\\n or a lone \\r (old Mac files), each kept whole."""
    for chunk in raw:  # split at \n; a \r\n stays inside one chunk
        end = len(chunk) - 2 if chunk.endswith(b"\r\n") else len(chunk)
        if chunk.find(b"\r", 0, end) >= 0:
            yield from chunk.splitlines(keepends=True)
        else:
            yield chunk


def _decoded_lines(raw: IO[bytes], label: str) -> Iterator[str]:
    """Decode a binary stream line by line (universal newlines) as UTF-8 (BOM tolerated), naming the line
    that is not UTF-8."""
    for lineno, line in enumerate(_universal_lines(raw), start=1):
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
        if sys.stdin is None:  # started with stdin closed (`<&-`)
            raise DataError("standard input is closed: give an input file instead of '-'")
        return sys.stdin.buffer
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    return p.open("rb")


def _rows_csv(raw: IO[bytes], label: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield (line, row dict) from a CSV stream; the delimiter is a tab for .tsv files.

    Strict RFC 4180: a quote that is never closed (which would swallow every later row into one field) or
    text after a closing quote is a DataError naming the line where the row starts; so is a header that
    names a column twice.
    """
    delimiter = "\t" if label.lower().endswith(".tsv") else ","
    reader = csv.reader(_decoded_lines(raw, label), delimiter=delimiter, strict=True)
    rows = _strict_csv_rows(reader, label)
    try:
        _, header = next(rows)
    except StopIteration:
        raise DataError(f"{label}: the file is empty (no header row)") from None
    header = [h.strip() for h in header]
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{label}:1: the header names column '{name}' twice")
        seen.add(name)
    for start, values in rows:
        if not values:
            continue
        if len(values) != len(header):
            raise DataError(f"{label}:{start}: expected {len(header)} fields, found {len(values)}")
        yield start, dict(zip(header, values))


def _strict_csv_rows(reader: Any, label: str) -> Iterator[tuple[int, list[str]]]:
    """(start line, values) per row of a strict csv.reader, a malformed row as a DataError naming its line."""
    line = 0
    while True:
        start = line + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "end of data" in str(exc):
                raise DataError(f"{label}:{start}: a quoted field opened in this row is never closed "
                                "(the rest of the file would be read as one field)") from None
            raise DataError(f"{label}:{start}: malformed CSV ({exc})") from None
        line = reader.line_num
        yield start, values


def _rows_jsonl(raw: IO[bytes], label: str) -> Iterator[tuple[int, dict[str, object]]]:
    """Yield (line, object) from a JSON-lines stream."""
    for lineno, line in enumerate(_decoded_lines(raw, label), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            raise DataError(f"{label}:{lineno}: not valid JSON ({exc.msg})") from None
        except _DuplicateKey as exc:
            raise DataError(f"{label}:{lineno}: the object names key '{exc.args[0]}' twice") from None
        if not isinstance(obj, dict):
            raise DataError(f"{label}:{lineno}: expected a JSON object per line")
        yield lineno, obj


class _DuplicateKey(Exception):
    """A JSON object names a key twice (json.loads would silently keep the last value)."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """object_pairs_hook for json.loads: a dict, or _DuplicateKey when a key repeats."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


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
    names = pf.schema_arrow.names
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{label}: the file has two columns named '{twice[0]}'")
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


def default_id_col(path: str | Path, *, fmt: str | None = None, text_col: str = TEXT_COL) -> str | None:
    """ID_COL ('id') when a real (non-stdin, non-txt) input file has that column, so predictions join with
    gold files; else None, and each row gets `stable_id` (row number + text hash)."""
    if str(path) == "-" or detect_format(path, fmt) == "txt":
        return None
    for _, row in iter_rows(path, fmt=fmt, text_col=text_col):
        return ID_COL if ID_COL in row else None
    return None


def _kind(value: object) -> str:
    """What a JSON or Parquet value is, for an error message."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (bytes, bytearray)):
        return "bytes (binary)"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def cell(row: Mapping[str, object], col: str, where: str, *, text: bool = False) -> str | None:
    """A cell as a string (None if absent or null). A text cell must be a string; an id, label or field
    may also be an integer (its digits). Anything else (a float, bool, list, object, bytes) would be
    turned into some string silently, so it is a DataError naming `where` (file:line) and the column."""
    value = row.get(col)
    if value is None or isinstance(value, str):
        return value
    if not text and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    wanted = "a string" if text else "a string or an integer"
    raise DataError(f"{where}: column '{col}' holds {_kind(value)}, not {wanted}")


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
        where = f"{label}:{line}"
        text = cell(row, text_col, where, text=True)
        if text is None or (not allow_empty and not text.strip()):
            raise DataError(f"{where}: empty text in column '{text_col}'")
        gold = cell(row, label_col, where) if label_col else None
        if require_label and not (gold or "").strip():
            raise DataError(f"{label}:{line}: empty label in column '{label_col}'")
        extra = {}
        for col in fields:
            value = cell(row, col, where)
            if value is None or not value.strip():
                raise DataError(f"{where}: empty field '{col}'")
            extra[col] = value
        rid = stable_id(n, text)
        if id_col:  # one rule everywhere: a given id is kept exactly; a blank one is an error, never replaced
            given = cell(row, id_col, where)
            if given is None or not given.strip():
                raise DataError(f"{where}: blank id in column '{id_col}' (every row of an id column needs "
                                "an id)")
            rid = given
        yield Record(id=rid, text=text, label=gold.strip() if gold else None, fields=extra, line=line)


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


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Give an OSError raised inside that names no file (a full disk fails a write, not an open) the name
    `path`, so the CLI's one-line message says which file it was."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


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

