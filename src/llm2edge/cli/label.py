"""`llm2edge label`: label a data file with an LLM (options: LabelConfig's fields)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from llm2edge.cli.fields import register_config_command, typer_command

if TYPE_CHECKING:
    from llm2edge.hub.label.config import LabelConfig


def label(config: LabelConfig) -> None:
    """Label a data file with an LLM: label probabilities per item, resumable, one row per item."""
    from llm2edge.hub.label.runner import label_file

    summary = label_file(config)
    if summary.rank == 0:
        typer.echo(summary.text())
    summary.raise_if_failed()  # items left failed: exit 2 with the count and how to retry


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    register_config_command(app, "label", "llm2edge.hub.label.config:LabelConfig",
                            lambda config: typer_command(config, label), label.__doc__ or "")
