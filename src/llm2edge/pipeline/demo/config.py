"""The options of `llm2edge demo` (DemoConfig, with the full and --quick sizes) and what a run measured."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from llm2edge.checks import positive, token_limit
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
from llm2edge.errors import ConfigError
from llm2edge.metrics import Report
from llm2edge.params import check_fields, param, threads_param

#: The example shipped in the repository (MIT): examples/movie_sentiment/{train,test}.csv, chosen because
#: the embedded teacher does well above the majority class on it (examples/movie_sentiment/README.md).
EXAMPLE = Path(__file__).resolve().parents[4] / "examples" / "movie_sentiment"
#: Accepted values of DemoConfig.curate: what cleanlab does with likely label errors, or no curation.
CURATE_CHOICES = ("drop", "flag", "none")
#: TrainConfig fields the demo's train stage sets itself (DemoConfig.train cannot).
DEMO_RUN_FIELDS = ("data", "out", "eval_data", "labels", "threads", "freeze_encoder", "resume", "text_col",
                   "label_col", "id_col", "soft_labels")


def _given(value: Any, default: Any) -> Any:
    """`value`, or `default` when it is None."""
    return default if value is None else value


@dataclass(kw_only=True)
class DemoConfig:
    """Options of `llm2edge demo` (checked when built); None sizes pick the full or --quick defaults."""

    #: Reused on a rerun.
    out: Path | str = param(DEMO_OUT, flags=("--out", "-o"), help="Folder for every stage's output.")
    #: None: the shipped example.
    dataset: Path | str | None = param(None, help="Folder with train.csv and test.csv (text,label); default: "
                                                  "the shipped example.")
    task: str = param(DEMO_TASK, help="Labeling task (name or file) matching the dataset.")
    #: 40 train, 24 test items, head-only training.
    quick: bool = param(False, help=f"A tiny run (~{DEMO_QUICK_TRAIN_ITEMS} items) to check the pipeline.")
    #: MEASURED.md.
    threads: int | None = threads_param("Threads of every stage and of both timed systems (on a machine busy "
                                        "with other jobs, 1 is faster)")
    #: Quick: 40.
    train_items: int | None = param(None, low=1, help=f"Train items to label (default {DEMO_TRAIN_ITEMS}).")
    #: Quick: 24.
    test_items: int | None = param(None, low=1, help=f"Test items to score (default {DEMO_TEST_ITEMS}).")
    shots: int = param(SHOTS, low=0, help="Few-shot examples from the task in each LLM prompt.")
    calibrate: bool = param(DEMO_CALIBRATE, flags=("--calibrate/--no-calibrate",),
                            help="Contextual calibration of the LLM's label scores.")
    curate: str = param(DEMO_CURATE, choices=CURATE_CHOICES, help="cleanlab on the LLM labels: drop, flag or "
                                                                  "none.")
    #: Quick: 1, head only on frozen embeddings.
    epochs: int | None = param(None, low=1, help=f"Student training epochs (default {DEMO_EPOCHS}).")
    #: The LLM's labels are skewed, e.g. 62% positive.
    class_weight: str = param(DEMO_CLASS_WEIGHT, help="Student loss weights per class: balanced (against the "
                                                      "LLM's skewed labels) or none.")
    #: llm2edge.defaults.DEMO_LR.
    lr: float = param(DEMO_LR, check=positive, help="Student learning rate.")
    max_length: int = param(MAX_LENGTH, check=token_limit, cli=False,
                            help="Tokens per text the student reads.")
    #: None: 3 (quick: 0.5).
    bench_budget_s: float | None = param(None, check=positive, cli=False,
                                         help="Timed seconds per system in the bench stage.")
    seed: int = param(SEED, cli=False, help="Seed of the samples, curation folds and training.")
    progress: bool = param(PROGRESS, cli=False, help="Progress lines on stderr and the table on stdout.")
    #: E.g. {"weight_decay": 0.0}: a TrainConfig field is a demo setting without being restated here.
    train: dict[str, Any] = param(default_factory=dict, cli=False,
                                  help="More training settings of the student: any TrainConfig field but "
                                       "the run's own (data, out, labels, ...).")

    def __post_init__(self) -> None:
        check_fields(self)
        self.train_config(data="", out="")  # TrainConfig checks the student's settings

    def train_config(self, **run: Any) -> Any:
        """The student's TrainConfig: `run` (data, out, labels, threads, ...) and the demo's own settings
        (epochs, class_weight, lr, max_length, seed, progress) over `train`; ConfigError on a bad setting
        or on a `train` key the demo sets itself."""
        from llm2edge.hub.train.config import TrainConfig  # the hub is loaded only here

        own = {"epochs": self.sizes()[2], "class_weight": self.class_weight, "lr": self.lr,
               "max_length": self.max_length, "seed": self.seed, "progress": self.progress}
        unknown = sorted(set(self.train) - {f.name for f in fields(TrainConfig)})
        if unknown:
            raise ConfigError(f"train: unknown key(s) {', '.join(unknown)} (a TrainConfig field is expected)")
        clash = sorted(set(self.train) & {*own, *DEMO_RUN_FIELDS})
        if clash:
            raise ConfigError(f"train: {', '.join(clash)} is the demo's own setting, not a train override")
        return TrainConfig(**{**self.train, **own, **run})

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
