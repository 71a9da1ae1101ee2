"""`llm2edge experiment`: a grid of datasets x labeler x curation intervention x student (the grid's
settings are the TOML file's; the options are ExperimentRun's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from llm2edge.cli.fields import register_config_command, typer_command
from llm2edge.console import say

if TYPE_CHECKING:
    from llm2edge.pipeline.experiment.config import ExperimentRun


def experiment_cmd(run: ExperimentRun) -> None:
    """Run a grid of datasets x labeler x curation intervention x student; write the results table."""
    from llm2edge.extras import require

    require("hub")
    from llm2edge.pipeline.experiment.runner import run_experiment

    result = run_experiment(run.config, run.out, quick=run.quick, threads=run.threads, only=run.parts())
    say(f"experiment: {result.n_runs} runs ({result.n_cached} cached) -> {result.out / 'results.md'}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    register_config_command(app, "experiment", "llm2edge.pipeline.experiment.config:ExperimentRun",
                            lambda config: typer_command(config, experiment_cmd),
                            experiment_cmd.__doc__ or "")
