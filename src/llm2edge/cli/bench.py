"""`llm2edge bench`: per-item latency of a bundle against torch, ORTModel and the LLM, as ratios."""

from __future__ import annotations

import argparse

from llm2edge.cli.fields import add_arguments as add_arguments_from
from llm2edge.cli.fields import build, options
from llm2edge.console import say

HELP = "Per-item latency of the bundle vs torch eager, optimum's ORTModel and the LLM; ratios in a table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """bench's arguments: BenchConfig's fields."""
    from llm2edge.pipeline.bench.run import BenchConfig

    add_arguments_from(parser, options(BenchConfig))


def run(args: argparse.Namespace) -> None:
    """Time every system and print the table with ratios."""
    from llm2edge.pipeline.bench.report import ratio_sentences, speed_table
    from llm2edge.pipeline.bench.run import BenchConfig, run_bench

    result = run_bench(build(BenchConfig, vars(args), options(BenchConfig)))
    reference = result.extra["reference"]
    print(speed_table(result.rows, reference=reference))
    for line in ratio_sentences(result.rows, reference=reference):
        print(f"- {line}")
    for name, why in result.skipped:
        say(f"llm2edge bench: skipped {name}: {why}")
    wrote = [str(result.markdown), str(result.json)] + ([str(result.plot)] if result.plot else [])
    say(f"llm2edge bench: wrote {', '.join(wrote)}")
