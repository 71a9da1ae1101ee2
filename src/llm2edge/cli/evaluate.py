"""`llm2edge evaluate`: score predictions against gold labels (works on a base install)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from llm2edge.cli.edge import add_no_model_threads
from llm2edge.defaults import ID_COL, LABEL_COL, TEXT_COL

HELP = "Score predictions against gold labels: accuracy, macro/weighted F1, per class, confusion."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """evaluate's arguments."""
    add = parser.add_argument
    add("--pred", type=Path, required=True, help="Predictions (e.g. `llm2edge predict` output).")
    add("--gold", type=Path, required=True, help="Gold labels (csv, jsonl, parquet).")
    add("--id-col", default=ID_COL, help="Id column used to join the two files.")
    add("--pred-col", default=LABEL_COL, help="Label column of --pred.")
    add("--gold-col", default=LABEL_COL, help="Label column of --gold.")
    add("--text-col", default=TEXT_COL,
        help="Gold text column: gives the ids `predict` made for id-less rows.")
    add("--json", dest="as_json", action="store_true", help="Print the report as JSON.")
    add_no_model_threads(parser)


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
