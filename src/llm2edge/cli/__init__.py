"""The `llm2edge` command: a thin typer layer that parses arguments and calls the library.

`app.py` builds the app from one module per command (or command group); each module only parses and
calls, importing its stage lazily inside the command so `llm2edge predict` starts fast on a base install.
"""

from __future__ import annotations

import sys
import traceback

from llm2edge.errors import Llm2EdgeError


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; library errors become one line on stderr and exit code 2."""
    from llm2edge.cli.app import build_app

    args = sys.argv[1:] if argv is None else argv
    try:
        build_app()(args=args, prog_name="llm2edge")  # standalone mode: usage errors exit 2 by themselves
    except Llm2EdgeError as exc:
        if "--debug" in args:
            traceback.print_exc()
        print(f"llm2edge: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
