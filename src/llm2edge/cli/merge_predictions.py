"""`llm2edge merge-predictions`: the edge's predictions with the LLM's labels for the deferred items."""

from __future__ import annotations

import argparse
from pathlib import Path

from llm2edge.cli.fields import NO_MODEL_THREADS, own
from llm2edge.cli.fields import add_arguments as add_arguments_from
from llm2edge.console import say
from llm2edge.defaults import ID_COL, LABEL_COL

HELP = "The LLM's label for every deferred item, the edge's for the rest."
DESCRIPTION = ("Take the LLM's label for every deferred item and the edge's for the rest (columns id, label, "
               "source, edge_label, deferred); a deferred item without an LLM label, or an LLM label that is "
               "not the bundle's (see --map), is an error.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """merge-predictions' arguments (those of `merge_predictions`)."""
    add_arguments_from(parser, [
        own("edge", "--edge", type=Path, required=True,
            help="Predictions of `llm2edge predict --defer ...`."),
        own("llm", "--llm", type=Path, required=True,
            help="The LLM's labels of the deferred items (`llm2edge label --id-col id` on predict's "
                 "--deferred-out file)."),
        own("out", "--out", "-o", type=Path, required=True, help="Merged file (.csv or .jsonl)."),
        own("fmt", "--format", "-f", help="csv or jsonl (default: from --out's suffix)."),
        own("id_col", "--id-col", default=ID_COL, help="Id column of the LLM file."),
        own("label_col", "--label-col", default=LABEL_COL, help="Label column of the LLM file."),
        own("map", "--map", help="Rename LLM labels that are not the bundle's: 'OLD=NEW,...' (else such a "
                                 "label is an error)."),
        NO_MODEL_THREADS,
    ])


def run(args: argparse.Namespace) -> None:
    """Merge --edge and --llm into --out and say what was taken from where."""
    from llm2edge.edge.merge import merge_predictions as merge

    summary = merge(args.edge, args.llm, args.out, fmt=args.fmt, id_col=args.id_col, label_col=args.label_col,
                    map=args.map)
    say(f"llm2edge: {summary.text()}")
