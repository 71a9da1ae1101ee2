"""`llm2edge train`: fine-tune a student classifier on labels (options: TrainConfig's fields)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from llm2edge.cli.fields import register_config_command, typer_command
from llm2edge.console import say

if TYPE_CHECKING:
    from llm2edge.hub.train import TrainConfig


def train(config: TrainConfig) -> None:
    """Fine-tune a student classifier; resumes from the last epoch checkpoint after a crash."""
    from llm2edge.hub.train import metrics_table
    from llm2edge.hub.train import train as run_training

    result = run_training(config)
    if not result.main_process:
        return
    if result.metrics is not None:
        print(metrics_table(result.metrics))
    resumed = f", resumed after epoch {result.resumed_from_epoch}" if result.resumed_from_epoch else ""
    say(f"llm2edge: trained {', '.join(result.labels)} in {result.seconds:.1f} s "
        f"({result.examples_per_second:.1f} examples/s{resumed}) -> {result.out}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    register_config_command(app, "train", "llm2edge.hub.train.config:TrainConfig",
                            lambda config: typer_command(config, train), train.__doc__ or "")
