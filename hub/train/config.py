"""What a training run is asked to do (TrainConfig) and what it produced (TrainResult)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm2edge.errors import TrainError
from llm2edge.hashing import digest

#: The JSONL field that holds a soft label distribution {label: p} (the labels.jsonl contract).
PROBS_FIELD = "probs"
#: Accepted values of TrainConfig.class_weight.
CLASS_WEIGHTS = ("none", "balanced")


@dataclass(kw_only=True)
class TrainConfig:
    """Settings of one fine-tuning run (setfit-style); paths may be str or Path."""

    data: str | Path
    out: str | Path
    eval_data: str | Path | None = None
    text_col: str = "text"
    label_col: str = "label"
    id_col: str | None = None
    model: str | None = None  # hub id or local folder; None: the packaged all-MiniLM-L6-v2
    epochs: int = 3
    max_length: int = 64
    batch_size: int = 32
    lr: float = 1e-4  # measured on MiniLM-L6, 540 rows x 3 epochs: 1e-4 beat 5e-5 on 3 of 3 seeds
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 42
    val_fraction: float = 0.1  # held back from training, written to OUT/validation.csv for export
    val_max_rows: int = 500
    freeze_encoder: bool = False  # train only the classification head on cached encoder outputs
    head_epochs: int = 100  # epochs of head training with freeze_encoder (seconds, not minutes)
    head_lr: float = 1e-3
    soft_labels: bool = False  # targets from the `probs` field ({label: p}) instead of the label column
    class_weight: str = "none"  # "balanced": weight class c by n / (k * n_c) in the loss (sklearn's rule)
    threads: int | None = None  # torch threads per process; None: available CPUs / local processes
    labels: list[str] | None = None  # label order; None: sorted unique training labels
    resume: bool = True
    grad_accum: int = 1
    progress: bool = True

    def check(self) -> None:
        """Raise TrainError on settings that cannot work (before anything heavy is loaded)."""
        positive = {"epochs": self.epochs, "max_length": self.max_length, "batch_size": self.batch_size,
                    "grad_accum": self.grad_accum, "head_epochs": self.head_epochs}
        for name, value in positive.items():
            if int(value) < 1:
                raise TrainError(f"{name} must be at least 1 (got {value})")
        if self.lr <= 0 or self.head_lr <= 0:
            raise TrainError(f"learning rates must be positive (lr={self.lr}, head_lr={self.head_lr})")
        if not 0 <= self.warmup_ratio < 1:
            raise TrainError(f"warmup_ratio must be in [0, 1) (got {self.warmup_ratio})")
        if not 0 <= self.val_fraction < 1:
            raise TrainError(f"val_fraction must be in [0, 1) (got {self.val_fraction})")
        if self.class_weight not in CLASS_WEIGHTS:
            raise TrainError(f"class_weight must be one of {', '.join(CLASS_WEIGHTS)} "
                             f"(got '{self.class_weight}')")
        if self.threads is not None and self.threads < 1:
            raise TrainError(f"threads must be at least 1 (got {self.threads})")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise TrainError(f"labels has duplicates: {self.labels}")
        out = Path(self.out)
        if out.exists() and not out.is_dir():
            raise TrainError(f"{out}: --out must be a folder, but a file with that name exists")


def fingerprint(config: TrainConfig, *, model: str, data_sha256: str, num_processes: int) -> str:
    """A short hash of everything that changes the trained weights (a checkpoint resumes only on a match)."""
    keys = ("text_col", "label_col", "epochs", "max_length", "batch_size", "lr", "weight_decay",
            "warmup_ratio", "max_grad_norm", "seed", "val_fraction", "val_max_rows", "freeze_encoder",
            "head_epochs", "head_lr", "soft_labels", "labels", "grad_accum")
    payload: dict[str, Any] = {k: getattr(config, k) for k in keys}
    if config.class_weight != "none":  # only when set: checkpoints made before the option still match
        payload["class_weight"] = config.class_weight
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
