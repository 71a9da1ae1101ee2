"""The trained model's predictions and classification report (validation, --eval, metrics.json)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from llm2edge.hub.train.batches import collate, tokenize
from llm2edge.hub.train.config import TrainConfig
from llm2edge.hub.train.data import Example
from llm2edge.metrics import classification_report


@torch.no_grad()
def predict_logits(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int, batch_size: int,
                   device: Any = "cpu") -> torch.Tensor:
    """The model's logits, float32 [n, labels] on the CPU (batched by length, in input order)."""
    model.eval()
    feats = tokenize(tokenizer, texts, max_length)
    order = sorted(range(len(texts)), key=lambda i: len(feats[i]["input_ids"]))
    out = torch.zeros(len(texts), model.config.num_labels, dtype=torch.float32)
    pad_id = tokenizer.pad_token_id or 0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in collate([feats[i] for i in idx], pad_id).items()}
        out[idx] = model(**batch).logits.float().cpu()
    return out


def predict_indices(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int, batch_size: int,
                    device: Any = "cpu") -> list[int]:
    """The model's predicted class index per text (batched by length, in input order)."""
    if not texts:
        return []
    logits = predict_logits(model, tokenizer, texts, max_length=max_length, batch_size=batch_size,
                            device=device)
    return logits.argmax(-1).tolist()


def report_dict(model: Any, tokenizer: Any, examples: Sequence[Example], labels: Sequence[str],
                config: TrainConfig, device: Any) -> dict[str, Any]:
    """The classification report of `model` on `examples` as a dict (Report.to_dict())."""
    idx = predict_indices(model, tokenizer, [ex.text for ex in examples], max_length=config.max_length,
                          batch_size=max(config.batch_size, 32), device=device)
    report = classification_report([ex.label for ex in examples], [labels[i] for i in idx], labels)
    return report.to_dict()


def metrics_table(metrics: dict[str, Any]) -> str:
    """The terminal table of a metrics.json dict (a multi-label one: `labelsets.MultiLabelReport`'s)."""
    from llm2edge.metrics import ClassReport, Report

    if metrics.get("multi_label"):
        from llm2edge.hub.train.multilabel import multilabel_table

        return multilabel_table(metrics)
    fields = {k: metrics[k] for k in ("labels", "n", "accuracy", "macro_f1", "weighted_f1", "confusion")}
    per_class = [ClassReport(**c) for c in metrics["per_class"]]
    return Report(per_class=per_class, **fields).table()
