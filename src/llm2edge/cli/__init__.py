"""The `llm2edge` command: a thin layer that parses arguments and calls the library.

The base-install commands (predict, evaluate, calibrate, merge-predictions, bench) are argparse commands
(`edge.py`) that `main` runs before any CLI framework is imported, so `llm2edge predict` starts within a few
percent of the libraries' own start-up; the others are a typer app (`app.py`, one module per command or
command group), which the hub/export extras install. Each module only parses and calls, importing its stage
lazily inside the command.
"""

from __future__ import annotations

import errno
import os
import signal
import sys

from llm2edge.errors import Interrupted, Llm2EdgeError, MissingExtraError

#: Exit status of a run stopped by Ctrl-C (SIGINT), as shells report it: 128 + 2.
INTERRUPTED_EXIT = 130

#: Options of `llm2edge` itself, given before the command.
ROOT_OPTIONS = ("--debug", "-h", "--help")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; library errors become one line on stderr and exit code 2, Ctrl-C one line
    (what was written, how to continue) and exit code 130."""
    args = sys.argv[1:] if argv is None else argv
    try:
        _dispatch(args)
    except (Interrupted, KeyboardInterrupt) as exc:  # Ctrl-C: one line (what is written, how to go on)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not print a traceback now
        _debug_traceback(args)
        print(f"llm2edge: {exc if isinstance(exc, Interrupted) else Interrupted()}", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT) from None
    except (Llm2EdgeError, OSError) as exc:  # OSError: permission, disk full, a folder given as a file, ...
        _debug_traceback(args)
        line = str(exc) if isinstance(exc, Llm2EdgeError) else os_error_line(exc)
        print(f"llm2edge: error: {line}", file=sys.stderr)
        if not isinstance(exc, Llm2EdgeError):
            _drop_broken_stdout()
        raise SystemExit(2) from None


def _debug_traceback(args: list[str]) -> None:
    """Print the traceback of the exception being handled when the root option --debug is given."""
    if "--debug" in args:
        import traceback

        traceback.print_exc()


def _dispatch(args: list[str]) -> None:
    """Run a base-install command with argparse, anything else with the typer app (usage errors exit 2)."""
    from llm2edge.cli.edge import EDGE_COMMANDS, HUB_COMMANDS, print_help, run_edge

    n = 0
    while n < len(args) and args[n] in ROOT_OPTIONS:
        n += 1
    command = args[n] if n < len(args) else None
    if command in EDGE_COMMANDS and not {"-h", "--help"} & set(args[:n]):
        run_edge(command, args[n + 1:])
        return
    try:
        from llm2edge.cli.app import build_app
    except ModuleNotFoundError as exc:
        if exc.name != "typer":
            raise
        if command is None:  # `llm2edge [--help]`: the base commands, and where the others come from
            print_help(typer_missing=True)
            raise SystemExit(0 if {"-h", "--help"} & set(args) else 2) from None
        if command not in HUB_COMMANDS:
            print(f"llm2edge: error: no such command '{command}' (`llm2edge --help` lists them)",
                  file=sys.stderr)
            raise SystemExit(2) from None
        raise MissingExtraError("hub", "typer") from None
    build_app()(args=args, prog_name="llm2edge")  # standalone mode: usage errors exit 2 by themselves


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
