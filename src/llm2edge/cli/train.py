"""`llm2edge train`: fine-tune a student classifier on labels."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge import defaults
from llm2edge.cli.options import threads_option
from llm2edge.console import say


def train(
    data: Path = typer.Option(..., "--data", "-d", help="Training data (csv, jsonl, parquet)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model folder to write (Hugging Face layout)."),
    eval_data: Path | None = typer.Option(None, "--eval", help="Gold-labelled data to evaluate on."),
    text_col: str = typer.Option(defaults.TEXT_COL, "--text-col", help="Column holding the text."),
    label_col: str = typer.Option(defaults.LABEL_COL, "--label-col", help="Column holding the label."),
    model: str | None = typer.Option(None, "--model", "-m",
                                     help="Student: hub id or local folder (default: packaged MiniLM-L6)."),
    student: str = typer.Option(defaults.STUDENT, "--student",
                                help="transformer (fine-tune --model) or static (a token table distilled "
                                     "from --model, a local folder, plus a linear head: ~50x faster, a few "
                                     "points less accurate)."),
    dims: int = typer.Option(defaults.STATIC_DIMS, "--dims",
                             help="static: width of the distilled token table."),
    epochs: int = typer.Option(defaults.TRAIN_EPOCHS, "--epochs", help="Passes over the training data."),
    min_steps: int = typer.Option(defaults.TRAIN_MIN_STEPS, "--min-steps",
                                  help="Fewest optimizer steps: on small sets epochs are raised to reach "
                                       "them (at most --max-epochs); 0: exactly --epochs."),
    max_epochs: int = typer.Option(defaults.TRAIN_MAX_EPOCHS, "--max-epochs",
                                   help="The most epochs --min-steps may raise a run to."),
    best_by: str = typer.Option(defaults.TRAIN_BEST_BY, "--best-by",
                                help="Weights kept: macro_f1 (the best epoch on the held-back slice) or "
                                     "last."),
    on_collapse: str = typer.Option(defaults.TRAIN_ON_COLLAPSE, "--on-collapse",
                                    help="When the fine-tuned student gives one label to >= 95% of the "
                                         "held-back slice (the training labels: less): head (a head on the "
                                         "frozen encoder instead) or keep."),
    max_length: int = typer.Option(defaults.MAX_LENGTH, "--max-length",
                                   help="Tokens per text (longer texts are truncated)."),
    batch_size: int = typer.Option(defaults.TRAIN_BATCH_SIZE, "--batch-size",
                                   help="Examples per batch (per process)."),
    lr: float = typer.Option(defaults.TRAIN_LR, "--lr",
                             help="Peak learning rate (AdamW, linear decay, 10% warm-up)."),
    seed: int = typer.Option(defaults.TRAIN_SEED, "--seed",
                             help="Seed for init, shuffling and the validation slice."),
    freeze_encoder: bool = typer.Option(False, "--freeze-encoder",
                                        help="Train only the classification head on frozen embeddings."),
    soft: bool = typer.Option(False, "--soft", help="Train on the 'probs' distributions of labels.jsonl."),
    class_weight: str = typer.Option(defaults.CLASS_WEIGHT, "--class-weight",
                                     help="Loss weights per class: auto (balanced when the labels are "
                                          "skewed), balanced (n / (k * n_c)) or none."),
    threads: int | None = threads_option("Torch threads per process"),
    no_resume: bool = typer.Option(False, "--no-resume",
                                   help="Discard OUT/checkpoints (last epoch kept) and start over."),
    grad_accum: int = typer.Option(defaults.GRAD_ACCUM, "--grad-accum", help="Batches per optimizer step."),
    unlabeled: Path | None = typer.Option(None, "--unlabeled",
                                          help="Unlabeled texts from the same stream (csv, jsonl, parquet, "
                                               "or a folder of them): the student also learns from them."),
    unlabeled_text_col: str = typer.Option(defaults.TEXT_COL, "--unlabeled-text-col",
                                           help="Column holding the text in --unlabeled."),
    pool_method: str = typer.Option(defaults.POOL_METHOD, "--pool-method",
                                    help="How pool rows get targets: self (self-training with per-class "
                                         "quotas) or oof (the out-of-fold models of the teacher's labels)."),
    pool_rounds: int = typer.Option(defaults.POOL_ROUNDS, "--pool-rounds",
                                    help="Self-training: labeling passes over the pool."),
    pool_ratio: float = typer.Option(defaults.POOL_RATIO, "--pool-ratio",
                                     help="Most pool rows kept per labeled training row."),
    pool_noise: float = typer.Option(defaults.POOL_NOISE, "--pool-noise",
                                     help="Self-training: feature dropout while the head refits (Noisy "
                                          "Student)."),
    pool_chunk_size: int = typer.Option(defaults.POOL_CHUNK_SIZE, "--pool-chunk-size",
                                        help="Pool rows read, embedded and cached per chunk."),
    pool_check_folds: int = typer.Option(defaults.POOL_CHECK_FOLDS, "--pool-check-folds",
                                         help="Guard: use the pool only if a frozen-encoder head keeps its "
                                              "agreement with the teacher in this many folds (0: off)."),
) -> None:
    """Fine-tune a student classifier; resumes from the last epoch checkpoint after a crash."""
    from llm2edge.extras import require

    require("hub")
    from llm2edge.hub.train import PoolConfig, TrainConfig, metrics_table
    from llm2edge.hub.train import train as run_training

    result = run_training(TrainConfig(
        data=data, out=out, eval_data=eval_data, text_col=text_col, label_col=label_col, model=model,
        epochs=epochs, max_length=max_length, batch_size=batch_size, lr=lr, seed=seed,
        freeze_encoder=freeze_encoder, soft_labels=soft, class_weight=class_weight, threads=threads,
        student=student, dims=dims, min_steps=min_steps, max_epochs=max_epochs, best_by=best_by,
        on_collapse=on_collapse, resume=not no_resume, grad_accum=grad_accum, unlabeled=unlabeled,
        unlabeled_text_col=unlabeled_text_col,
        pool=PoolConfig(method=pool_method, rounds=pool_rounds, ratio=pool_ratio, noise=pool_noise,
                        chunk_size=pool_chunk_size, check_folds=pool_check_folds)))
    if not result.main_process:
        return
    if result.metrics is not None:
        print(metrics_table(result.metrics))
    resumed = f", resumed after epoch {result.resumed_from_epoch}" if result.resumed_from_epoch else ""
    say(f"llm2edge: trained {', '.join(result.labels)} in {result.seconds:.1f} s "
        f"({result.examples_per_second:.1f} examples/s{resumed}) -> {result.out}")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("train")(train)
