"""Builds the `llm2edge` typer app from an explicit list of command modules, in pipeline order.

Each module in COMMAND_MODULES defines its command(s) and a `register(app)` function; nothing registers
itself on import and no module keeps mutable state. The base-install commands (cli/edge.py: predict,
evaluate, ...) are argparse commands that `main` runs without typer; here they are listed by name and help
only, and hand their arguments to argparse if typer is asked to run them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import typer

from llm2edge.cli.edge import EDGE_COMMANDS, command_module, run_edge
from llm2edge.errors import Interrupted

#: The command modules, in the order `llm2edge --help` lists them (pipeline order).
COMMAND_MODULES = ("label", "import_labels", "curate", "train", "export", "calibrate", "predict",
                   "merge_predictions", "evaluate", "bench", "demo", "experiment")


def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """llm2edge: label with an LLM, curate, train a student, export to ONNX, classify at the edge."""


def build_app() -> typer.Typer:
    """A new typer app with every command of COMMAND_MODULES registered."""
    app = typer.Typer(
        name="llm2edge",
        help="Turn an LLM's labels into a small, fast classifier that runs anywhere.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    edge = {module: name for name, module in EDGE_COMMANDS.items()}
    for name in COMMAND_MODULES:
        if name in edge:
            _register_edge(app, edge[name])
        else:
            importlib.import_module(f"llm2edge.cli.{name}").register(app)
    for info in app.registered_commands:
        if info.callback is not None:
            info.callback = _interruptible(info.callback)
    return app


def _interruptible(callback: Callable[..., Any]) -> Callable[..., Any]:
    """`callback` with Ctrl-C raised as Interrupted: click would print "Aborted!" and exit 1, while `main`
    prints one line and exits 130 for every command alike."""

    @functools.wraps(callback)
    def command(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted() from None

    return command


def _register_edge(app: typer.Typer, name: str) -> None:
    """List the base-install command `name` in the app; its arguments (and --help) go to argparse."""

    def command(ctx: typer.Context) -> None:
        run_edge(name, list(ctx.args))

    app.command(name, help=command_module(name).HELP, add_help_option=False,
                context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(command)
