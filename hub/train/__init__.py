"""Fine-tune a BERT-family student on (hard or soft) labels with accelerate."""

from __future__ import annotations

from llm2edge.hub.train.config import TrainConfig, TrainResult
from llm2edge.hub.train.trainer import metrics_table, predict_indices, train

__all__ = ["TrainConfig", "TrainResult", "metrics_table", "predict_indices", "train"]
