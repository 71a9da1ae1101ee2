"""What a training run is asked to do (TrainConfig) and what it produced (TrainResult)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.checks import at_least, check_max_length, check_threads, fraction, one_of, positive
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
class PoolConfig:
    """How a student learns from unlabeled text (`train --unlabeled`, an experiment's `+pool`); checked
    when built. The pool's rows get targets from a linear model on the frozen encoder's embeddings of the
    teacher's labels (hub.train.pool), then train the student beside the labeled rows."""

    #: "self": self-training (label the pool, keep the most confident rows under per-class quotas, refit,
    #: `rounds` passes); "oof": the mean of the k out-of-fold models of the teacher's labels, one pass.
    method: str = POOL_METHOD
    #: Labeling passes of self-training (a refit on the labeled + kept pool rows between passes).
    rounds: int = POOL_ROUNDS
    #: Most pool rows kept per labeled training row; the budget is split into per-class quotas in
    #: proportion to the teacher's label shares.
    ratio: float = POOL_RATIO
    #: Noisy Student: dropout on the frozen features while the self-training head refits (0: none).
    noise: float = POOL_NOISE
    #: Pool rows read, embedded and cached per chunk (the user cache's pool/ folder).
    chunk_size: int = POOL_CHUNK_SIZE
    #: The guard against confirmation bias: k-fold over the labeled rows, the pool is used only if a head
    #: trained with it agrees with the teacher on the held folds at least as often as one without it
    #: (less `check_tolerance`); 0: no check.
    check_folds: int = POOL_CHECK_FOLDS
    #: How much agreement with the teacher (a share) the pool may cost in the check.
    check_tolerance: float = POOL_CHECK_TOLERANCE

    def __post_init__(self) -> None:
        one_of("pool method", self.method, POOL_METHODS)
        at_least("pool rounds", self.rounds)
        positive("pool ratio", self.ratio)
        fraction("pool noise", self.noise, closed=False)
        at_least("pool chunk_size", self.chunk_size)
        if self.check_folds != 0:
            at_least("pool check_folds", self.check_folds, 2)
        fraction("pool check_tolerance", self.check_tolerance)


@dataclass(kw_only=True)
class TrainConfig:
    """Settings of one fine-tuning run (setfit-style, checked when built); paths may be str or Path."""

    #: Training data (csv, jsonl, parquet): hard labels, or `probs` distributions with soft_labels.
    data: str | Path
    #: Model folder to write (Hugging Face layout, plus train_meta.json, validation.csv, checkpoints/).
    out: str | Path
    #: Gold-labelled data to evaluate on after training (OUT/metrics.json); None: no evaluation.
    eval_data: str | Path | None = None
    #: Column holding the text.
    text_col: str = TEXT_COL
    #: Column holding the label.
    label_col: str = LABEL_COL
    #: Column holding a stable id (None: row number + text hash).
    id_col: str | None = None
    #: Hub id or local folder; None: the packaged all-MiniLM-L6-v2. A static student is distilled from it
    #: (a local folder only).
    model: str | None = None
    #: "transformer": fine-tune `model`; "static": distil a token table from `model` (cached), train a
    #: linear head on its mean vectors for head_epochs at head_lr (epochs, lr, grad_accum are not used).
    student: str = STUDENT
    #: Width of the static student's table (PCA); at most the source model's hidden size.
    dims: int = STATIC_DIMS
    #: Passes over the training data.
    epochs: int = TRAIN_EPOCHS
    #: Fewest optimizer steps: on a small set the epochs are raised until the run takes at least this many
    #: (at most max_epochs); 0 runs exactly `epochs` (the behaviour before issue 10).
    min_steps: int = TRAIN_MIN_STEPS
    #: The most epochs min_steps may raise a run to (never below `epochs`).
    max_epochs: int = TRAIN_MAX_EPOCHS
    #: The weights kept: "macro_f1" (the epoch with the best macro-F1 on the held-back slice; the last
    #: epoch without a slice) or "last".
    best_by: str = TRAIN_BEST_BY
    #: When the fine-tuned weights give one label to >= 95% of the held-back slice while the training labels
    #: give it less (`guard.fallback_reason`): "head" replaces them with a head trained on the frozen
    #: pretrained encoder (head_epochs at head_lr; `fallback` in train_meta.json and metrics.json); "keep"
    #: keeps them (the warning and `collapsed` remain).
    on_collapse: str = TRAIN_ON_COLLAPSE
    #: Tokens per text (longer texts are truncated); written to train_meta.json, then the bundle manifest.
    max_length: int = MAX_LENGTH
    #: Examples per batch (per process).
    batch_size: int = TRAIN_BATCH_SIZE
    #: Peak learning rate (AdamW, linear decay after warm-up).
    lr: float = TRAIN_LR
    #: AdamW weight decay.
    weight_decay: float = 0.01
    #: Share of the optimizer steps spent warming the learning rate up.
    warmup_ratio: float = 0.1
    #: Gradient clipping norm.
    max_grad_norm: float = 1.0
    #: Seed of initialization, shuffling and the validation slice.
    seed: int = TRAIN_SEED
    #: Share of the data held back from training, written to OUT/validation.csv for export.
    val_fraction: float = 0.1
    #: At most this many validation rows.
    val_max_rows: int = 500
    #: Train only the classification head on cached encoder outputs.
    freeze_encoder: bool = False
    #: Epochs of head training with freeze_encoder (seconds, not minutes).
    head_epochs: int = 100
    #: Learning rate of head training with freeze_encoder.
    head_lr: float = 1e-3
    #: Targets from the `probs` field ({label: p}) instead of the label column.
    soft_labels: bool = False
    #: "balanced": weight class c by n / (k * n_c) in the loss (sklearn's rule); "none": no weights;
    #: "auto": balanced when the labels are skewed (small_data.AUTO_SKEW_RATIO), else none.
    class_weight: str = CLASS_WEIGHT
    #: Torch threads per process; None: `resolve_threads` (the CPUs this process may use, 1 per process
    #: under accelerate launch / torchrun).
    threads: int | None = None
    #: Label order; None: sorted unique training labels.
    labels: list[str] | None = None
    #: Continue from OUT/checkpoints when their fingerprint matches; False discards them.
    resume: bool = True
    #: Batches per optimizer step.
    grad_accum: int = GRAD_ACCUM
    #: Show progress bars on stderr.
    progress: bool = PROGRESS
    #: Unlabeled texts from the same stream (a CSV/JSONL/Parquet file or a folder of them): the student
    #: also learns from them (`pool`); None: the labeled rows only.
    unlabeled: str | Path | None = None
    #: Column holding the text in the unlabeled pool.
    unlabeled_text_col: str = TEXT_COL
    #: How the pool is used (method, rounds, budget, noise, chunk size).
    pool: PoolConfig = field(default_factory=PoolConfig)

    def __post_init__(self) -> None:
        """ConfigError on settings that cannot work (before anything heavy is loaded)."""
        for name in ("epochs", "batch_size", "grad_accum", "head_epochs", "val_max_rows"):
            at_least(name, getattr(self, name))
        check_max_length(self.max_length)
        positive("lr", self.lr)
        positive("head_lr", self.head_lr)
        at_least("weight_decay", self.weight_decay, 0)
        positive("max_grad_norm", self.max_grad_norm)
        fraction("warmup_ratio", self.warmup_ratio, closed=False)
        fraction("val_fraction", self.val_fraction, closed=False)
        one_of("class_weight", self.class_weight, CLASS_WEIGHTS)
        one_of("best_by", self.best_by, BEST_BY)
        one_of("on_collapse", self.on_collapse, ON_COLLAPSE)
        at_least("min_steps", self.min_steps, 0)
        at_least("max_epochs", self.max_epochs)
        one_of("student", self.student, STUDENTS)
        at_least("dims", self.dims, 2)
        check_threads(self.threads)
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ConfigError(f"labels has duplicates: {self.labels}")
        if isinstance(self.pool, dict):  # from a TOML table or JSON
            self.pool = PoolConfig(**self.pool)
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
