"""Exporting a multi-label model: its thresholds, its validation sets, and the per-label int8 guard.

A model folder is multi-label when config.json says `problem_type = "multi_label_classification"`; its
`label_thresholds {label: t}` go into the manifest (`multi_label: true`, `thresholds`). The ONNX graph still
outputs logits; the edge applies a sigmoid per label (as it applies softmax to a single-label model), and
label l applies when sigmoid(logit_l) >= t_l.

The guard compares decisions on every (text, label) pair, int8 against torch. A flipped pair is a
*near-tie* when torch's own logit lies within `near_tie` logits of the threshold's logit (log(t / (1 - t))):
the same rule as a single-label near-tie (two answers torch almost gave). int8 ships when
`1 - real_flips / pairs >= min_agreement`; the manifest reports the per-pair agreement and the share of
texts whose whole set agrees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.edge.classifier import sigmoid
from llm2edge.errors import DataError, ExportError
from llm2edge.labelsets import PROBLEM_TYPE, decide, indicator, multilabel_report, parse_label_set
from llm2edge.records import cell, iter_rows


def is_multi_label(config: Mapping[str, Any]) -> bool:
    """True when a Hugging Face config is a multi-label classifier's."""
    return config.get("problem_type") == PROBLEM_TYPE


def model_thresholds(config: Mapping[str, Any], labels: Sequence[str], source: Path) -> dict[str, float]:
    """config.json's `label_thresholds` (labels not named keep LABEL_THRESHOLD in the manifest); ExportError
    naming `source` for an unknown label or a value that is not a probability."""
    given = config.get("label_thresholds") or {}
    if not isinstance(given, dict):
        raise ExportError(f"{source}: label_thresholds must map label names to probabilities")
    for name, value in given.items():
        if name not in labels:
            raise ExportError(f"{source}: label_thresholds names unknown label '{name}' "
                              f"(labels: {', '.join(labels)})")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ExportError(f"{source}: label_thresholds['{name}'] must be a probability in [0, 1], "
                              f"got {value!r}")
    return {str(k): float(v) for k, v in given.items()}


def load_validation_sets(path: Path, *, labels: Sequence[str], text_col: str = "text",
                         label_col: str = "label", limit: int | None = None
                         ) -> tuple[list[str], list[tuple[str, ...] | None]]:
    """Texts and gold label sets of a multi-label validation file (JSONL lists or `;`-joined cells, read
    with `labelsets.parse_label_set`; None where a row has no label column); DataError naming file:line."""
    texts: list[str] = []
    gold: list[tuple[str, ...] | None] = []
    for line, row in iter_rows(path, text_col=text_col):
        where = f"{path}:{line}"
        if not texts and text_col not in row:
            raise DataError(f"{path}: missing column(s) {text_col} (columns: {', '.join(map(str, row))})")
        text = cell(row, text_col, where, text=True)
        if not text:
            raise DataError(f"{where}: empty text in column '{text_col}'")
        texts.append(text)
        gold.append(parse_label_set(row[label_col], labels, where=where, allow_empty=True)
                    if label_col in row else None)
        if limit is not None and len(texts) >= limit:
            break
    if not texts:
        raise DataError(f"{path}: no rows to validate the export against; give --validate FILE with "
                        "held-out text,label rows")
    return texts, gold


def pair_agreement(reference: np.ndarray, other: np.ndarray, cuts: np.ndarray) -> float:
    """Share of (text, label) pairs whose decision (sigmoid(logit) >= t) is the same in both logit sets."""
    if not reference.size:
        return 1.0
    return round(float(np.mean(decide(sigmoid(reference), cuts) == decide(sigmoid(other), cuts))), 6)


def set_accuracy(logits: np.ndarray, gold: Sequence[tuple[str, ...] | None], labels: Sequence[str],
                 cuts: np.ndarray) -> dict[str, float | None]:
    """Subset accuracy and micro-F1 of the logits' decisions on the rows with gold sets (None without)."""
    rows = [i for i, g in enumerate(gold) if g is not None]
    if not rows:
        return {"accuracy": None, "micro_f1": None}
    pred = decide(sigmoid(logits[rows]), cuts)
    report = multilabel_report(indicator([gold[i] for i in rows], labels), pred, labels)
    return {"accuracy": round(report.subset_accuracy, 6), "micro_f1": round(report.micro_f1, 6)}


@dataclass(frozen=True)
class PairGuardResult:
    """int8 against torch on every (text, label) pair of the guard texts."""

    n: int
    labels: int
    pairs: int
    from_validation: int
    from_training: int
    #: Plain per-pair agreement (every flipped decision counts).
    agreement: float
    #: Share of texts whose whole label set is the same.
    set_agreement: float
    near_tie_flips: int
    real_flips: int
    near_tie_logit: float
    #: 1 - real_flips / pairs: what the gate compares with min_agreement.
    judged_agreement: float
    unit: str = "pairs"

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (for the manifest)."""
        return asdict(self)


def judge_pairs(reference: np.ndarray, int8: np.ndarray, cuts: np.ndarray, *, from_validation: int,
                near_tie: float) -> PairGuardResult:
    """Count int8's flipped (text, label) decisions against torch's, near-ties (torch's logit within
    near_tie of the threshold's logit) apart from real ones."""
    n, k = reference.shape
    ref_dec, got_dec = decide(sigmoid(reference), cuts), decide(sigmoid(int8), cuts)
    flipped = ref_dec != got_dec
    with np.errstate(divide="ignore"):
        cut_logit = np.log(cuts) - np.log1p(-cuts)  # +-inf at t = 1 / 0: never a near tie
    near = int(np.sum(flipped & (np.abs(reference - cut_logit[None, :]) < near_tie)))
    total = int(flipped.sum())
    pairs = n * k
    return PairGuardResult(
        n=n, labels=k, pairs=pairs, from_validation=from_validation, from_training=n - from_validation,
        agreement=round(1 - total / pairs, 6) if pairs else 1.0,
        set_agreement=round(float(np.mean(~flipped.any(axis=1))), 6) if n else 1.0,
        near_tie_flips=near, real_flips=total - near, near_tie_logit=near_tie,
        judged_agreement=round(1 - (total - near) / pairs, 6) if pairs else 1.0)


def describe_pairs(result: PairGuardResult) -> str:
    """One line: texts and pairs judged, flips split into real and near-tie."""
    r = result
    return (f"int8 vs torch on {r.pairs} (text, label) pairs ({r.n} texts x {r.labels} labels; "
            f"{r.from_validation} validation + {r.from_training} training texts): "
            f"{r.real_flips} real disagreement(s), {r.near_tie_flips} near-tie flip(s) "
            f"(torch logit within {r.near_tie_logit} of the threshold, not counted); judged agreement "
            f"{r.judged_agreement:.4f} (plain {r.agreement:.4f}, whole sets {r.set_agreement:.4f})")
