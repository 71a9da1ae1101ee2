"""`llm2edge label`: label a data file with an LLM (in-process HF model or OpenAI-compatible server)."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge import defaults
from llm2edge.cli.options import threads_option


def label(
    data: Path = typer.Option(..., "--data", help="Items to label: CSV, JSONL, Parquet or TXT."),
    task: str = typer.Option(..., "--task", help="Shipped task name (stance, misinfo, "
                      "ideology, humor) or a .toml/.yaml file."),
    out: Path = typer.Option(..., "--out", help="Labels file (.jsonl, append-only, resumable)."),
    backend: str = typer.Option(defaults.LABEL_BACKEND, "--backend", help="hf (in-process) or openai "
                         "(any OpenAI-compatible server)."),
    model: str = typer.Option(None, "--model", help="hf: HF id, folder or .gguf (default: embedded SmolLM2); "
                                                    "openai: model name."),
    base_url: str = typer.Option(None, "--base-url", help="OpenAI-compatible server URL (default: OpenAI)."),
    shots: int = typer.Option(defaults.SHOTS, "--shots", help="Few-shot examples in the prompt."),
    examples: Path = typer.Option(None, "--examples", help="Labeled file to take the shots from "
                                                           "(default: the task's examples)."),
    cot: bool = typer.Option(False, "--cot", help="Reason first, then score the labels."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Contextual calibration (content-free)."),
    limit: int = typer.Option(None, "--limit", help="Label only the first N items."),
    batch_size: int = typer.Option(defaults.LABEL_BATCH_SIZE, "--batch-size", help="Items per backend call."),
    text_col: str = typer.Option(defaults.TEXT_COL, "--text-col", help="Column with the text."),
    id_col: str = typer.Option(None, "--id-col", help="Column with unique ids "
                        "(default: row number + text hash)."),
    fmt: str = typer.Option(defaults.LABEL_FORMAT, "--format", help="jsonl, or csv to also write a CSV "
                     "with p_<label> columns."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print items, tokens, cost; label nothing."),
    concurrency: int = typer.Option(defaults.LABEL_CONCURRENCY, "--concurrency",
                                    help="openai: requests in flight."),
    timeout: float = typer.Option(defaults.LABEL_TIMEOUT_S, "--timeout", help="openai: seconds per request."),
    max_retries: int = typer.Option(defaults.LABEL_MAX_RETRIES, "--max-retries",
                                    help="openai: client retries per request."),
    threads: int | None = threads_option("Torch threads of the hf backend"),
    dtype: str = typer.Option(defaults.LABEL_DTYPE, "--dtype",
                              help="hf: auto, float32, bfloat16 or float16."),
    device: str = typer.Option(None, "--device", help="hf: cpu, cuda, cuda:1... (default: device_map=auto "
                                                      "on GPUs, else cpu)."),
    max_new_tokens: int = typer.Option(defaults.MAX_NEW_TOKENS, "--max-new-tokens",
                                       help="hf --cot: longest reasoning."),
    progress: bool = typer.Option(defaults.PROGRESS, "--progress/--no-progress",
                                  help="Show a progress bar on stderr."),
    samples: int = typer.Option(defaults.LABEL_SAMPLES, "--samples", help="Answers per item: K > 1 samples K "
                                "answers and stores their vote shares as probs (prob_source votes), for "
                                "teachers without logprobs."),
    temperature: float | None = typer.Option(None, "--temperature", help="Sampling temperature of --samples "
                                                f"(default {defaults.LABEL_SAMPLE_TEMPERATURE})."),
    seed: int = typer.Option(defaults.SEED, "--seed", help="Seed of the --samples draws (reruns draw the "
                             "same answers)."),
) -> None:
    """Label a data file with an LLM: label probabilities per item, resumable, one row per item."""
    from llm2edge.extras import require

    require("hub")  # openai is part of the hub extra
    from llm2edge.hub.label.runner import LabelConfig, label_file

    summary = label_file(LabelConfig(
        data=data, task=task, out=out, backend=backend, model=model, base_url=base_url, shots=shots,
        examples=examples, cot=cot, calibrate=calibrate, limit=limit, batch_size=batch_size,
        text_col=text_col, id_col=id_col, fmt=fmt, dry_run=dry_run, concurrency=concurrency, timeout=timeout,
        max_retries=max_retries, threads=threads, dtype=dtype, device=device, max_new_tokens=max_new_tokens,
        progress=progress, samples=samples, temperature=temperature, seed=seed))
    if summary.rank == 0:
        typer.echo(summary.text())
    summary.raise_if_failed()  # items left failed: exit 2 with the count and how to retry


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("label")(label)
