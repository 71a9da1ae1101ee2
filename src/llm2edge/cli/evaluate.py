"""`llm2edge evaluate`: score predictions against gold labels (works on a base install)."""

from __future__ import annotations

import argparse
import json

from llm2edge.cli.fields import NO_MODEL_THREADS, build, options, own
from llm2edge.cli.fields import add_arguments as add_arguments_from

HELP = ("Score predictions against gold labels: accuracy, macro/weighted F1, per class, confusion; "
        "label sets: micro/macro-F1, subset accuracy, Hamming loss, per label.")
#: evaluate's own options (how it prints; --threads for uniformity).
OWN = [own("as_json", "--json", type=bool, default=False, help="Print the report as JSON."), NO_MODEL_THREADS]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """evaluate's arguments: EvaluateConfig's fields, and --json."""
    from llm2edge.edge.commands import EvaluateConfig

    add_arguments_from(parser, [*options(EvaluateConfig), *OWN])


def run(args: argparse.Namespace) -> None:
    """Score --pred against --gold and print the report."""
    from llm2edge.edge.commands import EvaluateConfig, arguments
    from llm2edge.edge.evaluate import evaluate_files

    config = build(EvaluateConfig, vars(args), options(EvaluateConfig))
    report, how = evaluate_files(**arguments(config))
    if args.as_json:
        print(json.dumps({**report.to_dict(), "joined_by": how}, indent=2))
    else:
        print(f"(rows joined by {how})")
        print(report.table())
