"""`llm2edge demo`: the whole pipeline on the shipped example, with a report."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge import defaults
from llm2edge.cli.options import threads_option


def demo(
    out: Path = typer.Option(defaults.DEMO_OUT, "--out", "-o", help="Folder for every stage's output."),
    dataset: Path | None = typer.Option(None, "--dataset",
                                        help="Folder with train.csv and test.csv (text,label); "
                                             "default: the shipped example."),
    task: str = typer.Option(defaults.DEMO_TASK, "--task",
                             help="Labeling task (name or file) matching the dataset."),
    quick: bool = typer.Option(False, "--quick",
                               help=f"A tiny run (~{defaults.DEMO_QUICK_TRAIN_ITEMS} items) to check the "
                                    "pipeline."),
    threads: int | None = threads_option(
        "Threads of every stage and of both timed systems (on a machine busy with other jobs, 1 is faster)"),
    train_items: int | None = typer.Option(None, "--train-items",
                                           help=f"Train items to label "
                                                f"(default {defaults.DEMO_TRAIN_ITEMS})."),
    test_items: int | None = typer.Option(None, "--test-items",
                                          help=f"Test items to score (default {defaults.DEMO_TEST_ITEMS})."),
    shots: int = typer.Option(defaults.SHOTS, "--shots",
                              help="Few-shot examples from the task in each LLM prompt."),
    calibrate: bool = typer.Option(defaults.DEMO_CALIBRATE, "--calibrate/--no-calibrate",
                                   help="Contextual calibration of the LLM's label scores."),
    curate: str = typer.Option(defaults.DEMO_CURATE, "--curate",
                               help="cleanlab on the LLM labels: drop, flag or none."),
    epochs: int | None = typer.Option(None, "--epochs",
                                      help=f"Student training epochs (default {defaults.DEMO_EPOCHS})."),
    lr: float = typer.Option(defaults.DEMO_LR, "--lr", help="Student learning rate."),
    class_weight: str = typer.Option(defaults.DEMO_CLASS_WEIGHT, "--class-weight",
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
