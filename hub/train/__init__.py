"""Fine-tune a BERT-family student on (hard or soft) labels with accelerate.

Needs the `hub` extra: importing this package without it raises MissingExtraError with the pip command.

- `config`: TrainConfig (documented, validated settings), TrainResult and the resume fingerprint.
- `data`: reading hard or soft labels, the label order, the held-back validation slice.
- `trainer`: `train` (the accelerate loop, checkpoints, metrics.json) and prediction helpers.
"""

from __future__ import annotations

from llm2edge.extras import require

require("hub")

from llm2edge.hub.train.config import TrainConfig, TrainResult  # noqa: E402
from llm2edge.hub.train.trainer import metrics_table, predict_indices, train  # noqa: E402

__all__ = ["TrainConfig", "TrainResult", "metrics_table", "predict_indices", "train"]
