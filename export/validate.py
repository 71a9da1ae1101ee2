"""Compare torch, ONNX fp32 and ONNX int8 on the validation texts (agreement, logit difference, accuracy).

The ONNX side runs through the edge runtime itself (`edge_logits`: `Classifier.load`, with the edge's
session recipe from `llm2edge.edge.session` and its tokenizer truncation), so what is validated is what ships.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.edge.classifier import Classifier
from llm2edge.errors import DataError


@dataclass(frozen=True)
class ValidationSet:
    """Validation texts, their gold labels (None where absent), and the file they came from."""

    path: Path
    texts: list[str]
    gold: list[str | None]


def load_validation(path: Path, *, labels: Sequence[str], text_col: str = "text", label_col: str = "label",
                    limit: int | None = None) -> ValidationSet:
    """Read the validation file; DataError if it has no rows (saying how to give some) or a gold label
    outside the model's labels."""
    from llm2edge.records import iter_records

    records = list(iter_records(path, text_col=text_col, label_col=label_col))
    if not records:
        raise DataError(f"{path}: no rows to validate the export against (a training run on very few rows "
                        "holds none back); give --validate FILE with held-out text,label rows")
    if limit is not None:
        records = records[:limit]
    from llm2edge.labelsets import check_single

    known = set(labels)
    for rec in records:
        if rec.label not in (None, "") and rec.label not in known:
            check_single(rec.label, labels, where=f"{path}:{rec.line}")
            raise DataError(f"{path}:{rec.line}: label '{rec.label}' is not one of the model's labels "
                            f"{list(labels)}")
    gold = [rec.label if rec.label else None for rec in records]
    return ValidationSet(path=path, texts=[rec.text for rec in records], gold=gold)


def torch_logits(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int,
                 batch_size: int = 32) -> np.ndarray:
    """Logits of the torch model, float32 [n, labels], in input order (length-sorted batches)."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.empty((len(texts), model.config.num_labels), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            out[idx] = model(**enc).logits.float().numpy()
    return out


def edge_logits(bundle: Path, texts: Sequence[str], *, threads: int) -> np.ndarray:
    """Logits of a bundle through the edge runtime (the code path users run), float32 [n, labels]."""
    return Classifier.load(bundle, threads=threads).predict_logits(list(texts))


def accuracy(logits: np.ndarray, gold: Sequence[str | None], labels: Sequence[str]) -> float | None:
    """Share of rows with a gold label whose argmax label matches it; None if no row has one."""
    pairs = [(labels[int(p)], g) for p, g in zip(logits.argmax(axis=1), gold) if g is not None]
    return round(sum(p == g for p, g in pairs) / len(pairs), 6) if pairs else None


def compare(reference: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """(argmax agreement, max absolute logit difference) of `other` against `reference`."""
    agree = float(np.mean(reference.argmax(axis=1) == other.argmax(axis=1)))
    diff = float(np.abs(reference - other).max()) if reference.size else 0.0
    return round(agree, 6), diff
