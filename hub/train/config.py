"""What a training run is asked to do (TrainConfig) and what it produced (TrainResult)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from llm2edge.checks import fraction, off_or_folds, open_fraction_from_zero, positive, token_limit
from llm2edge.defaults import (
    CLASS_WEIGHT,
    GRAD_ACCUM,
    LABEL_COL,
    MAX_LENGTH,
    POOL_CHECK_FOLDS,
    POOL_CHECK_TOLERANCE,
    POOL_CHUNK_SIZE,
    POOL_METHOD,
    POOL_METHODS,
    POOL_NOISE,
    POOL_RATIO,
    POOL_ROUNDS,
    PROGRESS,
    STATIC_DIMS,
    STUDENT,
    TEXT_COL,
    TRAIN_BATCH_SIZE,
    TRAIN_BEST_BY,
    TRAIN_EPOCHS,
    TRAIN_LR,
    TRAIN_MAX_EPOCHS,
    TRAIN_MIN_STEPS,
    TRAIN_ON_COLLAPSE,
    TRAIN_SEED,
)
from llm2edge.errors import ConfigError
from llm2edge.hashing import digest
from llm2edge.params import Checked, check_fields, nested, param, threads_param

#: The JSONL field that holds a soft label distribution {label: p} (the labels.jsonl contract).
PROBS_FIELD = "probs"
#: Accepted values of TrainConfig.class_weight.
CLASS_WEIGHTS = ("auto", "none", "balanced")
#: Accepted values of TrainConfig.best_by.
BEST_BY = ("macro_f1", "last")
#: Accepted values of TrainConfig.on_collapse.
ON_COLLAPSE = ("head", "keep")
#: Accepted values of TrainConfig.student.
STUDENTS = ("transformer", "static")


@dataclass(kw_only=True)
class PoolConfig(Checked):
    """How a student learns from unlabeled text (`train --unlabeled`, an experiment's `+pool`); checked
    when built. The pool's rows get targets from a linear model on the frozen encoder's embeddings of the
    teacher's labels (hub.train.pool), then train the student beside the labeled rows."""

    #: "self": self-training (label the pool, keep the most confident rows under per-class quotas, refit,
    #: `rounds` passes); "oof": the mean of the k out-of-fold models of the teacher's labels, one pass.
    method: str = param(POOL_METHOD, choices=POOL_METHODS, name="pool method",
                        help="How pool rows get targets: self (self-training with per-class quotas) or oof "
                             "(the out-of-fold models of the teacher's labels).")
    #: Labeling passes of self-training (a refit on the labeled + kept pool rows between passes).
    rounds: int = param(POOL_ROUNDS, low=1, name="pool rounds",
                        help="Self-training: labeling passes over the pool.")
    #: The budget is split into per-class quotas in proportion to the teacher's label shares.
    ratio: float = param(POOL_RATIO, check=positive, name="pool ratio",
                         help="Most pool rows kept per labeled training row.")
    noise: float = param(POOL_NOISE, check=open_fraction_from_zero, name="pool noise",
                         help="Self-training: feature dropout while the head refits (Noisy Student).")
    #: Cached in the user cache (cache_dir()/pool/).
    chunk_size: int = param(POOL_CHUNK_SIZE, low=1, name="pool chunk_size",
                            help="Pool rows read, embedded and cached per chunk.")
    #: The guard against confirmation bias: k-fold over the labeled rows, the pool is used only if a head
    #: trained with it agrees with the teacher on the held folds at least as often as one without it (less
    #: `check_tolerance`).
    check_folds: int = param(POOL_CHECK_FOLDS, check=off_or_folds, name="pool check_folds",
                             help="Folds of the check that the pool keeps the student's agreement with the "
                                  "teacher on held-back labeled rows (0: no check).")
    check_tolerance: float = param(POOL_CHECK_TOLERANCE, check=fraction, name="pool check_tolerance",
                                   help="How much agreement with the teacher (a share) the pool may cost in "
                                        "the check.")


@dataclass(kw_only=True)
class TrainConfig:
    """Settings of one fine-tuning run (setfit-style, checked when built); paths may be str or Path."""

    #: Hard labels, or `probs` distributions with soft_labels.
    data: Path | str = param(flags=("--data", "-d"), help="Training data (csv, jsonl, parquet).")
    #: Plus train_meta.json, validation.csv, checkpoints/.
    out: Path | str = param(flags=("--out", "-o"), help="Model folder to write (Hugging Face layout).")
    #: Written to OUT/metrics.json; None: no evaluation.
    eval_data: Path | str | None = param(None, flags=("--eval",), help="Gold-labelled data to evaluate on.")
    text_col: str = param(TEXT_COL, help="Column holding the text.")
    label_col: str = param(LABEL_COL, help="Column holding the label.")
    id_col: str | None = param(None, cli=False, help="Column holding a stable id (None: row number + text "
                                                     "hash).")
    #: A static student is distilled from it (a local folder only).
    model: str | None = param(None, flags=("--model", "-m"),
                              help="Student: hub id or local folder (default: packaged MiniLM-L6).")
    #: "static" trains a linear head on the table's mean vectors for head_epochs at head_lr (epochs, lr,
    #: grad_accum are not used).
    student: str = param(STUDENT, choices=STUDENTS,
                         help="transformer (fine-tune --model) or static (a token table distilled from "
                              "--model, a local folder, plus a linear head: ~50x faster, a few points less "
                              "accurate).")
    #: At most the source model's hidden size.
    dims: int = param(STATIC_DIMS, low=2, help="static: width of the distilled token table.")
    epochs: int = param(TRAIN_EPOCHS, low=1, help="Passes over the training data.")
    #: 0 runs exactly `epochs` (the behaviour before issue 10).
    min_steps: int = param(TRAIN_MIN_STEPS, low=0,
                           help="Fewest optimizer steps: on small sets epochs are raised to reach them (at "
                                "most --max-epochs); 0: exactly --epochs.")
    #: Never below `epochs`.
    max_epochs: int = param(TRAIN_MAX_EPOCHS, low=1, help="The most epochs --min-steps may raise a run to.")
    #: Without a held-back slice, macro_f1 keeps the last epoch.
    best_by: str = param(TRAIN_BEST_BY, choices=BEST_BY,
                         help="Weights kept: macro_f1 (the best epoch on the held-back slice) or last.")
    #: `guard.fallback_reason`; "head" trains on the frozen pretrained encoder (head_epochs at head_lr;
    #: `fallback` in train_meta.json and metrics.json); "keep" keeps the warning and `collapsed`.
    on_collapse: str = param(TRAIN_ON_COLLAPSE, choices=ON_COLLAPSE,
                             help="When the fine-tuned student gives one label to >= 95% of the held-back "
                                  "slice (the training labels: less): head (a head on the frozen encoder "
                                  "instead) or keep.")
    #: Written to train_meta.json, then the bundle manifest.
    max_length: int = param(MAX_LENGTH, check=token_limit,
                            help="Tokens per text (longer texts are truncated).")
    batch_size: int = param(TRAIN_BATCH_SIZE, low=1, help="Examples per batch (per process).")
    lr: float = param(TRAIN_LR, check=positive, help="Peak learning rate (AdamW, linear decay, 10% warm-up).")
    weight_decay: float = param(0.01, low=0, cli=False, help="AdamW weight decay.")
    warmup_ratio: float = param(0.1, check=open_fraction_from_zero, cli=False,
                                help="Share of the optimizer steps spent warming the learning rate up.")
    max_grad_norm: float = param(1.0, check=positive, cli=False, help="Gradient clipping norm.")
    seed: int = param(TRAIN_SEED, help="Seed for init, shuffling and the validation slice.")
    val_fraction: float = param(0.1, check=open_fraction_from_zero, cli=False,
                                help="Share of the data held back from training, written to "
                                     "OUT/validation.csv for export.")
    val_max_rows: int = param(500, low=1, cli=False, help="At most this many validation rows.")
    freeze_encoder: bool = param(False, help="Train only the classification head on frozen embeddings.")
    head_epochs: int = param(100, low=1, cli=False,
                             help="Epochs of head training with freeze_encoder (seconds, not minutes).")
    head_lr: float = param(1e-3, check=positive, cli=False, help="Learning rate of head training.")
    #: Targets from the `probs` field ({label: p}) instead of the label column.
    soft_labels: bool = param(False, flags=("--soft",),
                              help="Train on the 'probs' distributions of labels.jsonl.")
    #: A labels.jsonl whose `label` values are lists is multi-label without it; a CSV/Parquet/JSONL gold
    #: file's `a;b` cells need it (llm2edge.labelsets is the contract). Sigmoid + BCE, per-label thresholds.
    multi_label: bool = param(False, help="Each row's label is a set of labels (cells 'a;b', JSONL lists): "
                                          "one yes/no output per label, thresholds tuned per label.")
    #: "auto": balanced when the labels are skewed (small_data.AUTO_SKEW_RATIO), else none.
    class_weight: str = param(CLASS_WEIGHT, choices=CLASS_WEIGHTS,
                              help="Loss weights per class: auto (balanced when the labels are skewed), "
                                   "balanced (n / (k * n_c)) or none.")
    threads: int | None = threads_param("Torch threads per process")
    #: None: sorted unique training labels.
    labels: list[str] | None = param(None, cli=False, help="Label order.")
    #: Continue from OUT/checkpoints when their fingerprint matches.
    resume: bool = param(True, flags=("--no-resume",), negate=True,
                         help="Discard OUT/checkpoints (last epoch kept) and start over.")
    grad_accum: int = param(GRAD_ACCUM, low=1, help="Batches per optimizer step.")
    progress: bool = param(PROGRESS, cli=False, help="Show progress bars on stderr.")
    #: A CSV/JSONL/Parquet file or a folder of them; None: the labeled rows only.
    unlabeled: Path | str | None = param(None, help="Unlabeled texts from the same stream (csv, jsonl, "
                                                    "parquet, or a folder of them): the student also learns "
                                                    "from them.")
    unlabeled_text_col: str = param(TEXT_COL, help="Column holding the text in --unlabeled.")
    pool: PoolConfig = nested(PoolConfig, prefix="pool-",
                              help="How the pool is used (method, rounds, budget, noise, chunk size).")

    def __post_init__(self) -> None:
        """ConfigError on settings that cannot work (before anything heavy is loaded)."""
        check_fields(self)
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels has duplicates: {self.labels}")
        if self.unlabeled is not None and not Path(self.unlabeled).exists():
            raise ConfigError(f"{self.unlabeled}: --unlabeled names no such file or folder")
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"{out}: --out must be a folder, but a file with that name exists")


def fingerprint(config: TrainConfig, *, model: str, data_sha256: str, num_processes: int,
                pool_digest: str | None = None) -> str:
    """A short hash of everything that changes the trained weights (a checkpoint resumes only on a match)."""
    keys = ("text_col", "label_col", "epochs", "max_length", "batch_size", "lr", "weight_decay",
            "warmup_ratio", "max_grad_norm", "seed", "val_fraction", "val_max_rows", "freeze_encoder",
            "head_epochs", "head_lr", "soft_labels", "labels", "grad_accum")
    payload: dict[str, Any] = {k: getattr(config, k) for k in keys}
    if config.class_weight != "none":  # only when set: checkpoints made before the option still match
        payload["class_weight"] = config.class_weight
    if config.min_steps or config.best_by != "last":  # likewise (issue 10's schedule and selection)
        payload.update(min_steps=config.min_steps, max_epochs=config.max_epochs, best_by=config.best_by)
    if config.multi_label:  # likewise (issue 23)
        payload["multi_label"] = True
    if config.student != "transformer":  # likewise
        payload.update(student=config.student, dims=config.dims)
    if config.unlabeled is not None:  # likewise (issue 22's pool)
        payload.update(unlabeled=pool_digest, unlabeled_text_col=config.unlabeled_text_col,
                       pool=asdict(config.pool))
    payload.update(model=model, data_sha256=data_sha256, num_processes=num_processes)
    return digest(payload)


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced: the model folder, its labels, eval metrics and speed."""

    out: Path
    labels: list[str]
    metrics: dict[str, Any] | None  # the --eval report (OUT/metrics.json), None without eval data
    seconds: float  # training time (model loading and evaluation excluded)
    examples_per_second: float  # training examples processed per second, all processes together
    resumed_from_epoch: int  # 0 for a fresh run
    main_process: bool = True  # False on the other ranks of an `accelerate launch` run
