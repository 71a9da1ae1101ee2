"""The labels file: append-only, resumable JSONL, one row per item, keyed by what produced the label.

Rows are appended and flushed as items finish. A rerun skips keys that have a row without `error`; readers
take the LAST row per key. At the end of a run the file is compacted atomically to one row per input item,
in input order. A torn last line (kill -9 during a write) is repaired before appending.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from llm2edge.errors import DataError
from llm2edge.hashing import digest
from llm2edge.labelsets import join_label_set

#: The columns of a labels row, in order.
ROW_KEYS = ("id", "key", "text", "label", "probs", "confidence", "margin_logprob", "prob_source", "backend",
            "model", "task", "prompt_hash", "raw", "error", "source", "fields")


def item_key(text: str, fields: Mapping[str, str], *, task: str, prompt_hash: str, model: str, backend: str,
             shots: int = 0, cot: bool = False, calibrate: bool = False,
             sampling: tuple[int, float, int] | None = None) -> str:
    """A hash of everything that determines an item's label (24 hex digits); `sampling`: (samples,
    temperature, seed) of self-consistency votes, hashed only when samples > 1 (single-answer keys stay
    what they were)."""
    parts = [text, sorted(fields.items()), task, prompt_hash, model, backend, shots, cot, calibrate]
    if sampling is not None and sampling[0] > 1:
        parts.append(list(sampling))
    return digest(parts, length=24, ensure_ascii=False)


def margins(probs: Mapping[str, float], logprobs: Mapping[str, float] | None = None
            ) -> tuple[str, float, float | None]:
    """(top label, top-1 minus top-2 probability, top-1 minus top-2 log-probability or None if infinite)."""
    ranked = sorted(probs, key=lambda n: probs[n], reverse=True)
    top = ranked[0]
    second = ranked[1] if len(ranked) > 1 else None
    conf = probs[top] - (probs[second] if second else 0.0)
    if second is None:
        return top, conf, None
    if logprobs is not None and math.isfinite(logprobs[top]) and math.isfinite(logprobs[second]):
        return top, conf, logprobs[top] - logprobs[second]
    if probs[second] > 0:
        return top, conf, math.log(probs[top]) - math.log(probs[second])
    return top, conf, None


def _tail_state(path: Path) -> int | None:
    """The byte length to keep if the file ends in a torn line (None if it ends cleanly)."""
    size = path.stat().st_size
    if size == 0:
        return None
    with path.open("rb") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return None
        pos, block = size, 1 << 16
        while pos > 0:  # find the last newline
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            pos = start
        return 0


def repair(path: str | Path) -> bool:
    """Make `path` end with a newline: complete a whole last row, or drop a torn one. True if changed."""
    p = Path(path)
    if not p.is_file():
        return False
    keep = _tail_state(p)
    if keep is None:
        return False
    with p.open("rb+") as fh:
        fh.seek(keep)
        tail = fh.read()
        try:
            json.loads(tail.decode("utf-8"))
            fh.seek(0, os.SEEK_END)
            fh.write(b"\n")  # the row was whole: only its newline was lost
        except (UnicodeDecodeError, json.JSONDecodeError):
            fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a labels file (a torn last line is skipped; other bad lines are errors)."""
    from llm2edge.records import read_jsonl

    return read_jsonl(path)


def latest_by_key(paths: Iterable[str | Path]) -> dict[str, dict[str, Any]]:
    """The last row per key over `paths` in order (later files win); missing files are skipped."""
    rows: dict[str, dict[str, Any]] = {}
    for path in paths:
        if not Path(path).is_file():
            continue
        for n, row in enumerate(read_rows(path), start=1):
            key = row.get("key")
            if not isinstance(key, str):
                raise DataError(f"{path}: row {n} has no 'key': not an llm2edge labels file")
            rows.pop(key, None)  # re-insert so iteration order follows the last write
            rows[key] = row
    return rows


def read_labels(path: str | Path) -> list[dict[str, Any]]:
    """The current label per key: the last row per key, in order of last write (a finished, compacted
    file holds one row per input item, so repeated texts appear once here: use read_jsonl for rows)."""
    return list(latest_by_key([path]).values())


class LabelWriter:
    """Appends rows to a labels file, one flushed line each, after repairing a torn tail."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair(self.path)
        self._fh: IO[str] | None = self.path.open("a", encoding="utf-8")

    def append(self, row: Mapping[str, Any]) -> None:
        """Write one row and flush it."""
        from llm2edge.records import write_jsonl_line

        assert self._fh is not None, "writer is closed"
        write_jsonl_line(self._fh, dict(row))

    def close(self) -> None:
        """Flush to disk and close."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None

    def __enter__(self) -> LabelWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Rewrite `path` with `rows` via a temporary file and an atomic rename; returns the row count."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    n = 0
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(dict(row), ensure_ascii=False) + "\n")
            n += 1
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)
    return n


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path, labels: Sequence[str]) -> Path:
    """Write rows as CSV with the probabilities flattened to p_<label> columns (a label set joined)."""
    field_names: list[str] = []
    for row in rows:
        for f in (row.get("fields") or {}):
            if f not in field_names:
                field_names.append(f)
    cols = ["id", "text", *field_names, "label", "confidence", "margin_logprob",
            *[f"p_{lab}" for lab in labels],
            "prob_source", "backend", "model", "task", "prompt_hash", "source", "error", "raw", "key"]
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in rows:
            probs = row.get("probs") or {}
            flat = {**row, **(row.get("fields") or {}), **{f"p_{lab}": probs.get(lab) for lab in labels}}
            if isinstance(flat.get("label"), list):  # a multi-label set: one `a;b` cell (llm2edge.labelsets)
                flat["label"] = join_label_set(flat["label"])
            w.writerow(["" if flat.get(c) is None else flat.get(c) for c in cols])
    os.replace(tmp, p)
    return p
