"""The experiment's parts as validated dataclasses: data sets, labelers, students, curation, the grid.

`config` reads them from a TOML file; every field is documented here and checked in `__post_init__`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from llm2edge.checks import at_least, check_threads, fraction, one_of
from llm2edge.defaults import (
    CURATE_FILTER_BY,
    CURATE_FOLDS,
    CURATE_PROBS,
    EXPERT_BY,
    EXPERT_FRACTION,
    LABEL_BACKEND,
    LABEL_COL,
    OOF_CLASS_WEIGHT,
    OOF_CLASS_WEIGHTS,
    QUANTIZE,
    SEED,
    SHOTS,
    SOFT_SMOOTHING,
    STUDENT,
    TEXT_COL,
)
from llm2edge.errors import ConfigError
from llm2edge.hub.train.config import PoolConfig, TrainConfig
from llm2edge.params import default_of, has_default

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


#: TrainConfig fields the experiment sets itself (the run's files and folders, its seed, the intervention's
#: soft targets, the label order, the [pool] table, progress, multi_label from the data set's task): not a
#: student's to set.
RUN_FIELDS = frozenset({"data", "out", "eval_data", "text_col", "label_col", "id_col", "seed", "soft_labels",
                        "labels", "progress", "resume", "unlabeled", "unlabeled_text_col", "pool",
                        "multi_label"})

#: The grid's own training settings where they are not `llm2edge train`'s (epochs 2 and lr 5e-5: the grid's
#: measured settings, fewer epochs to keep it short) or were fixed before train's could move (val_fraction,
#: head_epochs): every committed run was trained with these.
GRID_TRAIN = {"epochs": 2, "lr": 5e-5, "val_fraction": 0.1, "head_epochs": 100}

#: The training settings a student had before it took any TrainConfig field: always in a run's cache key
#: (with their grid values), so the committed runs keep their keys. Any other TrainConfig field entered the
#: grid later: it enters the key only when set to something other than train's default.
KEY_TRAIN_FIELDS = ("model", "dims", "epochs", "max_length", "batch_size", "lr", "class_weight", "min_steps",
                    "max_epochs", "best_by", "on_collapse", "val_fraction", "freeze_encoder", "head_epochs")


def _train_defaults() -> dict[str, Any]:
    """TrainConfig's defaults of the fields a student may set (RUN_FIELDS, `student` and `threads` left
    out)."""
    return {f.name: default_of(f) for f in fields(TrainConfig)
            if f.name not in RUN_FIELDS and f.name not in ("student", "threads") and has_default(f)}


@dataclass(frozen=True, init=False)
class StudentSpec:
    """A student: its kind, its threads and its training settings, any TrainConfig field (validated by
    TrainConfig itself) over the grid's defaults (GRID_TRAIN, then train's): a new `llm2edge train`
    parameter is a student key in experiment TOML as it is. The settings read as attributes
    (`spec.max_length`)::

        StudentSpec(name="minilm", max_length=64, batch_size=32, weight_decay=0.0)
    """

    #: Name of the student (a folder name in the output).
    name: str
    #: "transformer" (fine-tune), "static" (`train --student static`) or "head" (STUDENT_KINDS).
    student: str
    #: Torch threads; None: the experiment's `threads`, else `resolve_threads`.
    threads: int | None
    #: Every training setting of the student: the given ones over GRID_TRAIN over TrainConfig's defaults.
    train: dict[str, Any]

    def __init__(self, *, name: str, student: str = STUDENT, threads: int | None = None,
                 train: Mapping[str, Any] | None = None, **settings: Any) -> None:
        defaults = _train_defaults()
        given = {**(train or {}), **settings}
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)} (known: "
                              f"{', '.join(sorted(self.table_keys()))})")
        one_of("student", student, STUDENT_KINDS)
        check_threads(threads)
        resolved = {**defaults, **GRID_TRAIN, **given}
        # TrainConfig checks the settings (a "head" student is checked as train's default kind)
        TrainConfig(data="", out="", student=STUDENT if student == "head" else student, **resolved)
        for key, value in (("name", name), ("student", student), ("threads", threads), ("train", resolved)):
            object.__setattr__(self, key, value)

    def __getattr__(self, name: str) -> Any:
        """A training setting (`spec.max_length`), as TrainConfig would be given it."""
        if name.startswith("__") or name == "train":
            raise AttributeError(name)
        try:
            return self.train[name]
        except KeyError:
            raise AttributeError(f"StudentSpec has no attribute {name!r}") from None

    @classmethod
    def table_keys(cls) -> set[str]:
        """The keys a student table may hold: its own and every TrainConfig field it may set."""
        return {"name", "student", "threads", *_train_defaults()}

    def train_kwargs(self) -> dict[str, Any]:
        """The TrainConfig keyword arguments of this student's settings (its kind included, except "head",
        which is not train's)."""
        kind = {} if self.student == "head" else {"student": self.student}
        return {**self.train, **kind}


def student_key(spec: StudentSpec) -> dict[str, Any]:
    """The student as it enters a run's cache key (see KEY_TRAIN_FIELDS)."""
    defaults = _train_defaults()
    key = {"name": spec.name, "student": spec.student, "threads": spec.threads}
    key.update({name: spec.train[name] for name in KEY_TRAIN_FIELDS})
    key.update({name: value for name, value in spec.train.items()
                if name not in KEY_TRAIN_FIELDS and value != defaults[name]})
    return key


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
