"""Options every typer command shares (the base-install commands' argparse twins are in cli/edge.py, with the
same help texts), defined once so they read and behave the same in each command."""

from __future__ import annotations

from typing import Any

import typer

from llm2edge.cli.edge import NO_MODEL_THREADS_HELP, THREADS_DEFAULT_HELP


def threads_option(what: str, default: str = THREADS_DEFAULT_HELP) -> Any:
    """The `--threads` option; `what` names the threads it sets (e.g. "onnxruntime threads"), `default`
    says what happens without it."""
    return typer.Option(None, "--threads", min=1, help=f"{what} ({default}).")


def no_model_threads_option() -> Any:
    """`--threads` of a command that runs no model: accepted so scripts can pass it to every command."""
    return typer.Option(None, "--threads", min=1, help=NO_MODEL_THREADS_HELP)
