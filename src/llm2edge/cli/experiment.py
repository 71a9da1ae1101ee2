"""`llm2edge experiment`: a grid of datasets x labeler x curation intervention x student (the grid's
settings are the TOML file's; the options here are the command's own)."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge.cli.fields import own, typer_command
from llm2edge.console import say
from llm2edge.extras import require
from llm2edge.params import THREADS_DEFAULT_HELP

#: The command's options (run_experiment's arguments).
OPTIONS = [
    own("config", "--config", type=Path, required=True, help="Experiment TOML (see experiments/)."),
    own("out", "--out", type=Path, required=True, help="Output folder: labels, runs, results.csv/md/png."),
    own("quick", "--quick", type=bool, default=False,
        help="Use the config's [quick] overrides (small, for CI)."),
    own("only", "--only", type=list[str], help="Keep some parts of the grid (repeatable): datasets=a,b | "
                                               "labelers=a,b | students=a | interventions=a,b."),
    own("threads", "--threads", type=int, cli_min=1,
        help="Threads of every stage of every run, replacing the config's (default: the config's, else "
             f"{THREADS_DEFAULT_HELP.removeprefix('default: ')})."),
]


def experiment_cmd(config: Path, out: Path, quick: bool, only: list[str] | None, threads: int | None) -> None:
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
    app.command("experiment")(typer_command(None, experiment_cmd, extra=OPTIONS))
