"""CLI commands that measure and show the whole pipeline (registered on import): `bench` and `demo`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from llm2edge.cli import app


@app.command("bench")
def bench(
    bundle: Path = typer.Option(..., "--bundle", "-b", help="Bundle folder made by `llm2edge export`."),
    texts: Path | None = typer.Option(None, "--texts", help="Texts to time (csv, jsonl, parquet, txt); "
                                                             "default: a small built-in mixed-length set."),
    text_col: str = typer.Option("text", "--text-col", help="Column holding the text."),
    llm: str = typer.Option("hf", "--llm", help="LLM rows: hf (in-process scoring and generation), "
                                                "server (llama.cpp, OpenAI-compatible) or none."),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="LLM id, folder or GGUF (default: the embedded SmolLM2)."),
    server_url: str | None = typer.Option(None, "--server-url",
                                          help="Use this running OpenAI-compatible server for --llm server "
                                               "(default: start llama.cpp locally)."),
    student: Path | None = typer.Option(None, "--student", help="The torch model folder (`llm2edge train` "
                                                                "output) for the torch eager rows."),
    task: str | None = typer.Option(None, "--task", help="Task name or file for the LLM prompts "
                                                         "(default: a plain task over the bundle's labels)."),
    output: Path = typer.Option(Path("bench-out"), "--output", "-o", help="Folder for speed.md/json/png."),
    threads: int = typer.Option(1, "--threads", help="Threads of every system (same for all)."),
    n_texts: int = typer.Option(256, "--n-texts", help="Texts sampled from --texts."),
    budget: float = typer.Option(4.0, "--budget", help="Seconds of timed calls per system."),
) -> None:
    """Per-item latency of the bundle vs torch eager, optimum's ORTModel and the LLM; ratios in a table."""
    from llm2edge.hub.benchrun import BenchConfig, ratio_sentences, run_bench, speed_table

    result = run_bench(BenchConfig(
        bundle=bundle, output=output, texts=texts, text_col=text_col, llm=llm, model=model,
        server_url=server_url, student=student, task=task, threads=threads, n_texts=n_texts,
        budget_s=budget))
    reference = result.extra["reference"]
    print(speed_table(result.rows, reference=reference))
    for line in ratio_sentences(result.rows, reference=reference):
        print(f"- {line}")
    for name, why in result.skipped:
        print(f"llm2edge bench: skipped {name}: {why}", file=sys.stderr)
    wrote = [str(result.markdown), str(result.json)] + ([str(result.plot)] if result.plot else [])
    print(f"llm2edge bench: wrote {', '.join(wrote)}", file=sys.stderr)


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("llm2edge-demo"), "--out", "-o", help="Folder for every stage's output."),
    dataset: Path | None = typer.Option(None, "--dataset",
                                        help="Folder with train.csv and test.csv (text,label); "
                                             "default: the shipped example."),
    task: str = typer.Option("humor", "--task", help="Labeling task (name or file) matching the dataset."),
    quick: bool = typer.Option(False, "--quick", help="A tiny run (~40 items) to check the pipeline."),
    threads: int | None = typer.Option(None, "--threads",
                                       help="Torch threads for labeling and training (default 1: safe on a "
                                            "busy machine; 2+ is faster on an idle one)."),
    train_items: int | None = typer.Option(None, "--train-items", help="Train items to label (default 400)."),
    test_items: int | None = typer.Option(None, "--test-items", help="Test items to score (default 200)."),
    shots: int = typer.Option(0, "--shots", help="Few-shot examples from the task in each LLM prompt."),
    calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate",
                                   help="Contextual calibration of the LLM's label scores."),
    curate: str = typer.Option("drop", "--curate", help="cleanlab on the LLM labels: drop, flag or none."),
    epochs: int | None = typer.Option(None, "--epochs", help="Student training epochs (default 2)."),
    lr: float = typer.Option(3e-4, "--lr", help="Student learning rate."),
    class_weight: str = typer.Option("balanced", "--class-weight",
                                     help="Student loss weights per class: balanced (against the LLM's "
                                          "skewed labels) or none."),
) -> None:
    """The whole pipeline on an example: LLM labels -> curate -> train -> int8 bundle -> edge; a report."""
    from llm2edge.extras import require

    require("hub")
    require("export")
    from llm2edge.hub.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out=out, dataset=dataset, task=task, quick=quick, threads=threads,
                        train_items=train_items, test_items=test_items, shots=shots, calibrate=calibrate,
                        curate=curate, epochs=epochs, class_weight=class_weight, lr=lr))
