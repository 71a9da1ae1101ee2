"""`llm2edge curate`, `sample-experts`, `merge-experts`, `soft-labels`: curation of LLM labels.

Each command's options are its config's fields (CurateConfig, SampleConfig, MergeConfig, SoftConfig; the
crossval ones from the CrossvalConfig they hold).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import typer

from llm2edge.cli.fields import NO_MODEL_THREADS, register_config_command, typer_command
from llm2edge.console import say, warn

if TYPE_CHECKING:
    from llm2edge.hub.curate.confident import CurateConfig
    from llm2edge.hub.curate.experts import MergeConfig, SampleConfig
    from llm2edge.hub.curate.soft import SoftConfig

#: The module that holds the curation configs.
CURATE = "llm2edge.hub.curate"


def curate_cmd(config: CurateConfig) -> None:
    """Flag or drop likely-wrong LLM labels with confident learning (cleanlab)."""
    from llm2edge.hub.curate.confident import curate

    result = curate(config)
    say(f"curate: {result.n_flagged} of {result.n_rows} rows flagged; wrote {result.n_written} rows to "
         f"{result.out / 'labels.jsonl'} (report: {result.out / 'report.md'})")


def sample_experts_cmd(config: SampleConfig) -> None:
    """Pick items for expert review: the least-confident LLM labels (RED-CT) or a random sample."""
    from llm2edge.hub.curate.experts import sample_experts

    # --seed seeds --strategy random and the crossval folds alike
    config = dataclasses.replace(config, crossval=dataclasses.replace(config.crossval, seed=config.seed))
    result = sample_experts(config)
    if result.warning:
        warn(result.warning)
    per = ", ".join(f"{k}={v}" for k, v in result.per_label.items())
    say(f"sample-experts: {result.n_sampled} of {result.n_rows} items ({per}) -> {result.out}")


def merge_experts_cmd(config: MergeConfig, threads: int | None = None) -> None:
    """Merge expert labels into labels.jsonl (`source: expert`, one-hot probabilities; a multi-label
    file: the expert's set, 1/0 per label)."""
    from llm2edge.hub.curate.experts import merge_experts

    result = merge_experts(config)
    say(f"merge-experts: {result.summary()} (report: {result.report})")


def soft_labels_cmd(config: SoftConfig) -> None:
    """Normalize each row's label distribution to sum to 1, for `llm2edge train --soft` (a multi-label
    file: each label's own probability)."""
    from llm2edge.hub.curate.soft import soft_labels

    result = soft_labels(config)
    say(f"soft-labels: wrote {result.rows} rows to {result.out} from {result.source} probabilities "
        f"(skipped {result.skipped_error} rows with an error)")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    for name, ref, run, make in (
        ("curate", "confident:CurateConfig", curate_cmd, {}),
        ("sample-experts", "experts:SampleConfig", sample_experts_cmd, {"skip": ("crossval.seed",)}),
        ("merge-experts", "experts:MergeConfig", merge_experts_cmd, {"extra": [NO_MODEL_THREADS]}),
        ("soft-labels", "soft:SoftConfig", soft_labels_cmd, {}),
    ):
        register_config_command(app, name, f"{CURATE}.{ref}",
                                lambda config, run=run, make=make: typer_command(config, run, **make),
                                run.__doc__ or "")
