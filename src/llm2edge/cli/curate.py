"""`llm2edge curate`, `sample-experts`, `merge-experts`, `soft-labels`: curation of LLM labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from llm2edge import defaults
from llm2edge.cli.options import no_model_threads_option, threads_option
from llm2edge.console import say, warn
from llm2edge.extras import require

if TYPE_CHECKING:
    from llm2edge.hub.curate.oof import CrossvalConfig


def _crossval(folds: int, model: str | None, max_length: int, batch_size: int, seed: int,
              threads: int | None, oof_class_weight: str) -> CrossvalConfig:
    """The CrossvalConfig of sample-experts --by crossval and soft-labels --from crossval|mix."""
    from llm2edge.hub.curate.oof import CrossvalConfig

    return CrossvalConfig(folds=folds, model=model, max_length=max_length, batch_size=batch_size, seed=seed,
                          threads=threads, oof_class_weight=oof_class_weight)


def _class_weight_option() -> Any:
    """--oof-class-weight of the crossval model."""
    return typer.Option(defaults.OOF_CLASS_WEIGHT, "--oof-class-weight",
                        help="Class weights of the crossval model: none | balanced (each LLM label weighted "
                        "by the inverse of its share, so a skewed teacher's majority does not outvote its "
                        "minority answers).")


def _folds_option() -> Any:
    """--folds of the crossval model."""
    return typer.Option(defaults.CURATE_FOLDS, "--folds", help="Cross-validation folds (crossval).")


def _model_option() -> Any:
    """--model of the crossval embeddings."""
    return typer.Option(None, "--model", help="Encoder for the crossval embeddings (default: the packaged "
                        "MiniLM student).")


def _max_length_option() -> Any:
    """--max-length of the crossval embeddings."""
    return typer.Option(defaults.MAX_LENGTH, "--max-length", help="Tokens per text for the crossval "
                        "embeddings (as the student trains).")


def _batch_size_option() -> Any:
    """--batch-size of the crossval embeddings."""
    return typer.Option(defaults.EMBED_BATCH_SIZE, "--batch-size", help="Embedding batch size (crossval).")


def curate_cmd(
    labels: Path = typer.Option(..., "--labels", help="labels.jsonl written by `llm2edge label`."),
    out: Path = typer.Option(..., "--out", help="Output folder: labels.jsonl, report.md, report.json."),
    method: str = typer.Option(defaults.CURATE_METHOD, "--method", help="Curation method (cleanlab)."),
    probs: str = typer.Option(defaults.CURATE_PROBS, "--probs",
                              help="Out-of-sample probabilities: crossval (K-fold "
                              "model on student embeddings) | llm (the LLM's own; weak, see docs)."),
    action: str = typer.Option(defaults.CURATE_ACTION, "--action",
                               help="flag (add label_issue) | drop (flagged rows)."),
    folds: int = _folds_option(),
    model: str | None = _model_option(),
    max_length: int = _max_length_option(),
    batch_size: int = _batch_size_option(),
    filter_by: str = typer.Option(defaults.CURATE_FILTER_BY, "--filter-by",
                                  help="cleanlab filter_by method."),
    oof_class_weight: str = _class_weight_option(),
    threads: int | None = threads_option("Torch threads for the embeddings"),
    seed: int = typer.Option(defaults.SEED, "--seed", help="Seed of the fold split."),
    top: int = typer.Option(defaults.CURATE_TOP, "--top", help="Flagged examples listed in the report."),
) -> None:
    """Flag or drop likely-wrong LLM labels with confident learning (cleanlab)."""
    require("hub")
    from llm2edge.hub.curate.confident import CurateConfig, curate

    result = curate(CurateConfig(labels=labels, out=out, method=method, probs=probs, action=action,
                                 folds=folds, model=model, max_length=max_length, batch_size=batch_size,
                                 filter_by=filter_by, oof_class_weight=oof_class_weight, threads=threads,
                                 seed=seed, top=top))
    say(f"curate: {result.n_flagged} of {result.n_rows} rows flagged; wrote {result.n_written} rows to "
         f"{result.out / 'labels.jsonl'} (report: {result.out / 'report.md'})")


def sample_experts_cmd(
    labels: Path = typer.Option(..., "--labels", help="labels.jsonl written by `llm2edge label`."),
    out: Path = typer.Option(..., "--out", help="Output folder for review.csv, label_studio.json, ..."),
    fraction: float = typer.Option(defaults.EXPERT_FRACTION, "--fraction",
                                   help="Share of the items to send to experts."),
    strategy: str = typer.Option(defaults.EXPERT_STRATEGY, "--strategy",
                                 help="confidence (least confident) | random."),
    stratify: bool = typer.Option(False, "--stratify/--no-stratify",
                                  help="The same budget for each LLM label (RED-CT's rule)."),
    by: str = typer.Option(defaults.EXPERT_BY, "--by", help="confidence (top1-top2 probability) | margin "
                           "(log-prob margin) | crossval (out-of-fold probability of the LLM label from a "
                           "model on student embeddings, over the label's mean: for labels without "
                           "probabilities)."),
    seed: int = typer.Option(defaults.SEED, "--seed", help="Seed of --strategy random and the crossval "
                             "folds."),
    folds: int = _folds_option(),
    model: str | None = _model_option(),
    max_length: int = _max_length_option(),
    batch_size: int = _batch_size_option(),
    oof_class_weight: str = _class_weight_option(),
    threads: int | None = threads_option("Torch threads for the crossval embeddings"),
) -> None:
    """Pick items for expert review: the least-confident LLM labels (RED-CT) or a random sample."""
    require("hub")
    from llm2edge.hub.curate.experts import SampleConfig, sample_experts

    crossval = _crossval(folds, model, max_length, batch_size, seed, threads, oof_class_weight)
    result = sample_experts(SampleConfig(labels=labels, out=out, fraction=fraction, strategy=strategy,
                                         stratify=stratify, by=by, seed=seed, crossval=crossval))
    if result.warning:
        warn(result.warning)
    per = ", ".join(f"{k}={v}" for k, v in result.per_label.items())
    say(f"sample-experts: {result.n_sampled} of {result.n_rows} items ({per}) -> {result.out}")


def merge_experts_cmd(
    labels: Path = typer.Option(..., "--labels", help="labels.jsonl written by `llm2edge label`."),
    reviewed: Path = typer.Option(..., "--reviewed", help="Annotated review.csv, the folder sample-experts "
                                  "wrote, or a Label Studio export (JSON, JSON_MIN, CSV or TSV)."),
    out: Path = typer.Option(..., "--out", help="Merged labels.jsonl to write."),
    simulate_from: Path | None = typer.Option(None, "--simulate-from",
                                                 help="Gold file: fill unreviewed sampled items from it."),
    gold_id_col: str | None = typer.Option(None, "--gold-id-col", help="Id column of the gold file "
                                              "(default: join by the stable row id, then by text)."),
    gold_label_col: str = typer.Option(defaults.LABEL_COL, "--gold-label-col",
                                       help="Label column of the gold file."),
    gold_text_col: str = typer.Option(defaults.TEXT_COL, "--gold-text-col",
                                      help="Text column of the gold file."),
    on_conflict: str = typer.Option(defaults.EXPERT_ON_CONFLICT, "--on-conflict",
                                    help="An item whose annotations "
                                    "disagree: error (list them) | latest (newest created_at; in review.csv "
                                    "the later line) | majority (a tie is an error)."),
    control: str = typer.Option(defaults.EXPERT_CONTROL, "--control",
                                help="The Label Studio Choices control that "
                                "holds the label (llm2edge's config names it 'label')."),
    seed: int = typer.Option(defaults.SEED, "--seed", help="Seed of the random sample the expert sample's "
                             "LLM error rate is compared with (with --simulate-from)."),
    threads: int | None = no_model_threads_option(),
) -> None:
    """Merge expert labels into labels.jsonl (`source: expert`, one-hot probabilities)."""
    require("hub")
    from llm2edge.hub.curate.experts import MergeConfig, merge_experts

    result = merge_experts(MergeConfig(labels=labels, reviewed=reviewed, out=out, simulate_from=simulate_from,
                                       gold_id_col=gold_id_col, gold_label_col=gold_label_col,
                                       gold_text_col=gold_text_col, on_conflict=on_conflict,
                                       control=control, seed=seed))
    say(f"merge-experts: {result.summary()} (report: {result.report})")


def soft_labels_cmd(
    labels: Path = typer.Option(..., "--labels", help="labels.jsonl (LLM or merged)."),
    out: Path = typer.Option(..., "--out", help="labels.jsonl with normalized `probs` to write."),
    smoothing: float = typer.Option(defaults.SOFT_SMOOTHING, "--smoothing",
                                    help="Label smoothing of expert (one-hot) rows."),
    temperature: float = typer.Option(defaults.SOFT_TEMPERATURE, "--temperature",
                                      help="Sharpen (<1) or flatten (>1) LLM probs."),
    source: str = typer.Option(defaults.SOFT_FROM, "--from", help="llm (the file's probs) | crossval "
                               "(out-of-fold probabilities of a model on student embeddings) | mix (their "
                               "average)."),
    folds: int = _folds_option(),
    model: str | None = _model_option(),
    max_length: int = _max_length_option(),
    batch_size: int = _batch_size_option(),
    seed: int = typer.Option(defaults.SEED, "--seed", help="Seed of the crossval folds."),
    oof_class_weight: str = _class_weight_option(),
    threads: int | None = threads_option("Torch threads for the crossval embeddings"),
) -> None:
    """Normalize each row's label distribution to sum to 1, for `llm2edge train --soft`."""
    require("hub")
    from llm2edge.hub.curate.soft import soft_labels_file

    result = soft_labels_file(labels, out, smoothing=smoothing, temperature=temperature, source=source,
                              crossval=_crossval(folds, model, max_length, batch_size, seed, threads,
                                                 oof_class_weight))
    say(f"soft-labels: wrote {result.rows} rows to {result.out} from {result.source} probabilities "
        f"(skipped {result.skipped_error} rows with an error)")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("curate")(curate_cmd)
    app.command("sample-experts")(sample_experts_cmd)
    app.command("merge-experts")(merge_experts_cmd)
    app.command("soft-labels")(soft_labels_cmd)
