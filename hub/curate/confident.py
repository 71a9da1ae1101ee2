"""Confident learning (cleanlab) on LLM labels: flag or drop the labels most likely to be wrong.

cleanlab needs *out-of-sample* probabilities. Two sources:

- `crossval` (default): K-fold cross-validated probabilities of a logistic regression on frozen student
  embeddings, trained on the LLM labels themselves. Each item is scored by a model that never saw it,
  which is what confident learning assumes.
- `llm`: the LLM's own label distribution. Weak by construction: the LLM label is the argmax of these
  probabilities, so an item lands off the diagonal of cleanlab's confident joint only when another
  class's probability clears that class's (per-class mean) threshold while staying below the given
  label's. In a binary task that never happens (the other class's threshold is above 0.5), so nothing is
  flagged; with three or more classes only classes the LLM is rarely sure of can pull items over.
  The report says how often the label is the argmax.
"""

from __future__ import annotations

import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.checks import one_of
from llm2edge.defaults import (
    COLLAPSE_SHARE,
    CURATE_ACTION,
    CURATE_FILTER_BY,
    CURATE_FOLDS,
    CURATE_METHOD,
    CURATE_PROBS,
    CURATE_TOP,
    OOF_CLASS_WEIGHT,
    OOF_CLASS_WEIGHTS,
    SEED,
)
from llm2edge.errors import ConfigError, DataError
from llm2edge.hub.curate.oof import CrossvalConfig, oof_features
from llm2edge.hub.curate.report import (
    CurateResult,
    markdown_head,
    markdown_top,
    marked_rows,
    publish,
    report_head,
    top_flagged,
)
from llm2edge.hub.curate.rows import LabeledRows, Row, load_labels, row_probs, write_rows
from llm2edge.params import Checked, nested, param

METHODS = ("cleanlab",)
PROB_SOURCES = ("llm", "crossval")
ACTIONS = ("flag", "drop")


@dataclass(kw_only=True)
class CurateConfig(Checked):
    """Options of `llm2edge curate` (setfit-style, checked when built)."""

    labels: Path = param(help="labels.jsonl written by `llm2edge label`.")
    out: Path = param(help="Output folder: labels.jsonl, report.md, report.json.")
    method: str = param(CURATE_METHOD, choices=METHODS, help="Curation method (cleanlab).")
    #: "llm" is weak by construction (see the module docstring).
    probs: str = param(CURATE_PROBS, choices=PROB_SOURCES,
                       help="Out-of-sample probabilities: crossval (K-fold model on student embeddings) | "
                            "llm (the LLM's own; weak, see docs).")
    #: "flag" adds label_issue to every row; "drop" writes only the unflagged rows.
    action: str = param(CURATE_ACTION, choices=ACTIONS, help="flag (add label_issue) | drop (flagged rows).")
    #: The crossval probabilities: folds, encoder, embedding settings, class weights, seed, threads.
    crossval: CrossvalConfig = nested(CrossvalConfig)
    filter_by: str = param(CURATE_FILTER_BY, help="cleanlab filter_by method.")
    top: int = param(CURATE_TOP, low=0, help="Flagged examples listed in the report.")


@dataclass(frozen=True)
class Issues:
    """cleanlab's verdict per row: flagged or not, an issue score (1 - label quality), a suggested label."""

    flagged: np.ndarray  # bool (n,)
    score: np.ndarray  # float (n,), higher = more likely wrong
    suggested: list[str]
    pred_probs: np.ndarray  # (n, k) out-of-sample probabilities used
    #: What cleanlab warned about, one line each in llm2edge's words (its own warnings are not shown).
    notes: list[str] = field(default_factory=list)


def folds_run(folds: int, rows: int) -> int:
    """The cross-validation folds that run on `rows` rows when `folds` are asked: at least 2, at most one
    per row (what reports record as `folds`)."""
    return max(2, min(folds, rows))


def _fold_splits(features: np.ndarray, y: np.ndarray, n_classes: int, folds: int, seed: int) -> Any:
    """The (train, test) index pairs of the K folds: stratified where every present class has K rows."""
    from sklearn.model_selection import KFold, StratifiedKFold

    counts = np.bincount(y, minlength=n_classes)
    present = counts[counts > 0]
    k = folds_run(folds, len(y))
    if present.min() >= k:
        return StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(features, y)
    # a class too small to stratify: plain folds, a fold may miss a class (handled by the callers)
    return KFold(n_splits=k, shuffle=True, random_state=seed).split(features)


def _fold_model(features: np.ndarray, y: np.ndarray, c: float, class_weight: str) -> tuple[np.ndarray, Any]:
    """(classes, fitted logistic regression) of one fold; the model is None when one class is present."""
    from sklearn.linear_model import LogisticRegression

    classes = np.unique(y)
    if len(classes) == 1:
        return classes, None
    weight = "balanced" if class_weight == "balanced" else None
    clf = LogisticRegression(C=c, max_iter=2000, class_weight=weight)
    return classes, clf.fit(features, y)


def _fold_predict(model: tuple[np.ndarray, Any], features: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, n_classes) probabilities of one fold model (a one-class fold: that class, certain)."""
    classes, clf = model
    out = np.zeros((len(features), n_classes), dtype=np.float64)
    out[:, classes] = 1.0 if clf is None else clf.predict_proba(features)
    return out


def crossval_probs(features: np.ndarray, y: np.ndarray, n_classes: int, *, folds: int = CURATE_FOLDS,
                   seed: int = SEED, c: float = 1.0, class_weight: str = OOF_CLASS_WEIGHT) -> np.ndarray:
    """Out-of-sample class probabilities from K-fold logistic regression on `features`
    (`class_weight`: "none", or "balanced" to weight each label by the inverse of its share).

    The fits run on one BLAS thread: a multi-threaded BLAS sums in a thread-dependent order (probabilities
    moved by up to 4e-5 between 1 and 2 threads, enough to move a cleanlab flag at the margin), so the same
    rows get the same probabilities on any machine; and beside other workers (a sharded grid) one thread
    was 1.7x faster on 2 cores than the default."""
    from threadpoolctl import threadpool_limits

    one_of("class_weight", class_weight, OOF_CLASS_WEIGHTS)
    out = np.zeros((len(y), n_classes), dtype=np.float64)
    with threadpool_limits(limits=1):
        for train_idx, test_idx in _fold_splits(features, y, n_classes, folds, seed):
            model = _fold_model(features[train_idx], y[train_idx], c, class_weight)
            out[test_idx] = _fold_predict(model, features[test_idx], n_classes)
    out = np.clip(out, 1e-6, None)
    return out / out.sum(axis=1, keepdims=True)


class FoldEnsemble:
    """The K fold models of `crossval_probs`, kept to score new rows (an unlabeled pool): each new row gets
    the mean of the K models' probabilities (every model saw (K-1)/K of the labeled rows)."""

    def __init__(self, features: np.ndarray, y: np.ndarray, n_classes: int, *, folds: int = CURATE_FOLDS,
                 seed: int = SEED, c: float = 1.0, class_weight: str = OOF_CLASS_WEIGHT) -> None:
        from threadpoolctl import threadpool_limits

        one_of("class_weight", class_weight, OOF_CLASS_WEIGHTS)
        self.n_classes = n_classes
        with threadpool_limits(limits=1):
            self.models = [_fold_model(features[train_idx], y[train_idx], c, class_weight)
                           for train_idx, _ in _fold_splits(features, y, n_classes, folds, seed)]

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, n_classes) mean probabilities of the fold models."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            out = sum(_fold_predict(m, features, self.n_classes) for m in self.models) / len(self.models)
        out = np.clip(out, 1e-6, None)
        return out / out.sum(axis=1, keepdims=True)


def find_issues(rows: Sequence[Row], labels: Sequence[str], *, probs: str = CURATE_PROBS,
                features: np.ndarray | None = None, folds: int = CURATE_FOLDS, seed: int = SEED,
                filter_by: str = CURATE_FILTER_BY, class_weight: str = OOF_CLASS_WEIGHT,
                oof: np.ndarray | None = None) -> Issues:
    """Run cleanlab on `rows` with LLM or cross-validated probabilities (`features` needed for crossval,
    unless `oof` holds the rows' out-of-fold probabilities already, as `crossval_probs` gives them)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    one_of("probs", probs, PROB_SOURCES)
    index = {name: i for i, name in enumerate(labels)}
    y = np.array([index[r["label"]] for r in rows], dtype=np.int64)
    if probs == "llm":
        pred = np.array([row_probs(r, labels) for r in rows], dtype=np.float64)
    elif (pred := given_oof(oof, features, (len(rows), len(labels)))) is None:
        pred = crossval_probs(features, y, len(labels), folds=folds, seed=seed, class_weight=class_weight)
    # cleanlab wants every class present among the given labels: work on the classes that are.
    present = np.flatnonzero(np.bincount(y, minlength=len(labels)) > 0)
    if len(present) < 2:
        raise DataError("every usable row has the same label; confident learning needs two classes or more")
    remap = {int(c): i for i, c in enumerate(present)}
    sub = np.clip(pred[:, present], 1e-6, None)
    sub = sub / sub.sum(axis=1, keepdims=True)
    y_sub = np.array([remap[int(v)] for v in y], dtype=np.int64)
    flagged, quality, messages = cleanlab_verdict(find_label_issues, get_label_quality_scores, y_sub, sub,
                                                  filter_by, method="self_confidence")
    notes = _cleanlab_notes(messages, [labels[int(c)] for c in present], y_sub)
    suggested = [labels[int(present[j])] for j in sub.argmax(axis=1)]
    return Issues(flagged, 1.0 - quality, suggested, pred, notes)


def given_oof(oof: np.ndarray | None, features: np.ndarray | None, shape: tuple[int, int]
              ) -> np.ndarray | None:
    """Out-of-fold probabilities passed in (checked to be (rows, labels) = `shape`), or None when they are
    to be computed from `features`, which must then be there."""
    if oof is not None:
        if oof.shape != shape:
            raise ConfigError(f"out-of-fold probabilities of shape {oof.shape} for {shape[0]} rows and "
                              f"{shape[1]} labels")
        return np.asarray(oof, dtype=np.float64)
    if features is None:
        raise ConfigError("crossval probabilities need embeddings (features)")
    return None


def cleanlab_verdict(find: Callable[..., Any], quality_of: Callable[..., Any], given: Any, pred: np.ndarray,
                     filter_by: str, **quality_kw: Any) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """cleanlab's `find` (label issues) and `quality_of` (label quality) of the `given` labels under `pred`:
    (flagged, quality, the messages of the warnings it raised, which are caught, not shown)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flagged = find(given, pred, filter_by=filter_by, n_jobs=1)
        quality = quality_of(given, pred, **quality_kw)
    return (np.asarray(flagged, dtype=bool), np.asarray(quality, dtype=np.float64),
            [str(w.message) for w in caught])


#: cleanlab's warning about a class with too few rows to judge (the class as an index of its labels).
_FEW = re.compile(r"May not flag all label issues in class: (\d+), it has too few examples")


def _cleanlab_notes(messages: Sequence[str], names: Sequence[str], y: np.ndarray) -> list[str]:
    """cleanlab's warnings as one line each, naming labels instead of class indices (duplicates once)."""

    def few(match: re.Match[str]) -> str | None:
        k = int(match.group(1))
        if k >= len(names):
            return None
        return (f"'{names[k]}' has {int((y == k).sum())} row(s), too few for cleanlab to judge: none of "
                "them can be flagged")

    return cleanlab_notes(messages, few)


def cleanlab_notes(messages: Sequence[str], few: Callable[[re.Match[str]], str | None]) -> list[str]:
    """cleanlab's warning messages as one line each, duplicates once: a "too few examples in class k"
    warning as `few` words it (None: as any other), any other as "cleanlab: " and its first line."""
    notes: list[str] = []
    for message in messages:
        match = _FEW.search(message)
        note = few(match) if match else None
        if note is None:
            note = f"cleanlab: {message.splitlines()[0] if message else 'warning'}"
        if note not in notes:
            notes.append(note)
    return notes


#: How drop_skew names the empty label set.
EMPTY_SET = "(empty set)"


def drop_skew(rows: Sequence[Row], flagged: np.ndarray) -> dict[str, Any] | None:
    """What dropping the flagged rows does to the label balance, when it leaves one label (multi-label:
    one label set) on at least COLLAPSE_SHARE of the kept rows while the given labels were below that
    share: {"label", "before", "after", "kept"} (shares of the given and the kept rows); multi-label also
    when it removes every row carrying a label that some row carried: {"lost": [labels], "kept"}; else None.

    A crossval model trained on skewed LLM labels can dispute nearly every minority label (measured on
    implicit_hate with gpt-3.5-turbo's answers: 67% one label before the drop, 98% after), and a student
    trained on what is kept learns that one label (or never sees a label whose rows were all dropped)."""
    from llm2edge.labelsets import join_label_set

    multi = bool(rows) and isinstance(rows[0]["label"], list)

    def name(row: Row) -> str:
        return (join_label_set(row["label"]) or EMPTY_SET) if multi else row["label"]

    kept_rows = [r for r, flag in zip(rows, flagged) if not flag]
    if not kept_rows:
        return None
    top, count = Counter(name(r) for r in kept_rows).most_common(1)[0]
    n_kept = len(kept_rows)
    before = sum(name(r) == top for r in rows) / len(rows)
    out: dict[str, Any] = {}
    if count / n_kept >= COLLAPSE_SHARE and before < COLLAPSE_SHARE:
        out.update(label=top, before=round(before, 4), after=round(count / n_kept, 4))
    if multi:
        carried = list(dict.fromkeys(lab for r in rows for lab in r["label"]))
        still = {lab for r in kept_rows for lab in r["label"]}
        lost = [lab for lab in carried if lab not in still]
        if lost:
            out["lost"] = lost
    return {**out, "kept": n_kept} if out else None


def drop_skew_line(skew: dict[str, Any], oof_class_weight: str | None = OOF_CLASS_WEIGHT) -> str:
    """The warning for a drop_skew result, one line. With an unweighted out-of-fold model it names the
    balanced one (on the 32 recorded teachers it turned such drops from 5 folds to 0, experiments/README);
    None: the probabilities were the LLM's own, no out-of-fold model to weight."""
    fix = "" if oof_class_weight != "none" else (", or weight the out-of-fold model "
                                                  "(--oof-class-weight balanced)")
    what = []
    if "label" in skew:
        what.append(f"leaves '{skew['label']}' on {skew['after']:.0%} of the {skew['kept']} kept rows (was "
                    f"{skew['before']:.0%}): a student trained on them learns one label")
    if skew.get("lost"):
        names = ", ".join(f"'{lab}'" for lab in skew["lost"])
        what.append(f"removes every row carrying {names}: a student trained on the {skew['kept']} kept rows "
                    "never sees it")
    return (f"dropping the flagged rows {'; and it '.join(what)}; keep them (--action flag) and use expert "
            f"labels (sample-experts) or soft labels instead{fix}")


def _embed_rows(rows: Sequence[Row], config: CurateConfig) -> np.ndarray:
    """Frozen student embeddings of the rows' texts (paired with their fields, if any)."""
    return oof_features(rows, config.crossval)


def build_report(data: LabeledRows, issues: Issues, config: CurateConfig, seconds: float) -> dict[str, Any]:
    """The curation report as a JSON-ready dict: counts overall and per class, and the top examples."""
    per_class: dict[str, dict[str, int]] = {name: {"rows": 0, "flagged": 0} for name in data.labels}
    for row, flag in zip(data.rows, issues.flagged):
        per_class[row["label"]]["rows"] += 1
        per_class[row["label"]]["flagged"] += int(flag)
    return {
        **report_head(data, issues.flagged, config), "per_class": per_class,
        "label_is_argmax": round(_argmax_share(data.rows, data.labels), 4),
        "drop_skew": drop_skew(data.rows, issues.flagged),
        "note": LLM_NOTE if config.probs == "llm" else None, "warnings": list(issues.notes),
        "seconds": round(seconds, 2), "top": top_flagged(data.rows, issues, config.top, issues.suggested),
    }


LLM_NOTE = ("cleanlab on the LLM's own probabilities: the label is the argmax of these, so only items whose "
            "probability for another class clears that class's mean confidence can be flagged (never in a "
            "binary task); --probs crossval gives out-of-sample probabilities")


def _argmax_share(rows: Sequence[Row], labels: Sequence[str]) -> float:
    """The share of rows whose label is the argmax of their probabilities."""
    hits = 0
    for row in rows:
        p = row_probs(row, labels)
        hits += labels[max(range(len(p)), key=p.__getitem__)] == row["label"]
    return hits / max(1, len(rows))


def report_markdown(report: dict[str, Any]) -> str:
    """The curation report as markdown."""
    lines = [
        *markdown_head(report, "Curation report"),
        *([f"- **warning**: {drop_skew_line(report['drop_skew'], report.get('oof_class_weight'))}"]
          if report.get("drop_skew") else []),
        "",
        "| LLM label | rows | flagged | % |",
        "|---|---:|---:|---:|",
    ]
    for name, c in report["per_class"].items():
        pct = 100 * c["flagged"] / c["rows"] if c["rows"] else 0.0
        lines.append(f"| {name} | {c['rows']} | {c['flagged']} | {pct:.1f} |")
    return "\n".join(lines + markdown_top(report["top"], "given label", str)) + "\n"


def curate(config: CurateConfig) -> CurateResult:
    """Flag (or drop) likely label errors in a labels.jsonl file; write the curated file and a report."""
    start = time.perf_counter()
    data = load_labels(config.labels)
    if data.multi_label:
        from llm2edge.hub.curate.multilabel import curate_multi

        return curate_multi(config, data, start)
    features = _embed_rows(data.rows, config) if config.probs == "crossval" else None
    cv = config.crossval
    issues = find_issues(data.rows, data.labels, probs=config.probs, features=features, folds=cv.folds,
                         seed=cv.seed, filter_by=config.filter_by, class_weight=cv.oof_class_weight)
    out_rows = marked_rows(data.rows, issues, config.action, issues.suggested)
    out = Path(config.out)
    write_rows(out / "labels.jsonl", out_rows)
    report = build_report(data, issues, config, time.perf_counter() - start)
    skew = ([drop_skew_line(report["drop_skew"], report["oof_class_weight"])]
            if report["drop_skew"] and config.action == "drop" else [])
    return publish(out, report, out_rows, issues, report_markdown, [*issues.notes, *skew])
