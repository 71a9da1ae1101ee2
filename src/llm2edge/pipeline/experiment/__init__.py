"""Reproducible experiments: datasets x labeler x curation intervention x student, as one table.

Needs the `hub` and `export` extras: importing this package without them raises MissingExtraError with the
pip command.

- `config`: the experiment file (datasets, labelers, students, interventions), parsed and validated.
- `runner`: `run_experiment` (label once, then train, export and evaluate one student per intervention,
  everything cached).
- `report`: results.csv, the markdown table and the plot.
"""

from __future__ import annotations

from llm2edge.extras import require

require("hub")
require("export")

from llm2edge.pipeline.experiment.config import ExperimentConfig, load_config  # noqa: E402
from llm2edge.pipeline.experiment.runner import ExperimentResult, run_config, run_experiment  # noqa: E402

__all__ = ["ExperimentConfig", "ExperimentResult", "load_config", "run_config", "run_experiment"]
