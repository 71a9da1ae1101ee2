"""Curate LLM labels: confident learning, expert relabeling of the least-confident items, soft labels.

Needs the `hub` extra: importing this package without it raises MissingExtraError with the pip command.
cleanlab, scikit-learn and the embedding model are imported only when a curation step needs them.

- `rows`: labels.jsonl as rows with probabilities (LabeledRows), and writing them back.
- `confident`: `curate` (cleanlab's find_label_issues on cross-validated or LLM probabilities);
  `multilabel`: the same for multi-label files (`label` a list): cleanlab's multi-label issues on per-label
  probabilities, out-of-fold one-vs-rest ones for `--probs crossval`.
- `experts`: `sample_experts` (the items to send to people, CSV + Label Studio) and `merge_experts`;
  `label_studio`: the Label Studio config, import tasks and exports; `reviews`: one vote per annotation,
  settled per item (`--on-conflict`); `select`: which rows go to experts (per-label strata, multi-label
  sets by their least certain label); `merge_multi`: expert label sets checked and merged.
- `soft`: soft labels from the LLM's probabilities, out-of-fold ones, or their mix. `embed`: the sentence
  embeddings cleanlab's model uses. `oof`: out-of-fold confidence for any labels file (`--by crossval`).
- `gold`: gold files (simulated experts) and `sample_error_rates`, what an expert sample is worth.
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
from llm2edge.hub.curate.gold import SampleErrorRates, sample_error_rates  # noqa: E402
from llm2edge.hub.curate.oof import CrossvalConfig, oof_probs, sampling_scores  # noqa: E402
from llm2edge.hub.curate.rows import LabeledRows, Row, load_labels  # noqa: E402
from llm2edge.hub.curate.soft import build_soft_labels, soft_labels_file  # noqa: E402

__all__ = [
    "CrossvalConfig",
    "CurateConfig",
    "CurateResult",
    "LabeledRows",
    "MergeConfig",
    "MergeResult",
    "Row",
    "SampleConfig",
    "SampleErrorRates",
    "SampleResult",
    "apply_expert_labels",
    "build_soft_labels",
    "curate",
    "embed_texts",
    "find_issues",
    "load_labels",
    "merge_experts",
    "oof_probs",
    "sample_error_rates",
    "sample_experts",
    "sampling_scores",
    "select_experts",
    "soft_labels_file",
]
