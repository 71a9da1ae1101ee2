"""`llm2edge import-labels`: bring LLM labels made elsewhere (CSV, JSONL, Parquet) in as a labels.jsonl."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge.cli.options import no_model_threads_option
from llm2edge.defaults import LABEL_COL, TEXT_COL


def import_labels_cmd(
    data: Path = typer.Option(..., "--data", help="File with the LLM's labels: CSV, JSONL or Parquet."),
    out: Path = typer.Option(..., "--out", help="labels.jsonl to write (what curate, sample-experts and "
                                                "train read)."),
    task: str | None = typer.Option(None, "--task", help="Shipped task name or task file (its labels and "
                                                         "fields); or give --labels."),
    labels: str | None = typer.Option(None, "--labels", help="The label set, comma-separated: a,b,c."),
    label_col: str = typer.Option(LABEL_COL, "--label-col", help="Column with the LLM's label."),
    text_col: str = typer.Option(TEXT_COL, "--text-col", help="Column with the text."),
    id_col: str | None = typer.Option(None, "--id-col", help="Column with unique ids (default: 'id' if the "
                                      "file has one, else row number + text hash, as `label` derives them)."),
    prob_prefix: str | None = typer.Option(None, "--prob-prefix", help="Prefix of probability columns, one "
                                           "per label (p_ reads p_<label>); they must sum to 1."),
    map_: str | None = typer.Option(None, "--map", help="Rename answers: 'A=Liberal,B=Conservative' "
                                                        "(after exact and case-insensitive matching)."),
    model_name: str | None = typer.Option(None, "--model-name", help="The LLM that made the labels "
                                                                     "(recorded in every row)."),
    threads: int | None = no_model_threads_option(),
) -> None:
    """Import labels an LLM produced elsewhere: one-hot answers, or given probabilities, as labels.jsonl."""
    from llm2edge.extras import require

    require("hub")
    from llm2edge.hub.label.importer import ImportConfig, import_labels

    summary = import_labels(ImportConfig(data=data, out=out, task=task, labels=labels, label_col=label_col,
                                         text_col=text_col, id_col=id_col, prob_prefix=prob_prefix, map=map_,
                                         model_name=model_name))
    typer.echo(summary.text())


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("import-labels")(import_labels_cmd)
