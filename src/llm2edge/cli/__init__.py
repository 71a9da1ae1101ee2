"""The `llm2edge` command: a thin typer layer that parses arguments and calls the library.

Each stage's command lives in its own module and imports its stage lazily, inside the command, so
`llm2edge predict` starts fast on a base install and a missing extra is reported, not crashed on.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import typer

from llm2edge.errors import Llm2EdgeError

app = typer.Typer(
    name="llm2edge",
    help="Turn an LLM's labels into a small, fast classifier that runs anywhere.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """llm2edge: label with an LLM, curate, train a student, export to ONNX, classify at the edge."""
    _STATE["debug"] = debug


def _register() -> None:
    """Import the command modules; each one adds its commands to `app`."""
    # In pipeline order: help lists the commands in the order they were registered.
    for name in ("label_cmds", "curate_cmds", "hub_cmds", "export_cmds", "edge_cmds", "demo_cmds"):
        importlib.import_module(f"llm2edge.cli.{name}")

_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI; library errors become one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, prog_name="llm2edge")  # standalone mode: usage errors exit 2 by themselves
    except Llm2EdgeError as exc:
        if _STATE["debug"] or "--debug" in args:
            traceback.print_exc()
        print(f"llm2edge: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
