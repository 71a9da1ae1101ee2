"""`llm2edge demo`: the whole pipeline on the shipped example, with a report (options: DemoConfig's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from llm2edge.cli.fields import register_config_command, typer_command

if TYPE_CHECKING:
    from llm2edge.pipeline.demo import DemoConfig


def demo(config: DemoConfig) -> None:
    """The whole pipeline on an example: LLM labels -> curate -> train -> int8 bundle -> edge; a report."""
    from llm2edge.extras import require

    require("hub")
    require("export")
    from llm2edge.pipeline.demo import run_demo

    run_demo(config)


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    register_config_command(app, "demo", "llm2edge.pipeline.demo.config:DemoConfig",
                            lambda config: typer_command(config, demo), demo.__doc__ or "")
