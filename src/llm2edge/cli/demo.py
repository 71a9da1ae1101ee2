"""`llm2edge demo`: the whole pipeline on the shipped example, with a report."""

from __future__ import annotations

from pathlib import Path

import typer


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
    from llm2edge.pipeline.demo import DemoConfig, run_demo

    run_demo(DemoConfig(out=out, dataset=dataset, task=task, quick=quick, threads=threads,
                        train_items=train_items, test_items=test_items, shots=shots, calibrate=calibrate,
                        curate=curate, epochs=epochs, class_weight=class_weight, lr=lr))


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("demo")(demo)
