"""Reproducible experiments: datasets x labeler x curation intervention x student, as one table.

Needs the `hub` and `export` extras: importing this package without them raises MissingExtraError with the
pip command.

- `specs`: the experiment's parts (datasets, labelers, students, curation, the grid) as validated
  dataclasses.
- `config`: the experiment file (TOML) read into those specs.
- `sources`: the LLM labels (a live labeler, or recorded answers imported with import-labels) and the
  splits the students see (train/test, or k folds over the labeled rows).
- `students`: train one student and score it (fine-tuned / static through `train`, or a linear head on
  cached frozen embeddings), with confusion matrices so folds pool.
- `runner`: `run_experiment` (labels once, then the interventions' training rows and one student run per
  intervention and fold, everything cached; folds pooled).
- `report`: results.csv, the markdown table and the plot.
- `multilabel`: data sets whose task is multi-label (gold label sets, the student trained multi-label,
  micro/macro-F1, subset accuracy, Hamming loss; which interventions they run).
"""

from __future__ import annotations

from llm2edge.extras import require

require("hub")
require("export")

from llm2edge.pipeline.experiment.config import load_config  # noqa: E402
from llm2edge.pipeline.experiment.runner import ExperimentResult, run_config, run_experiment  # noqa: E402
from llm2edge.pipeline.experiment.specs import ExperimentConfig  # noqa: E402

__all__ = ["ExperimentConfig", "ExperimentResult", "load_config", "run_config", "run_experiment"]
