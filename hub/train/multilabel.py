"""Scoring a multi-label student: sigmoid probabilities, per-label thresholds, the report, set shares.

A multi-label student has one independent sigmoid output per label; label l applies to a text when
p_l >= t_l. The thresholds are tuned per label on the held-back validation slice (its training labels) by
`labelsets.tune_thresholds` (each label's F1; a label with too few positives keeps LABEL_THRESHOLD) and
written to config.json as `label_thresholds`, beside `problem_type = "multi_label_classification"`.

The report dict is `labelsets.MultiLabelReport.to_dict()` (micro/macro-F1, subset accuracy, Hamming loss,
per label) plus `thresholds` and the set shares the collapse guard reads: the most predicted set, its
share of the predictions, and the most frequent gold set's share (`guard`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llm2edge.defaults import LABEL_THRESHOLD
from llm2edge.hub.train.config import TrainConfig
from llm2edge.hub.train.data import Example
from llm2edge.labelsets import (
    PROBLEM_TYPE,
    LabelScore,
    MultiLabelReport,
    decide,
    indicator,
    join_label_set,
    multilabel_report,
    sets_of,
    thresholds_array,
    tune_thresholds,
)

#: How the empty set is named in set shares and warnings.
NO_LABEL = "(no label)"


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Elementwise logistic function, float64 (stable for large |x|)."""
    x = np.asarray(logits, dtype=np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


def gold_matrix(examples: Sequence[Example], labels: Sequence[str]) -> np.ndarray:
    """The examples' sets as an (n, k) 0/1 matrix in `labels` order."""
    return indicator([ex.labels or () for ex in examples], labels)


def tuned(probs: np.ndarray, examples: Sequence[Example], labels: Sequence[str]) -> dict[str, float]:
    """Per-label thresholds tuned on `examples` (their sets) from the model's `probs`; LABEL_THRESHOLD
    for every label when there are no examples."""
    if not len(examples):
        return {name: LABEL_THRESHOLD for name in labels}
    values = tune_thresholds(probs, gold_matrix(examples, labels))
    return {name: float(t) for name, t in zip(labels, values)}


def set_name(labels: Sequence[str]) -> str:
    """A set as the guard and set shares name it: its joined form, or NO_LABEL."""
    return join_label_set(labels) or NO_LABEL


def set_shares(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The most predicted set, its share of the predictions, and the most frequent gold set's share."""
    n = len(predicted)
    if not n:
        return {"top_set": NO_LABEL, "top_set_share": 0.0, "gold_top_set_share": 0.0}
    top, count = Counter(set_name(s) for s in predicted).most_common(1)[0]
    gold_count = Counter(set_name(s) for s in gold).most_common(1)[0][1] if len(gold) else 0
    return {"top_set": top, "top_set_share": count / n, "gold_top_set_share": gold_count / n}


def set_report(probs: np.ndarray, examples: Sequence[Example], labels: Sequence[str],
               thresholds: Mapping[str, float]) -> dict[str, Any]:
    """The multi-label report of `probs` against the examples' sets at `thresholds`, as a dict."""
    names = list(labels)
    decisions = decide(probs, thresholds_array(thresholds, names))
    gold = [ex.labels or () for ex in examples]
    report = multilabel_report(gold, decisions.astype(np.uint8), names).to_dict()
    report["thresholds"] = {name: float(thresholds[name]) for name in names}
    report["problem_type"] = PROBLEM_TYPE
    return {**report, **set_shares(sets_of(decisions, names), gold)}


def model_probs(model: Any, tokenizer: Any, examples: Sequence[Example], config: TrainConfig,
                device: Any) -> np.ndarray:
    """The transformer student's sigmoid probabilities on `examples`, float64 [n, labels]."""
    from llm2edge.hub.train.evaluation import predict_logits

    if not examples:
        return np.zeros((0, model.config.num_labels))
    logits = predict_logits(model, tokenizer, [ex.text for ex in examples], max_length=config.max_length,
                            batch_size=max(config.batch_size, 32), device=device)
    return sigmoid(logits.numpy())


def meta(weights: Any, labels: Sequence[str], thresholds: Mapping[str, float] | None) -> dict[str, Any]:
    """train_meta.json's multi-label fields: problem_type, label_thresholds, the per-label pos_weights."""
    return {"multi_label": True, "problem_type": PROBLEM_TYPE,
            "label_thresholds": dict(thresholds) if thresholds is not None else None,
            "pos_weights": None if weights is None else
            {label: round(float(w), 6) for label, w in zip(labels, weights.tolist())}}


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers of a multi-label report (train_meta.json's `validation`, a fallback's record)."""
    return {k: report[k] for k in ("labels", "n", "micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")}


def multilabel_table(metrics: Mapping[str, Any]) -> str:
    """The terminal table of a multi-label metrics.json dict."""
    keys = ("labels", "n", "micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "micro_precision",
            "micro_recall")
    fields = {k: metrics[k] for k in keys}
    per_label = [LabelScore(**c) for c in metrics["per_label"]]
    return MultiLabelReport(per_label=per_label, **fields).table()
