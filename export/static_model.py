"""The static-embedding student on disk (what `train --student static` writes and export reads) in numpy.

A model folder holds `config.json` (`model_type: llm2edge-static`, id2label), `model.safetensors` with the
token table `embeddings` [vocab, dims] and the linear head `classifier.weight` [labels, dims] /
`classifier.bias` [labels], and `tokenizer.json` (the source tokenizer without [CLS]/[SEP]).
A text's logits are `mean(embeddings[token ids]) @ weight.T + bias`; a text with no tokens averages to 0.
`StaticWeights.logits` is the numpy reference every exported graph is checked against.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.errors import ExportError

#: config.json's model_type of a static student (how export tells it from a transformer).
STATIC_MODEL_TYPE = "llm2edge-static"
#: The `student` field of a static bundle's manifest and train_meta.json.
STATIC_STUDENT = "static"
EMBEDDINGS_KEY = "embeddings"
WEIGHT_KEY = "classifier.weight"
BIAS_KEY = "classifier.bias"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class StaticWeights:
    """A static student's arrays (float32): token table, head weight and head bias."""

    embeddings: np.ndarray  # [vocab, dims]
    weight: np.ndarray  # [labels, dims]
    bias: np.ndarray  # [labels]

    def __post_init__(self) -> None:
        e, w, b = self.embeddings, self.weight, self.bias
        if e.ndim != 2 or w.ndim != 2 or b.ndim != 1 or w.shape[1] != e.shape[1] or b.shape[0] != w.shape[0]:
            raise ExportError(f"static weights have inconsistent shapes: embeddings {list(e.shape)}, "
                              f"weight {list(w.shape)}, bias {list(b.shape)}")

    @property
    def dims(self) -> int:
        """Width of the token table."""
        return int(self.embeddings.shape[1])

    def mean_vectors(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """The mean table row of each text's token ids, float32 [n, dims] (zeros for no tokens)."""
        out = np.zeros((len(token_ids), self.dims), dtype=np.float32)
        for row, ids in enumerate(token_ids):
            if len(ids):
                out[row] = self.embeddings[np.asarray(ids, dtype=np.int64)].mean(axis=0)
        return out

    def logits(self, token_ids: Sequence[Sequence[int]]) -> np.ndarray:
        """Logits float32 [n, labels] of texts given as token ids (the numpy reference)."""
        return (self.mean_vectors(token_ids) @ self.weight.T + self.bias).astype(np.float32)

    def logits_of_texts(self, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
        """Logits of raw texts, tokenized by a `tokenizers.Tokenizer` (its truncation applies)."""
        return self.logits([enc.ids for enc in tokenizer.encode_batch(list(texts))])


def is_static_model(config: dict[str, Any]) -> bool:
    """True when a model folder's config.json describes a static student."""
    return config.get("model_type") == STATIC_MODEL_TYPE


def save_static_weights(folder: Path, weights: StaticWeights) -> Path:
    """Write the arrays as folder/model.safetensors."""
    from safetensors.numpy import save_file

    path = folder / WEIGHTS_NAME
    save_file({EMBEDDINGS_KEY: np.ascontiguousarray(weights.embeddings, dtype=np.float32),
               WEIGHT_KEY: np.ascontiguousarray(weights.weight, dtype=np.float32),
               BIAS_KEY: np.ascontiguousarray(weights.bias, dtype=np.float32)}, str(path))
    return path


def load_static_weights(folder: Path) -> StaticWeights:
    """The arrays of folder/model.safetensors; ExportError naming the file if one is missing."""
    from safetensors.numpy import load_file

    path = folder / WEIGHTS_NAME
    try:
        tensors = load_file(str(path))
    except (OSError, ValueError) as exc:  # safetensors raises SafetensorError (a ValueError subclass) too
        raise ExportError(f"{path}: cannot read ({exc})") from None
    missing = [k for k in (EMBEDDINGS_KEY, WEIGHT_KEY, BIAS_KEY) if k not in tensors]
    if missing:
        raise ExportError(f"{path}: not a static student (missing {', '.join(missing)})")
    return StaticWeights(embeddings=tensors[EMBEDDINGS_KEY].astype(np.float32),
                         weight=tensors[WEIGHT_KEY].astype(np.float32),
                         bias=tensors[BIAS_KEY].astype(np.float32))


def static_config(labels: Sequence[str], weights: StaticWeights, **extra: Any) -> dict[str, Any]:
    """config.json of a static student: model_type, id2label/label2id, sizes, and `extra` fields."""
    return {"model_type": STATIC_MODEL_TYPE, "architectures": ["StaticEmbeddingClassifier"],
            "student": STATIC_STUDENT, "id2label": {str(i): name for i, name in enumerate(labels)},
            "label2id": {name: i for i, name in enumerate(labels)}, "hidden_size": weights.dims,
            "vocab_size": int(weights.embeddings.shape[0]), "num_labels": len(labels), **extra}


def write_static_config(folder: Path, config: dict[str, Any]) -> None:
    """Write folder/config.json."""
    (folder / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
