"""Options every command shares, defined once so they read and behave the same in each command."""

from __future__ import annotations

from typing import Any

import typer

#: What `--threads` defaults to, in every command (llm2edge.edge.threads.resolve_threads).
THREADS_DEFAULT_HELP = "default: the CPUs this process may use; 1 per process under torchrun/accelerate"


def threads_option(what: str, default: str = THREADS_DEFAULT_HELP) -> Any:
    """The `--threads` option; `what` names the threads it sets (e.g. "onnxruntime threads"), `default`
    says what happens without it."""
    return typer.Option(None, "--threads", min=1, help=f"{what} ({default}).")


def no_model_threads_option() -> Any:
    """`--threads` of a command that runs no model: accepted so scripts can pass it to every command."""
    return typer.Option(None, "--threads", min=1,
                        help="Accepted for uniformity with the other commands; this command runs no model "
                             "and uses one thread.")
