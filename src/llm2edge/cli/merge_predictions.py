"""`llm2edge merge-predictions`: the edge's predictions with the LLM's labels for the deferred items."""

from __future__ import annotations

import argparse

from llm2edge.cli.fields import NO_MODEL_THREADS, build, options
from llm2edge.cli.fields import add_arguments as add_arguments_from
from llm2edge.console import say

HELP = "The LLM's label for every deferred item, the edge's for the rest."
DESCRIPTION = ("Take the LLM's label for every deferred item and the edge's for the rest (columns id, label, "
               "source, edge_label, deferred); a deferred item without an LLM label, or an LLM label that is "
               "not the bundle's (see --map), is an error.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """merge-predictions' arguments: MergeConfig's fields (and --threads, for uniformity)."""
    from llm2edge.edge.commands import MergeConfig

    add_arguments_from(parser, [*options(MergeConfig), NO_MODEL_THREADS])


def run(args: argparse.Namespace) -> None:
    """Merge --edge and --llm into --out and say what was taken from where."""
    from llm2edge.edge.commands import MergeConfig, arguments
    from llm2edge.edge.merge import merge_predictions as merge

    config = build(MergeConfig, vars(args), options(MergeConfig))
    summary = merge(**arguments(config))
    say(f"llm2edge: {summary.text()}")
