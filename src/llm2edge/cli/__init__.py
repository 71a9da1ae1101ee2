"""The `llm2edge` command: a thin typer layer that parses arguments and calls the library.

`app.py` builds the app from one module per command (or command group); each module only parses and
calls, importing its stage lazily inside the command so `llm2edge predict` starts fast on a base install.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

from llm2edge.errors import Llm2EdgeError


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; library errors become one line on stderr and exit code 2."""
    from llm2edge.cli.app import build_app

    args = sys.argv[1:] if argv is None else argv
    try:
        build_app()(args=args, prog_name="llm2edge")  # standalone mode: usage errors exit 2 by themselves
    except (Llm2EdgeError, OSError) as exc:  # OSError: permission, disk full, a folder given as a file, ...
        if "--debug" in args:  # the root option (app.py) is parsed by typer; the traceback is printed here
            traceback.print_exc()
        line = str(exc) if isinstance(exc, Llm2EdgeError) else os_error_line(exc)
        print(f"llm2edge: error: {line}", file=sys.stderr)
        if not isinstance(exc, Llm2EdgeError):
            _drop_broken_stdout()
        raise SystemExit(2) from None


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the path(s) it names and the system's reason (`out.csv: Is a directory`)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno == errno.EEXIST and exc.filename is not None and os.path.isfile(exc.filename):
        reason = "is a file, not a folder"  # mkdir of an output folder that is a file
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {reason}"
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason


def _drop_broken_stdout() -> None:
    """If stdout cannot take its buffered rest (disk full, reader gone), drop it so exit stays quiet."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError, AttributeError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass  # no stdout at all: nothing left to flush
