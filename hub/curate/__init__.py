"""Curate LLM labels: confident learning, expert relabeling of the least-confident items, soft labels.

Needs the `hub` extra: importing this package without it raises MissingExtraError with the pip command.
cleanlab, scikit-learn and the embedding model are imported only when a curation step needs them.

- `rows`: labels.jsonl as rows with probabilities (LabeledRows), and writing them back.
- `confident`: `curate` (cleanlab's find_label_issues on cross-validated or LLM probabilities).
- `experts`: `sample_experts` (the items to send to people, CSV + Label Studio) and `merge_experts`;
  `label_studio`: the Label Studio config, import tasks and exports; `reviews`: one vote per annotation,
  settled per item (`--on-conflict`).
- `soft`: soft labels from the LLM's probabilities. `embed`: the sentence embeddings cleanlab's model uses.
"""

from __future__ import annotations

from llm2edge.extras import require

require("hub")

from llm2edge.hub.curate.confident import CurateConfig, CurateResult, curate, find_issues  # noqa: E402
from llm2edge.hub.curate.embed import embed_texts  # noqa: E402
from llm2edge.hub.curate.experts import (  # noqa: E402
    MergeConfig,
    MergeResult,
    SampleConfig,
    SampleResult,
    apply_expert_labels,
    merge_experts,
    sample_experts,
    select_experts,
)
from llm2edge.hub.curate.rows import LabeledRows, Row, load_labels  # noqa: E402
from llm2edge.hub.curate.soft import build_soft_labels  # noqa: E402

__all__ = [
    "CurateConfig",
    "CurateResult",
    "LabeledRows",
    "MergeConfig",
    "MergeResult",
    "Row",
    "SampleConfig",
    "SampleResult",
    "apply_expert_labels",
    "build_soft_labels",
    "curate",
    "embed_texts",
    "find_issues",
    "load_labels",
    "merge_experts",
    "sample_experts",
    "select_experts",
]
