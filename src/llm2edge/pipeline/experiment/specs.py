"""The experiment's parts as validated dataclasses: data sets, labelers, students, curation, the grid.

`config` reads them from a TOML file; every field is documented here and checked in `__post_init__`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.checks import at_least, check_max_length, check_threads, fraction, one_of, positive
from llm2edge.defaults import (
    CLASS_WEIGHT,
    CURATE_FILTER_BY,
    CURATE_FOLDS,
    CURATE_PROBS,
    EXPERT_BY,
    EXPERT_FRACTION,
    LABEL_BACKEND,
    LABEL_COL,
    MAX_LENGTH,
    OOF_CLASS_WEIGHT,
    OOF_CLASS_WEIGHTS,
    QUANTIZE,
    SEED,
    SHOTS,
    SOFT_SMOOTHING,
    STATIC_DIMS,
    STUDENT,
    TEXT_COL,
    TRAIN_BATCH_SIZE,
    TRAIN_BEST_BY,
    TRAIN_MAX_EPOCHS,
    TRAIN_MIN_STEPS,
    TRAIN_ON_COLLAPSE,
)
from llm2edge.errors import ConfigError
from llm2edge.hub.train.config import PoolConfig

#: The building blocks of an intervention; combine them with '+', e.g. "experts_confidence+soft".
#: experts_crossval ranks items by the out-of-fold probability of their LLM label (works for bare answers).
#: "pool" (last, e.g. "naive+pool") also learns from the data set's unlabeled pool (experiment.unlabeled).
STEPS = ("naive", "cleanlab", "experts_confidence", "experts_random", "experts_crossval", "soft", "pool")
#: The expert steps (one per intervention).
EXPERT_STEPS = ("experts_confidence", "experts_random", "experts_crossval")
#: Students: fine-tune the encoder ("transformer"), a static table + head (`train --student static`), or
#: "head": a linear head on cached frozen sentence embeddings (fast, scored in numpy, not exported).
STUDENT_KINDS = ("transformer", "static", "head")
#: Where soft targets come from (curate.soft): the LLM's probs, out-of-fold probabilities, or their mean.
SOFT_FROM = ("llm", "crossval", "mix")
EVALUATE = ("edge", "torch")
#: What a data set, labeler or student name may be (it becomes a folder name).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """One data set: where its train/test files are, the labeling task, per-item fields, sizes."""

    #: Name of the data set (a folder name in the output).
    name: str
    #: Labeling task (shipped name or file).
    task: str
    #: Train split (csv/jsonl/parquet with text and gold label).
    train: Path
    #: Test split.
    test: Path
    #: Column holding the text.
    text_col: str = TEXT_COL
    #: Column holding the gold label.
    label_col: str = LABEL_COL
    #: Per-item columns the task's prompt uses (e.g. "target").
    fields: tuple[str, ...] = ()
    #: The label set, when there is no task file (recorded labelers need no prompt); () : the task's.
    labels: tuple[str, ...] = ()
    #: What the student reads: a format string over `text` and the fields (e.g. "{target}: {text}").
    student_template: str = "{text}"
    #: Sample at most this many train items; None: all.
    train_limit: int | None = None
    #: Sample at most this many test items; None: all.
    test_limit: int | None = None
    #: With `folds`: use at most this many labeled rows (a seeded sample); None: all.
    limit: int | None = None
    #: Folder of recorded answers for this data set (overrides the labeler's `recorded`).
    recorded: Path | None = None
    #: Unlabeled texts from the same source (the `+pool` interventions); None: the data set has no pool
    #: and its `+pool` runs are left out.
    unlabeled: Path | None = None
    #: Column holding the text in the pool.
    unlabeled_text_col: str = TEXT_COL
    #: Drop pool rows whose text is a labeled row (counted), e.g. a train.csv whose unanswered rows are the
    #: pool; False: such a row is leakage, a DataError naming it.
    unlabeled_drop_labeled: bool = False

    def __post_init__(self) -> None:
        for name in ("train_limit", "test_limit", "limit"):
            value = getattr(self, name)
            if value is not None:
                at_least(name, value)


@dataclass(frozen=True, kw_only=True)
class LabelerSpec:
    """An LLM labeler: backend, model, few-shot count, contextual calibration."""

    #: Name of the labeler (a folder name in the output).
    name: str
    #: "hf" (in-process) or "openai" (an OpenAI-compatible server).
    backend: str = LABEL_BACKEND
    #: LLM id, folder or GGUF; None: the packaged SmolLM2-135M-Instruct.
    model: str | None = None
    #: OpenAI-compatible server URL (openai backend).
    base_url: str | None = None
    #: Few-shot examples in each prompt.
    shots: int = SHOTS
    #: Contextual calibration of the label scores.
    calibrate: bool = False
    #: Reason first, then score the labels.
    cot: bool = False
    #: Items per backend call (8: the grid's measured setting on 2 cores, below label's default).
    batch_size: int = 8
    #: Torch threads; None: the experiment's `threads`, else `resolve_threads`.
    threads: int | None = None
    #: A folder of recorded answers: the labels are read from <recorded>/<dataset>__<model>.csv (column
    #: `recorded_label_col`, gold in `recorded_gold_col`; `csv_split` says train or test), no LLM runs.
    recorded: Path | None = None
    #: Column of the recorded LLM answer.
    recorded_label_col: str = "llm_label"
    #: Column of the recorded gold label.
    recorded_gold_col: str = "gold_label"

    def __post_init__(self) -> None:
        if self.recorded is not None and not self.model:
            raise ConfigError("a recorded labeler needs `model`: the <model> of <dataset>__<model>.csv")
        one_of("backend", self.backend, ("hf", "openai"))
        at_least("shots", self.shots, 0)
        at_least("batch_size", self.batch_size)
        check_threads(self.threads)


@dataclass(frozen=True, kw_only=True)
class StudentSpec:
    """A student: the encoder and its training settings."""

    #: Name of the student (a folder name in the output).
    name: str
    #: Encoder id or folder; None: the packaged all-MiniLM-L6-v2.
    model: str | None = None
    #: "transformer" (fine-tune), "static" (`train --student static`) or "head" (STUDENT_KINDS).
    student: str = STUDENT
    #: static: width of the distilled token table.
    dims: int = STATIC_DIMS
    #: Training epochs (2: the grid's setting, fewer than train's default to keep the grid short).
    epochs: int = 2
    #: Tokens per text, for training and for cleanlab's embeddings.
    max_length: int = MAX_LENGTH
    #: Examples per batch.
    batch_size: int = TRAIN_BATCH_SIZE
    #: Peak learning rate (5e-5: the grid's measured setting; `llm2edge train` defaults to 1e-4).
    lr: float = 5e-5
    #: Loss weights per class: auto, balanced or none (as `llm2edge train --class-weight`).
    class_weight: str = CLASS_WEIGHT
    #: Fewest optimizer steps of a fine-tuning run (as `train --min-steps`; 0: exactly `epochs`).
    min_steps: int = TRAIN_MIN_STEPS
    #: The most epochs min_steps may raise a run to.
    max_epochs: int = TRAIN_MAX_EPOCHS
    #: The weights kept: "macro_f1" (best epoch on the held-back slice) or "last".
    best_by: str = TRAIN_BEST_BY
    #: A fine-tuned student collapsed on the held-back slice: "head" (a head on the frozen encoder instead)
    #: or "keep" (as `train --on-collapse`).
    on_collapse: str = TRAIN_ON_COLLAPSE
    #: Share of the training rows held back (best-epoch selection, export validation); 0: none.
    val_fraction: float = 0.1
    #: Train only the classification head on frozen embeddings.
    freeze_encoder: bool = False
    #: Head epochs with freeze_encoder.
    head_epochs: int = 100
    #: Torch threads; None: the experiment's `threads`, else `resolve_threads`.
    threads: int | None = None

    def __post_init__(self) -> None:
        one_of("student", self.student, STUDENT_KINDS)
        one_of("class_weight", self.class_weight, ("auto", "none", "balanced"))
        one_of("best_by", self.best_by, ("macro_f1", "last"))
        one_of("on_collapse", self.on_collapse, ("head", "keep"))
        at_least("min_steps", self.min_steps, 0)
        fraction("val_fraction", self.val_fraction, closed=False)
        for name in ("epochs", "batch_size", "head_epochs", "max_epochs"):
            at_least(name, getattr(self, name))
        check_max_length(self.max_length)
        positive("lr", self.lr)
        check_threads(self.threads)


@dataclass(frozen=True, kw_only=True)
class CurateSpec:
    """How the cleanlab and expert interventions run."""

    #: cleanlab's probabilities: "crossval" or "llm".
    probs: str = CURATE_PROBS
    #: Only "drop" in an experiment (a flag changes no training row).
    action: str = "drop"
    #: Cross-validation folds.
    folds: int = CURATE_FOLDS
    #: cleanlab's find_label_issues filter.
    filter_by: str = CURATE_FILTER_BY
    #: Class weights of the out-of-fold model (cleanlab, experts_crossval, soft from crossval): "none" or
    #: "balanced" (`defaults.OOF_CLASS_WEIGHT`).
    oof_class_weight: str = OOF_CLASS_WEIGHT
    #: Share of the train items sent to (simulated) experts.
    expert_fraction: float = EXPERT_FRACTION
    #: RED-CT: the same expert budget per LLM label.
    stratify: bool = True
    #: The confidence score that picks expert items: "confidence" or "margin".
    by: str = EXPERT_BY
    #: Label smoothing of expert rows in the soft intervention.
    soft_smoothing: float = SOFT_SMOOTHING
    #: Where the soft intervention's targets come from: "llm" (the labels' probs; one-hot for bare
    #: answers), "crossval" (out-of-fold probabilities on frozen student embeddings) or "mix".
    soft_from: str = "llm"

    def __post_init__(self) -> None:
        one_of("probs", self.probs, ("crossval", "llm"))
        if self.action != "drop":
            raise ConfigError(f"action must be 'drop' in an experiment (a flag changes no training row), "
                              f"got {self.action!r}")
        at_least("folds", self.folds, 2)
        fraction("expert_fraction", self.expert_fraction)
        one_of("by", self.by, ("confidence", "margin"))
        one_of("soft_from", self.soft_from, SOFT_FROM)
        one_of("oof_class_weight", self.oof_class_weight, OOF_CLASS_WEIGHTS)
        fraction("soft_smoothing", self.soft_smoothing, closed=False)


#: DatasetSpec fields added after runs were committed, with the value every earlier run had (as below).
LATER_DATASET_FIELDS = {"unlabeled": None, "unlabeled_text_col": TEXT_COL, "unlabeled_drop_labeled": False}

#: CurateSpec fields added after runs were committed, with the value every earlier run had: a run's cache
#: key leaves a field out while it has that value, so the committed runs stay valid (and cached).
LATER_CURATE_FIELDS = {"oof_class_weight": OOF_CLASS_WEIGHT}


def curate_key(spec: CurateSpec) -> dict[str, Any]:
    """The curation settings as they enter a run's cache key (see LATER_CURATE_FIELDS)."""
    return {name: value for name, value in asdict(spec).items()
            if name not in LATER_CURATE_FIELDS or value != LATER_CURATE_FIELDS[name]}


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A whole experiment grid."""

    name: str
    source: str
    datasets: tuple[DatasetSpec, ...]
    labelers: tuple[LabelerSpec, ...]
    students: tuple[StudentSpec, ...]
    interventions: tuple[str, ...]
    curate: CurateSpec = field(default_factory=CurateSpec)
    seed: int = SEED
    #: "edge": export an ONNX bundle and classify with the edge Classifier; "torch": no export.
    evaluate: str = "edge"
    #: Weight format of the exported bundles ("int8" or "none").
    quantize: str = QUANTIZE
    #: Keep each run's model folder and bundle (big); results stay either way.
    keep_models: bool = False
    #: Threads of every stage without its own (export validation, the edge classifier, and labelers and
    #: students whose `threads` is None); None: `resolve_threads` (the CPUs this process may use).
    threads: int | None = None
    #: How the `+pool` interventions use a data set's pool (`[pool]`: method, rounds, ratio, noise).
    pool: PoolConfig = field(default_factory=PoolConfig)
    #: 0: train on the train split, score on the test split. k >= 2: k-fold cross-validation over the
    #: labeled rows (train and test together): every row is scored once by a student trained on the other
    #: folds' LLM labels, and the teacher is scored on the same rows.
    folds: int = 0

    def __post_init__(self) -> None:
        if self.folds != 0:
            at_least("folds", self.folds, 2)
        one_of("evaluate", self.evaluate, EVALUATE)
        one_of("quantize", self.quantize, ("int8", "none"))
        check_threads(self.threads)


def parse_intervention(name: str, where: str = "interventions") -> tuple[str, ...]:
    """The steps of an intervention name ('naive', 'cleanlab+soft', ...), validated."""
    steps = tuple(s.strip() for s in name.split("+") if s.strip())
    if not steps:
        raise ConfigError(f"{where}: empty intervention name")
    for step in steps:
        if step not in STEPS:
            raise ConfigError(f"{where}: unknown intervention step '{step}' in '{name}': use "
                            f"{', '.join(STEPS)} (combine with '+')")
    if "pool" in steps and steps[-1] != "pool":
        raise ConfigError(f"{where}: 'pool' comes last ('{name}')")
    if "naive" in steps and len([s for s in steps if s != "pool"]) > 1:
        raise ConfigError(f"{where}: 'naive' cannot be combined but with 'pool' ('{name}')")
    if len(set(steps)) != len(steps):
        raise ConfigError(f"{where}: a step repeats in '{name}'")
    if sum(step in EXPERT_STEPS for step in steps) > 1:
        raise ConfigError(f"{where}: choose one expert strategy in '{name}'")
    return steps
