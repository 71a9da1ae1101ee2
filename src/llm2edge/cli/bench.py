"""`llm2edge bench`: per-item latency of a bundle against torch, ORTModel and the LLM, as ratios."""

from __future__ import annotations

import argparse
from pathlib import Path

from llm2edge import defaults
from llm2edge.cli.edge import add_threads, at_least_one
from llm2edge.console import say

HELP = "Per-item latency of the bundle vs torch eager, optimum's ORTModel and the LLM; ratios in a table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """bench's arguments."""
    add = parser.add_argument
    add("--bundle", "-b", type=Path, required=True, help="Bundle folder made by `llm2edge export`.")
    add("--texts", type=Path, default=None, help="Texts to time (csv, jsonl, parquet, txt); default: a small "
                                                 "built-in mixed-length set.")
    add("--text-col", default=defaults.TEXT_COL, help="Column holding the text.")
    add("--llm", default=defaults.BENCH_LLM, help="LLM rows: hf (in-process scoring and generation), server "
                                                  "(llama.cpp, OpenAI-compatible) or none.")
    add("--model", "-m", default=None, help="LLM id, folder or GGUF (default: the embedded SmolLM2).")
    add("--server-url", default=None, help="Use this running OpenAI-compatible server for --llm server "
                                           "(default: start llama.cpp locally).")
    add("--student", type=Path, default=None, help="The torch model folder (`llm2edge train` output) for the "
                                                   "torch eager rows.")
    add("--static", type=Path, default=None, help="A static-student bundle (`train --student static`, "
                                                  "exported) timed beside --bundle.")
    add("--task", default=None, help="Task name or file for the LLM prompts (default: a plain task over the "
                                     "bundle's labels).")
    add("--output", "-o", type=Path, default=defaults.BENCH_OUTPUT, help="Folder for speed.md/json/png.")
    add_threads(parser, "Threads of every system, the same for all")
    add("--n-texts", type=at_least_one, default=defaults.BENCH_N_TEXTS, help="Texts sampled from --texts.")
    add("--budget", type=float, default=defaults.BENCH_BUDGET_S, help="Seconds of timed calls per system.")


def run(args: argparse.Namespace) -> None:
    """Time every system and print the table with ratios."""
    from llm2edge.pipeline.bench.report import ratio_sentences, speed_table
    from llm2edge.pipeline.bench.run import BenchConfig, run_bench

    result = run_bench(BenchConfig(
        bundle=args.bundle, output=args.output, texts=args.texts, text_col=args.text_col, llm=args.llm,
        model=args.model, server_url=args.server_url, student=args.student, static=args.static,
        task=args.task, threads=args.threads, n_texts=args.n_texts, budget_s=args.budget))
    reference = result.extra["reference"]
    print(speed_table(result.rows, reference=reference))
    for line in ratio_sentences(result.rows, reference=reference):
        print(f"- {line}")
    for name, why in result.skipped:
        say(f"llm2edge bench: skipped {name}: {why}")
    wrote = [str(result.markdown), str(result.json)] + ([str(result.plot)] if result.plot else [])
    say(f"llm2edge bench: wrote {', '.join(wrote)}")
