"""The pipeline: what drives every stage end to end (demo, experiment grid, benchmark runner).

It sits above the stages (core <- edge <- export <- hub <- pipeline <- cli) and imports them; nothing below
imports it.

- `bench`: `llm2edge bench`, per-item latency of a bundle against torch, ORTModel and the LLM, one worker
  process per system. Works on a base install (the rows that need the hub extra are skipped and named).
- `demo`: `llm2edge demo`, label -> curate -> train -> export -> predict -> report on the shipped example.
- `experiment`: `llm2edge experiment`, the datasets x labeler x intervention x student grid.
- `predictor`: `BundlePredictor`, a bundle as a batch function for data engines (base install).
- `folders`: `llm2edge predict --input DIR|GLOB --output DIR` (`run_job`; engine local); `predict_job`: its
  `PredictJob` (light: predict's options are its fields).
- `ray_engine`: `--engine ray` on Ray actors (the `ray` extra; `ray_blocks` does the work, `ray_address`
  checks an address); `spark_engine`: `predict_udf`, a Spark column function (the `spark` extra).

`demo` and `experiment` need the `hub` and `export` extras (MissingExtraError on import without them), so
the names below are imported when first used: importing `llm2edge.pipeline` stays light, and the bench
worker (`python -m llm2edge.pipeline.bench.worker`) is never loaded twice.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm2edge.pipeline.bench.report import BenchResult
    from llm2edge.pipeline.bench.run import BenchConfig, run_bench
    from llm2edge.pipeline.demo import DemoConfig, DemoResult, run_demo
    from llm2edge.pipeline.experiment import ExperimentConfig, ExperimentResult, run_experiment
    from llm2edge.pipeline.folders import run_job
    from llm2edge.pipeline.predict_job import PredictJob
    from llm2edge.pipeline.predictor import BundlePredictor

#: The module each public name comes from, imported on first access.
_HOMES = {
    "BenchConfig": "llm2edge.pipeline.bench.run",
    "BenchResult": "llm2edge.pipeline.bench.report",
    "run_bench": "llm2edge.pipeline.bench.run",
    "DemoConfig": "llm2edge.pipeline.demo",
    "DemoResult": "llm2edge.pipeline.demo",
    "run_demo": "llm2edge.pipeline.demo",
    "ExperimentConfig": "llm2edge.pipeline.experiment",
    "ExperimentResult": "llm2edge.pipeline.experiment",
    "run_experiment": "llm2edge.pipeline.experiment",
    "BundlePredictor": "llm2edge.pipeline.predictor",
    "PredictJob": "llm2edge.pipeline.predict_job",
    "run_job": "llm2edge.pipeline.folders",
}

__all__ = [
    "BenchConfig",
    "BenchResult",
    "BundlePredictor",
    "DemoConfig",
    "DemoResult",
    "ExperimentConfig",
    "ExperimentResult",
    "PredictJob",
    "run_bench",
    "run_demo",
    "run_experiment",
    "run_job",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    """The module's names, the lazily imported public ones included."""
    return sorted({*globals(), *__all__})
