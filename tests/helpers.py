"""Plain helpers shared by test modules (not fixtures): write CSV / JSONL inputs, run the CLI in-process."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], fields: Sequence[str] | None = None) -> Path:
    """Write dict rows as a CSV with a header: `fields` (other keys ignored), else the first row's keys."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        if fields is None:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        else:
            writer = csv.DictWriter(handle, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_table(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """Write a CSV from a header and list rows."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    """A CSV's rows as dicts."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write rows as JSON lines."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class PipeStdin(io.TextIOWrapper):
    """A non-terminal stdin with a .buffer, like a pipe."""

    def isatty(self) -> bool:
        return False


def run_cli(args: list[str], capsys: Any, monkeypatch: Any = None, stdin: bytes | None = None
            ) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr). With `monkeypatch`, stdin is a pipe
    holding `stdin` (empty by default)."""
    from llm2edge.cli import main

    if monkeypatch is not None:
        monkeypatch.setattr(sys, "stdin", PipeStdin(io.BytesIO(stdin or b""), encoding="utf-8"))
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def cli_error(args: list[str], capsys: Any) -> str:
    """Run the CLI in-process, expecting a usage/data error: exit code 2 and one `llm2edge: error: ` line on
    stderr, which is returned."""
    import pytest

    from llm2edge.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("llm2edge: error: "), err
    return err[0]
