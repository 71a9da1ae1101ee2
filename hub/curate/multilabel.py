"""Multi-label curation: per-label probabilities (the LLM's or out of fold) and cleanlab's multi-label issues.

A multi-label labels.jsonl row (llm2edge.labelsets) has `label`, a list, and `probs`, each label's own
probability of applying. Confident learning on it is cleanlab's multi-label `find_label_issues` (the
current form of `cleanlab.filter.find_label_issues(..., multi_label=True)`), which treats every label
as its own binary task (label present or not) and flags a row when any of its per-label decisions looks
wrong. Its probabilities:

- `crossval`: per label, K-fold one-vs-rest logistic regressions on the frozen student embeddings, each
  trained on the file's own decisions for that label (`confident.crossval_probs` with two classes).
- `llm`: the rows' own per-label `probs` (the indicator of the label set for a bare answer). As in the
  single-label case this is weak: the label set is the LLM's probabilities thresholded, so only labels
  whose probabilities sit on the wrong side of cleanlab's per-label thresholds can be flagged.

A row's per-label confidence is cleanlab's per-label quality: p_l where l is in the set, 1 - p_l where it is
not; its `issue_score` is 1 minus cleanlab's aggregated (exponential moving average) label quality.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llm2edge.checks import one_of
from llm2edge.defaults import (
    CURATE_FILTER_BY,
    CURATE_FOLDS,
    CURATE_PROBS,
    LABEL_THRESHOLD,
    OOF_CLASS_WEIGHT,
    SEED,
)
from llm2edge.errors import DataError
from llm2edge.hub.curate.oof import CrossvalConfig, oof_features
from llm2edge.hub.curate.rows import LabeledRows, Row, write_rows
from llm2edge.labelsets import indicator, join_label_set, sets_of

if TYPE_CHECKING:
    from llm2edge.hub.curate.confident import CurateConfig, CurateResult

#: Where curate's probabilities come from (as in the single-label path).
PROB_SOURCES = ("llm", "crossval")


def label_matrix(rows: Sequence[Row], labels: Sequence[str]) -> np.ndarray:
    """The (n, k) 0/1 matrix of the rows' label sets (`labels` order)."""
    return indicator([row["label"] for row in rows], labels)


def llm_label_probs(rows: Sequence[Row], labels: Sequence[str]) -> np.ndarray:
    """(n, k) per-label probabilities from the rows' own `probs` (each label independent; a label missing
    from a row's probs, or a row without probs: 1 if the label is in its set, else 0)."""
    given = label_matrix(rows, labels).astype(np.float64)
    out = given.copy()
    for i, row in enumerate(rows):
        probs = row.get("probs") or {}
        for j, name in enumerate(labels):
            if probs.get(name) is not None:
                out[i, j] = float(probs[name])
    return out


def crossval_label_probs(features: np.ndarray, given: np.ndarray, *, folds: int = CURATE_FOLDS,
                         seed: int = SEED, class_weight: str = OOF_CLASS_WEIGHT) -> np.ndarray:
    """(n, k) out-of-fold probability of each label: per label, K-fold one-vs-rest logistic regression on
    `features` trained on `given[:, j]` (a label no row or every row carries: its fold models are certain).
    """
    from llm2edge.hub.curate.confident import crossval_probs

    out = np.zeros(given.shape, dtype=np.float64)
    for j in range(given.shape[1]):
        y = np.asarray(given[:, j], dtype=np.int64)
        out[:, j] = crossval_probs(features, y, 2, folds=folds, seed=seed, class_weight=class_weight)[:, 1]
    return out


def oof_label_probs(rows: Sequence[Row], labels: Sequence[str], config: CrossvalConfig | None = None, *,
                    features: np.ndarray | None = None) -> np.ndarray:
    """`crossval_label_probs` of multi-label rows (`features`: their embeddings, else computed)."""
    config = config or CrossvalConfig()
    features = oof_features(rows, config, features)
    return crossval_label_probs(features, label_matrix(rows, labels), folds=config.folds, seed=config.seed,
                                class_weight=config.oof_class_weight)


def label_confidence(given: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(n, k) confidence in each given decision: p where the label is in the set, 1 - p where it is not."""
    p = np.asarray(probs, dtype=np.float64)
    return np.where(np.asarray(given, dtype=bool), p, 1.0 - p)


@dataclass(frozen=True)
class MultiIssues:
    """cleanlab's multi-label verdict per row: flagged, issue score, the set the probabilities suggest,
    the per-label confidence in the given decisions."""

    flagged: np.ndarray  # bool (n,)
    score: np.ndarray  # float (n,), 1 - cleanlab's label quality: higher = more likely wrong
    suggested: list[tuple[str, ...]]  # the labels whose probability reaches LABEL_THRESHOLD
    pred_probs: np.ndarray  # (n, k) the per-label probabilities used
    confidence: np.ndarray  # (n, k) label_confidence
    notes: list[str] = field(default_factory=list)


def find_multi_issues(rows: Sequence[Row], labels: Sequence[str], *, probs: str = CURATE_PROBS,
                      features: np.ndarray | None = None, folds: int = CURATE_FOLDS, seed: int = SEED,
                      filter_by: str = CURATE_FILTER_BY, class_weight: str = OOF_CLASS_WEIGHT,
                      oof: np.ndarray | None = None) -> MultiIssues:
    """cleanlab's multi-label label issues of `rows` on the LLM's per-label probabilities or out-of-fold
    ones (`features` needed for crossval unless `oof` holds them, as `crossval_label_probs` gives them)."""
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    from llm2edge.hub.curate.confident import cleanlab_verdict, given_oof

    one_of("probs", probs, PROB_SOURCES)
    given = label_matrix(rows, labels)
    if probs == "llm":
        pred = llm_label_probs(rows, labels)
    elif (pred := given_oof(oof, features, given.shape)) is None:
        pred = crossval_label_probs(features, given, folds=folds, seed=seed, class_weight=class_weight)
    if len(rows) < 2 or not given.any():
        raise DataError("fewer than two rows, or no row carries a label: confident learning has nothing "
                        "to compare")
    sub = np.clip(pred, 1e-6, 1 - 1e-6)
    lists = [[int(j) for j in np.flatnonzero(row)] for row in given]
    flagged, quality, messages = cleanlab_verdict(find_label_issues, get_label_quality_scores, lists, sub,
                                                  filter_by)
    suggested = sets_of(pred >= LABEL_THRESHOLD, labels)
    return MultiIssues(flagged, 1.0 - quality, suggested, pred, label_confidence(given, pred),
                       _notes(messages, given, labels))


def multi_report(data: LabeledRows, issues: MultiIssues, config: CurateConfig, seconds: float
                 ) -> dict[str, Any]:
    """The multi-label curation report as a JSON-ready dict: counts overall and per label, top examples.

    Per label: `rows` carrying it, `flagged` rows carrying it, and `disputed`, flagged rows whose decision
    on that label (in the set or not) the probabilities contradict (confidence below 0.5)."""
    from llm2edge.hub.curate.confident import drop_skew
    from llm2edge.hub.curate.report import report_head, top_flagged

    given = label_matrix(data.rows, data.labels).astype(bool)
    disputed = issues.confidence < 0.5
    flagged = issues.flagged
    per_label = {name: {"rows": int(given[:, j].sum()), "flagged": int((given[:, j] & flagged).sum()),
                        "disputed": int((disputed[:, j] & flagged).sum())}
                 for j, name in enumerate(data.labels)}
    suggested = [list(s) for s in issues.suggested]
    return {
        **report_head(data, flagged, config, multi_label=True), "per_label": per_label,
        "set_is_thresholded": round(float(np.mean([tuple(r["label"]) == s for r, s in
                                                   zip(data.rows, issues.suggested)])), 4),
        "drop_skew": drop_skew(data.rows, flagged),
        "note": LLM_NOTE if config.probs != "crossval" else None, "warnings": list(issues.notes),
        "seconds": round(seconds, 2), "top": top_flagged(data.rows, issues, config.top, suggested),
    }


#: Why `--probs llm` flags little on a multi-label file (the report's note).
LLM_NOTE = ("cleanlab on the LLM's own per-label probabilities: the label set is these probabilities "
            "thresholded, so a label can be flagged only where its probability falls on the wrong side of "
            "cleanlab's per-label threshold; --probs crossval gives out-of-sample probabilities")


def multi_markdown(report: dict[str, Any]) -> str:
    """The multi-label curation report as markdown."""
    from llm2edge.hub.curate.confident import drop_skew_line
    from llm2edge.hub.curate.report import markdown_head, markdown_top

    skew = report.get("drop_skew")
    lines = [*markdown_head(report, "Curation report (multi-label)"),
             *([f"- **warning**: {drop_skew_line(skew, report.get('oof_class_weight'))}"] if skew else []),
             "", "| label | rows with it | flagged | disputed |", "|---|---:|---:|---:|"]
    for name, c in report["per_label"].items():
        lines.append(f"| {name} | {c['rows']} | {c['flagged']} | {c['disputed']} |")
    return "\n".join(lines + markdown_top(report["top"], "given labels", join_label_set)) + "\n"


def curate_multi(config: CurateConfig, data: LabeledRows, start: float) -> CurateResult:
    """`curate` of a multi-label file: flag (or drop) rows cleanlab's multi-label issues point at; every
    row gets `label_issue`, `issue_score`, `suggested_label` (a list) and `label_confidence`
    ({label: confidence in the given decision})."""
    from llm2edge.hub.curate.confident import _embed_rows, drop_skew_line
    from llm2edge.hub.curate.report import marked_rows, publish

    cv = config.crossval
    features = _embed_rows(data.rows, config) if config.probs == "crossval" else None
    issues = find_multi_issues(data.rows, data.labels, probs=config.probs, features=features, folds=cv.folds,
                               seed=cv.seed, filter_by=config.filter_by, class_weight=cv.oof_class_weight)
    out_rows = marked_rows(data.rows, issues, config.action, [list(s) for s in issues.suggested],
                           lambda i: {"label_confidence": {name: round(float(issues.confidence[i, j]), 6)
                                                           for j, name in enumerate(data.labels)}})
    out = Path(config.out)
    write_rows(out / "labels.jsonl", out_rows)
    report = multi_report(data, issues, config, time.perf_counter() - start)
    skew = ([drop_skew_line(report["drop_skew"], report.get("oof_class_weight"))]
            if report["drop_skew"] and config.action == "drop" else [])
    return publish(out, report, out_rows, issues, multi_markdown, [*issues.notes, *skew])


def _notes(messages: Sequence[str], given: np.ndarray, labels: Sequence[str]) -> list[str]:
    """cleanlab's warnings as one line each (duplicates once). Its "too few examples in class k" comes from
    a label's binary task (k = 1: the rows carrying it, 0: those without it): named here as the labels
    carried by at most one row, or missing from at most one."""
    from llm2edge.hub.curate.confident import cleanlab_notes

    counts = given.sum(axis=0)
    sparse = [name for name, c in zip(labels, counts) if c <= 1 or c >= len(given) - 1]
    few = (f"{', '.join(repr(n) for n in sparse)}: carried by at most one row (or missing from at most one), "
           "too few for cleanlab to judge those decisions") if sparse else None
    return cleanlab_notes(messages, lambda _match: few)
