"""The options of `llm2edge demo` (DemoConfig, with the full and --quick sizes) and what a run measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.checks import check_max_length, check_threads, one_of, optional_at_least, positive
from llm2edge.defaults import (
    DEMO_BENCH_BUDGET_S,
    DEMO_CALIBRATE,
    DEMO_CLASS_WEIGHT,
    DEMO_CURATE,
    DEMO_EPOCHS,
    DEMO_LR,
    DEMO_OUT,
    DEMO_QUICK_BENCH_BUDGET_S,
    DEMO_QUICK_EPOCHS,
    DEMO_QUICK_TEST_ITEMS,
    DEMO_QUICK_TRAIN_ITEMS,
    DEMO_TASK,
    DEMO_TEST_ITEMS,
    DEMO_TRAIN_ITEMS,
    MAX_LENGTH,
    PROGRESS,
    SEED,
    SHOTS,
)
from llm2edge.metrics import Report

#: The example shipped in the repository (MIT): examples/movie_sentiment/{train,test}.csv, chosen because
#: the embedded teacher does well above the majority class on it (examples/movie_sentiment/README.md).
EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "movie_sentiment"
#: Accepted values of DemoConfig.curate: what cleanlab does with likely label errors, or no curation.
CURATE_CHOICES = ("drop", "flag", "none")


def _given(value: Any, default: Any) -> Any:
    """`value`, or `default` when it is None."""
    return default if value is None else value


@dataclass(kw_only=True)
class DemoConfig:
    """Options of `llm2edge demo` (checked when built); None sizes pick the full or --quick defaults."""

    #: Folder for every stage's output (reused on a rerun).
    out: str | Path = DEMO_OUT
    #: Folder with train.csv and test.csv (text,label); None: the shipped example.
    dataset: str | Path | None = None
    #: Labeling task (name or file) matching the dataset's labels.
    task: str = DEMO_TASK
    #: A tiny run (40 train, 24 test items, head-only training) to check the pipeline.
    quick: bool = False
    #: Threads of every stage and of both timed systems; None: `resolve_threads` (the CPUs this process may
    #: use). On a machine busy with other jobs, 1 is faster (MEASURED.md).
    threads: int | None = None
    #: Train items sampled from train.csv; None: 1200, all of the shipped example's (quick: 40).
    train_items: int | None = None
    #: Test items sampled from test.csv; None: 200 (quick: 24).
    test_items: int | None = None
    #: Few-shot examples from the task in each LLM prompt.
    shots: int = SHOTS
    #: Contextual calibration of the LLM's label scores.
    calibrate: bool = DEMO_CALIBRATE
    #: cleanlab on the LLM labels: "drop", "flag" or "none".
    curate: str = DEMO_CURATE
    #: Student training epochs; None: 2 (quick: 1, head only on frozen embeddings).
    epochs: int | None = None
    #: Student loss weights: "balanced" (the LLM's labels are skewed, e.g. 62% positive) or "none".
    class_weight: str = DEMO_CLASS_WEIGHT
    #: Student learning rate (see llm2edge.defaults.DEMO_LR).
    lr: float = DEMO_LR
    #: Tokens per text the student reads.
    max_length: int = MAX_LENGTH
    #: Timed seconds per system in the bench stage; None: 3 (quick: 0.5).
    bench_budget_s: float | None = None
    #: Seed of the samples, curation folds and training.
    seed: int = SEED
    #: Progress lines on stderr and the table on stdout.
    progress: bool = PROGRESS

    def __post_init__(self) -> None:
        from llm2edge.hub.train.config import CLASS_WEIGHTS  # the hub (torch) is loaded only here

        one_of("curate", self.curate, CURATE_CHOICES)
        one_of("class_weight", self.class_weight, CLASS_WEIGHTS)
        check_threads(self.threads)
        for name in ("train_items", "test_items", "epochs"):
            optional_at_least(name, getattr(self, name))
        optional_at_least("shots", self.shots, 0)
        positive("lr", self.lr)
        check_max_length(self.max_length)
        if self.bench_budget_s is not None:
            positive("bench_budget_s", self.bench_budget_s)

    def sizes(self) -> tuple[int | None, int, int, float]:
        """(train items or None for all, test items, epochs, bench budget) after the quick/full defaults."""
        quick = self.quick
        train = _given(self.train_items, DEMO_QUICK_TRAIN_ITEMS if quick else DEMO_TRAIN_ITEMS)
        test = _given(self.test_items, DEMO_QUICK_TEST_ITEMS if quick else DEMO_TEST_ITEMS)
        epochs = _given(self.epochs, DEMO_QUICK_EPOCHS if quick else DEMO_EPOCHS)
        budget = _given(self.bench_budget_s, DEMO_QUICK_BENCH_BUDGET_S if quick else DEMO_BENCH_BUDGET_S)
        return train, test, epochs, budget


@dataclass
class DemoResult:
    """What the demo measured; `reused` names the stages taken from a previous run."""

    out: Path
    report: Path
    llm_test: Report
    edge_test: Report
    llm_train: Report
    llm_ms: float | None
    edge_ms: float | None
    bundle_mb: float
    seconds: float
    reused: list[str] = field(default_factory=list)
    stages: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
