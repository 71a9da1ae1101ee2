"""`llm2edge merge-predictions`: the edge's predictions with the LLM's labels for the deferred items."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge.cli.options import no_model_threads_option
from llm2edge.console import say
from llm2edge.defaults import ID_COL, LABEL_COL


def merge_predictions(
    edge: Path = typer.Option(..., "--edge", help="Predictions of `llm2edge predict --defer ...`."),
    llm: Path = typer.Option(..., "--llm", help="The LLM's labels of the deferred items (`llm2edge label "
                                                 "--id-col id` on predict's --deferred-out file)."),
    out: Path = typer.Option(..., "--out", "-o", help="Merged file (.csv or .jsonl)."),
    fmt: str | None = typer.Option(None, "--format", "-f",
                                   help="csv or jsonl (default: from --out's suffix)."),
    id_col: str = typer.Option(ID_COL, "--id-col", help="Id column of the LLM file."),
    label_col: str = typer.Option(LABEL_COL, "--label-col", help="Label column of the LLM file."),
    threads: int | None = no_model_threads_option(),
) -> None:
    """Take the LLM's label for every deferred item and the edge's for the rest (columns id, label, source,
    edge_label, deferred); a deferred item without an LLM label is an error."""
    from llm2edge.edge.merge import merge_predictions as merge

    summary = merge(edge, llm, out, fmt=fmt, id_col=id_col, label_col=label_col)
    say(f"llm2edge: {summary.text()}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("merge-predictions")(merge_predictions)
