"""`llm2edge bench`: per-item latency of a bundle against torch, ORTModel and the LLM, as ratios."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge import defaults
from llm2edge.cli.options import threads_option
from llm2edge.console import say


def bench(
    bundle: Path = typer.Option(..., "--bundle", "-b", help="Bundle folder made by `llm2edge export`."),
    texts: Path | None = typer.Option(None, "--texts", help="Texts to time (csv, jsonl, parquet, txt); "
                                                             "default: a small built-in mixed-length set."),
    text_col: str = typer.Option(defaults.TEXT_COL, "--text-col", help="Column holding the text."),
    llm: str = typer.Option(defaults.BENCH_LLM, "--llm",
                            help="LLM rows: hf (in-process scoring and generation), "
                                                "server (llama.cpp, OpenAI-compatible) or none."),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="LLM id, folder or GGUF (default: the embedded SmolLM2)."),
    server_url: str | None = typer.Option(None, "--server-url",
                                          help="Use this running OpenAI-compatible server for --llm server "
                                               "(default: start llama.cpp locally)."),
    student: Path | None = typer.Option(None, "--student", help="The torch model folder (`llm2edge train` "
                                                                "output) for the torch eager rows."),
    static: Path | None = typer.Option(None, "--static", help="A static-student bundle (`train --student "
                                                              "static`, exported) timed beside --bundle."),
    task: str | None = typer.Option(None, "--task", help="Task name or file for the LLM prompts "
                                                         "(default: a plain task over the bundle's labels)."),
    output: Path = typer.Option(defaults.BENCH_OUTPUT, "--output", "-o",
                                help="Folder for speed.md/json/png."),
    threads: int | None = threads_option("Threads of every system, the same for all"),
    n_texts: int = typer.Option(defaults.BENCH_N_TEXTS, "--n-texts", help="Texts sampled from --texts."),
    budget: float = typer.Option(defaults.BENCH_BUDGET_S, "--budget",
                                 help="Seconds of timed calls per system."),
) -> None:
    """Per-item latency of the bundle vs torch eager, optimum's ORTModel and the LLM; ratios in a table."""
    from llm2edge.pipeline.bench.report import ratio_sentences, speed_table
    from llm2edge.pipeline.bench.run import BenchConfig, run_bench

    result = run_bench(BenchConfig(
        bundle=bundle, output=output, texts=texts, text_col=text_col, llm=llm, model=model,
        server_url=server_url, student=student, static=static, task=task, threads=threads, n_texts=n_texts,
        budget_s=budget))
    reference = result.extra["reference"]
    print(speed_table(result.rows, reference=reference))
    for line in ratio_sentences(result.rows, reference=reference):
        print(f"- {line}")
    for name, why in result.skipped:
        say(f"llm2edge bench: skipped {name}: {why}")
    wrote = [str(result.markdown), str(result.json)] + ([str(result.plot)] if result.plot else [])
    say(f"llm2edge bench: wrote {', '.join(wrote)}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("bench")(bench)
