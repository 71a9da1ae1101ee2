"""`llm2edge experiment`: a grid of datasets x labeler x curation intervention x student."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge.cli.options import threads_option
from llm2edge.console import say
from llm2edge.extras import require


def experiment_cmd(
    config: Path = typer.Option(..., "--config", help="Experiment TOML (see experiments/)."),
    out: Path = typer.Option(..., "--out", help="Output folder: labels, runs, results.csv/md/png."),
    quick: bool = typer.Option(False, "--quick", help="Use the config's [quick] overrides (small, for CI)."),
    only: list[str] | None = typer.Option(None, "--only", help="Keep some parts of the grid (repeatable): "
                                          "datasets=a,b | labelers=a,b | students=a | interventions=a,b."),
    threads: int | None = threads_option(
        "Threads of every stage of every run, replacing the config's",
        "default: the config's, else the CPUs this process may use; 1 per process under torchrun/accelerate"),
) -> None:
    """Run a grid of datasets x labeler x curation intervention x student; write the results table."""
    require("hub")
    from llm2edge.errors import ConfigError
    from llm2edge.pipeline.experiment.runner import run_experiment

    parts: dict[str, list[str]] = {}
    for item in only or []:
        key, sep, names = item.partition("=")
        if not sep or not names.strip():
            raise ConfigError(f"--only {item!r}: use KEY=a,b with KEY datasets, labelers, students or "
                              "interventions")
        parts[key.strip()] = [n.strip() for n in names.split(",") if n.strip()]
    result = run_experiment(config, out, quick=quick, threads=threads, only=parts or None)
    say(f"experiment: {result.n_runs} runs ({result.n_cached} cached) -> {result.out / 'results.md'}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("experiment")(experiment_cmd)
