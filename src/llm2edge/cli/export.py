"""`llm2edge export`: a trained model to an edge bundle (options: ExportConfig's fields)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from llm2edge.cli.fields import register_config_command, typer_command

if TYPE_CHECKING:
    from llm2edge.export import ExportConfig


def export(config: ExportConfig) -> None:
    """Export a trained model to an edge bundle: ONNX, fused, int8, validated, with a manifest."""
    from llm2edge.export import export_bundle

    typer.echo(export_bundle(config).table())


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    register_config_command(app, "export", "llm2edge.export.config:ExportConfig",
                            lambda config: typer_command(config, export), export.__doc__ or "")
