"""`llm2edge evaluate`: score predictions against gold labels (works on a base install)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from llm2edge.cli.options import no_model_threads_option
from llm2edge.defaults import ID_COL, LABEL_COL, TEXT_COL


def evaluate(
    pred: Path = typer.Option(..., "--pred", help="Predictions (e.g. `llm2edge predict` output)."),
    gold: Path = typer.Option(..., "--gold", help="Gold labels (csv, jsonl, parquet)."),
    id_col: str = typer.Option(ID_COL, "--id-col", help="Id column used to join the two files."),
    pred_col: str = typer.Option(LABEL_COL, "--pred-col", help="Label column of --pred."),
    gold_col: str = typer.Option(LABEL_COL, "--gold-col", help="Label column of --gold."),
    text_col: str = typer.Option(TEXT_COL, "--text-col",
                                 help="Gold text column: gives the ids `predict` made for id-less rows."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    threads: int | None = no_model_threads_option(),
) -> None:
    """Score predictions against gold labels: accuracy, macro/weighted F1, per class, confusion."""
    from llm2edge.edge.evaluate import evaluate_files

    report, how = evaluate_files(pred, gold, id_col=id_col, pred_col=pred_col, gold_col=gold_col,
                                 text_col=text_col)
    if as_json:
        print(json.dumps({**report.to_dict(), "joined_by": how}, indent=2))
    else:
        print(f"(rows joined by {how})")
        print(report.table())


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("evaluate")(evaluate)
