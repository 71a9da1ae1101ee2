"""`llm2edge import-labels`: bring LLM labels made elsewhere (CSV, JSONL, Parquet) in as a labels.jsonl
(options: ImportConfig's fields)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from llm2edge.cli.fields import NO_MODEL_THREADS, register_config_command, typer_command

if TYPE_CHECKING:
    from llm2edge.hub.label.importer import ImportConfig


def import_labels_cmd(config: ImportConfig, threads: int | None = None) -> None:
    """Import labels an LLM produced elsewhere: one-hot answers, or given probabilities, as labels.jsonl."""
    from llm2edge.hub.label.importer import import_labels

    typer.echo(import_labels(config).text())


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    register_config_command(app, "import-labels", "llm2edge.hub.label.importer:ImportConfig",
                            lambda config: typer_command(config, import_labels_cmd, extra=[NO_MODEL_THREADS]),
                            import_labels_cmd.__doc__ or "")
