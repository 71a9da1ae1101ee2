"""`llm2edge evaluate`: score predictions against gold labels (works on a base install)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llm2edge.cli.fields import NO_MODEL_THREADS, own
from llm2edge.cli.fields import add_arguments as add_arguments_from
from llm2edge.defaults import ID_COL, LABEL_COL, TEXT_COL

HELP = ("Score predictions against gold labels: accuracy, macro/weighted F1, per class, confusion; "
        "label sets: micro/macro-F1, subset accuracy, Hamming loss, per label.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """evaluate's arguments (those of `evaluate_files`, and --json)."""
    add_arguments_from(parser, [
        own("pred", "--pred", type=Path, required=True, help="Predictions (e.g. `llm2edge predict` output)."),
        own("gold", "--gold", type=Path, required=True, help="Gold labels (csv, jsonl, parquet)."),
        own("id_col", "--id-col", default=ID_COL, help="Id column used to join the two files."),
        own("pred_col", "--pred-col", default=LABEL_COL, help="Label column of --pred."),
        own("gold_col", "--gold-col", default=LABEL_COL, help="Label column of --gold."),
        own("text_col", "--text-col", default=TEXT_COL,
            help="Gold text column: gives the ids `predict` made for id-less rows."),
        own("as_json", "--json", type=bool, default=False, help="Print the report as JSON."),
        NO_MODEL_THREADS,
    ])


def run(args: argparse.Namespace) -> None:
    """Score --pred against --gold and print the report."""
    from llm2edge.edge.evaluate import evaluate_files

    report, how = evaluate_files(args.pred, args.gold, id_col=args.id_col, pred_col=args.pred_col,
                                 gold_col=args.gold_col, text_col=args.text_col)
    if args.as_json:
        print(json.dumps({**report.to_dict(), "joined_by": how}, indent=2))
    else:
        print(f"(rows joined by {how})")
        print(report.table())
