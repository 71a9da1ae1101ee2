"""Fine-tune a BERT-family student on (hard or soft) labels with accelerate.

Needs the `hub` extra: importing this package without it raises MissingExtraError with the pip command.

- `config`: TrainConfig (documented, validated settings), TrainResult and the resume fingerprint.
- `data`: reading hard or soft labels, the label order, the held-back validation slice.
- `trainer`: `train` (the accelerate loop: data, model, epochs, outputs and train_meta.json).
- `batches`: tokenizing, length-grouped batches, sharding, padding, targets and class weights.
- `checkpoints`: epoch checkpoints (find the newest complete one, save, prune).
- `pool`: `--unlabeled` (self-training or out-of-fold pseudo-labels on an unlabeled pool); `pool_cache`
  reads and caches the pool in chunks, `pool_labels` labels it.
- `head`: `--freeze-encoder` (cache encoder features once, train only the head).
- `evaluation`: `predict_indices`, the classification report and `metrics_table`.
- `small_data`: settings sized for a few hundred skewed labels (epochs from --min-steps, "auto" class
  weights); `selection`: the best epoch by macro-F1 on the held-back slice; `guard`: the collapse check
  (one label for >= 95% of a slice) behind `collapsed` in metrics.json.
"""

from __future__ import annotations

from llm2edge.extras import require

require("hub")

from typing import Any  # noqa: E402

from llm2edge.hub.train.config import PoolConfig, TrainConfig, TrainResult  # noqa: E402

#: What this package exports lazily (name -> its module): the settings above load without torch, so the
#: CLI reads TrainConfig's options without loading the trainer.
_LAZY = {"metrics_table": "evaluation", "predict_indices": "evaluation", "train": "trainer"}

__all__ = ["PoolConfig", "TrainConfig", "TrainResult", "metrics_table", "predict_indices", "train"]


def __getattr__(name: str) -> Any:
    """The trainer and evaluation functions, imported on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"llm2edge.hub.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
