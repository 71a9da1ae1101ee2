"""`llm2edge demo`: the whole pipeline on a small labeled dataset, ending in an accuracy and speed report.

label the train split with the embedded LLM (constrained scoring) -> curate (cleanlab, drop likely errors) ->
train the embedded MiniLM student on the LLM labels -> export an int8 bundle -> classify the test split with
the edge runtime -> time edge vs LLM per item -> OUT/report.md (and a table on the terminal).

The test split is labeled by the LLM too, so the LLM and the edge model are scored against gold on the same
items. Every stage writes into OUT and is reused on a rerun: the label store resumes item by item, and
curate/train/export are skipped when their output exists with a stamp matching the hash of their inputs.

- `config`: DemoConfig (the options) and DemoResult (what a run measured).
- `stages`: each stage (data, label, curate, train, export, classify, bench), its stamp and its progress line.
- `report`: scoring the LLM's labels, report.md and the terminal table.
- `run`: `run_demo`, the stages in order and report.json.

Needs the `hub` and `export` extras: importing it without them raises MissingExtraError with the pip line.
"""

from __future__ import annotations

from llm2edge.extras import require

require("hub")
require("export")

from llm2edge.pipeline.demo.config import DemoConfig, DemoResult  # noqa: E402
from llm2edge.pipeline.demo.run import run_demo  # noqa: E402

__all__ = ["DemoConfig", "DemoResult", "run_demo"]
