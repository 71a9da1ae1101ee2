"""Out-of-fold confidence for any labels file, bare answers included (no probabilities needed).

A logistic regression on frozen student embeddings is trained on the file's labels, K-fold, and each row
gets the class probabilities of the fold model that never saw it: the machinery of `curate --probs
crossval` (`confident.crossval_probs` on `embed.embed_rows`). Two uses:

- `sample-experts --by crossval`: a row's score is the out-of-fold probability of its own (LLM) label,
  divided by the mean of that probability over the rows with the same label (confident learning's
  per-class threshold, `label_support`): experts get the rows whose label the other rows' labels least
  support, compared with the label's typical row. Without that division, rows the LLM gave a rare label
  came first (the fold models learn the label prior) and those were mostly right: on the 32 recorded
  teachers (../shared/recorded_teacher, 10% budget) the raw probability found more LLM errors than a
  random sample for 13 of 32 (median error-rate ratio 0.95), the divided one for 24 of 32 (median 1.13).
- `soft-labels --from crossval|mix`: the out-of-fold distribution as the soft target (`soft.py`).

The labels the model learns are the file's `label` column: the LLM's, and an expert's where one was merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llm2edge.checks import token_limit
from llm2edge.defaults import (
    CURATE_FOLDS,
    EMBED_BATCH_SIZE,
    MAX_LENGTH,
    OOF_CLASS_WEIGHT,
    OOF_CLASS_WEIGHTS,
    PROGRESS,
    SEED,
)
from llm2edge.errors import ConfigError
from llm2edge.hub.curate.rows import Row, row_confidence
from llm2edge.params import Checked, param, threads_param

#: The sampling score computed out of fold (the others are read from the rows).
CROSSVAL = "crossval"


@dataclass(kw_only=True)
class CrossvalConfig(Checked):
    """How out-of-fold probabilities are computed (checked when built): `curate --probs crossval`,
    `sample-experts --by crossval`, `soft-labels --from crossval|mix`."""

    folds: int = param(CURATE_FOLDS, low=2, help="Cross-validation folds (crossval).")
    model: str | None = param(None, help="Encoder for the crossval embeddings (default: the packaged MiniLM "
                                         "student).")
    #: The student's own limit: texts are seen as it will see them.
    max_length: int = param(MAX_LENGTH, check=token_limit,
                            help="Tokens per text for the crossval embeddings (as the student trains).")
    batch_size: int = param(EMBED_BATCH_SIZE, low=1, help="Embedding batch size (crossval).")
    seed: int = param(SEED, help="Seed of the crossval folds.")
    #: `defaults.OOF_CLASS_WEIGHT`.
    oof_class_weight: str = param(OOF_CLASS_WEIGHT, choices=OOF_CLASS_WEIGHTS,
                                  help="Class weights of the crossval model: none | balanced (each LLM label "
                                       "weighted by the inverse of its share, so a skewed teacher's majority "
                                       "does not outvote its minority answers).")
    threads: int | None = threads_param("Torch threads for the crossval embeddings")
    progress: bool = param(PROGRESS, cli=False, help="Show a progress bar while embedding.")


def label_index(rows: Sequence[Row], labels: Sequence[str]) -> np.ndarray:
    """Each row's label as an index into `labels`."""
    index = {name: i for i, name in enumerate(labels)}
    return np.array([index[r["label"]] for r in rows], dtype=np.int64)


def oof_features(rows: Sequence[Row], config: CrossvalConfig, features: np.ndarray | None = None
                 ) -> np.ndarray:
    """The embeddings out-of-fold models train on: `features` (one per row), else the rows' frozen student
    embeddings as `config` asks (texts paired with their fields, if any)."""
    if features is None:
        from llm2edge.hub.curate.embed import embed_rows

        features = embed_rows(rows, model=config.model, max_length=config.max_length,
                              batch_size=config.batch_size, threads=config.threads, progress=config.progress)
    if len(features) != len(rows):
        raise ConfigError(f"{len(features)} embeddings for {len(rows)} rows")
    return features


def oof_probs(rows: Sequence[Row], labels: Sequence[str], config: CrossvalConfig | None = None, *,
              features: np.ndarray | None = None) -> np.ndarray:
    """(n, k) out-of-fold class probabilities of the rows (`features`: their embeddings, else computed)."""
    from llm2edge.hub.curate.confident import crossval_probs

    config = config or CrossvalConfig()
    features = oof_features(rows, config, features)
    return crossval_probs(features, label_index(rows, labels), len(labels), folds=config.folds,
                          seed=config.seed, class_weight=config.oof_class_weight)


def label_support(rows: Sequence[Row], labels: Sequence[str], probs: np.ndarray) -> np.ndarray:
    """Each row's probability of its own label over the mean of that probability among the rows with the
    same label: 1 is typical for the label, lower is less supported (see the module docstring)."""
    y = label_index(rows, labels)
    own = probs[np.arange(len(rows)), y]
    typical = np.array([own[y == j].mean() if (y == j).any() else 1.0 for j in range(len(labels))])
    return own / np.clip(typical[y], 1e-12, None)


def sampling_scores(rows: Sequence[Row], labels: Sequence[str], by: str, config: CrossvalConfig | None = None,
                    *, features: np.ndarray | None = None) -> list[float]:
    """The score `sample-experts` ranks rows by (lower: sent to experts first): `crossval`, the support of
    the row's label out of fold (`label_support`); else the LLM's own `confidence` or `margin`."""
    if by == CROSSVAL:
        probs = oof_probs(rows, labels, config, features=features)
        return [float(v) for v in label_support(rows, labels, probs)]
    return [row_confidence(row, labels, by) for row in rows]
