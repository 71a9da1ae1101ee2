"""The collapse guard: a student that gives one label to nearly every item, where the labels do not.

A few hundred skewed labels and a short schedule can leave a fine-tuned student predicting the majority
label for everything, and training still "succeeds". After training, each scored slice (the held-back
validation slice against its LLM labels, the --eval data against gold) is checked: when one predicted label
covers at least COLLAPSE_SHARE of a slice while the slice's own labels are below that share, the run is
marked `collapsed` (metrics.json, train_meta.json) and a warning line is printed.

Before that, `fallback_reason` looks at the fine-tuned weights on the held-back slice, the one signal a run
without gold has: one label for at least COLLAPSE_SHARE of the slice while the training labels give that
label less. With `on_collapse="head"` (the default) the trainer then keeps a head trained on the frozen
pretrained encoder instead (measured in issue 10 on FLAN-UL2's one-sided cmv_persuasion labels: the
fine-tuned student collapsed in 5 of 5 folds, the frozen-encoder head in 1 of 5).

Multi-label: the unit is the predicted set (`multilabel.set_shares`): a slice collapsed when one set (the
empty set included) is predicted for at least COLLAPSE_SHARE of it while its gold sets' most frequent one
is below that share; the fallback compares with the share of that set among the training labels' sets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from llm2edge.console import warn
from llm2edge.defaults import COLLAPSE_SHARE

#: The fewest held-back rows on which a fine-tuned student is judged collapsed and replaced (4 rows all
#: predicted one label say little; the recorded-teacher grid's slices hold 35-50).
FALLBACK_MIN_ROWS = 20


def _shares(report: Mapping[str, Any]) -> tuple[int, str, float, float]:
    """(items, most predicted label, its share of the predictions, the top share of the slice's labels);
    for a multi-label report the same of label sets."""
    if report.get("multi_label"):
        return (int(report["n"]), str(report["top_set"]), float(report["top_set_share"]),
                float(report["gold_top_set_share"]))
    labels = list(report["labels"])
    confusion = report["confusion"]
    n = sum(sum(row) for row in confusion)
    predicted = [sum(row[j] for row in confusion) for j in range(len(labels))]
    top = max(range(len(labels)), key=lambda j: predicted[j])
    truth = max(sum(row) for row in confusion) if confusion else 0
    return n, labels[top], predicted[top] / n if n else 0.0, truth / n if n else 0.0


def slice_collapse(report: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The collapse check of one slice from its report dict (labels + confusion, rows = truth)."""
    n, top, pred_share, true_share = _shares(report)
    collapsed = n > 0 and pred_share >= COLLAPSE_SHARE and true_share < COLLAPSE_SHARE
    return {"slice": name, "n": n, "collapsed": collapsed, "top_label": top,
            "predicted_share": round(pred_share, 4), "labels_top_share": round(true_share, 4)}


def fallback_reason(validation: Mapping[str, Any] | None, targets: torch.Tensor, num_labels: int,
                    train_sets: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Why the fine-tuned weights should be replaced, or None: on the held-back slice (`validation`, a
    report dict) one label gets >= COLLAPSE_SHARE of the predictions while the training labels (`targets`,
    hard or soft) give it less; never on fewer than FALLBACK_MIN_ROWS rows. The training labels, not the
    slice's few dozen, are the reference: a slice of 20 rows can read 95% one label by chance.
    Multi-label: `train_sets` (each training row's set as `multilabel.set_shares` names it) is the
    reference for the most predicted set."""
    from llm2edge.hub.train.small_data import label_mass

    if validation is None or validation.get("n", 0) < FALLBACK_MIN_ROWS:
        return None
    n, top, pred_share, _ = _shares(validation)
    if validation.get("multi_label"):
        sets = list(train_sets or [])
        share = sum(s == top for s in sets) / len(sets) if sets else 0.0
    else:
        mass = label_mass(targets, num_labels)
        share = float(mass[list(validation["labels"]).index(top)] / mass.sum())
    if pred_share < COLLAPSE_SHARE or share >= COLLAPSE_SHARE:
        return None
    return {"slice": "validation", "n": n, "top_label": top, "predicted_share": round(pred_share, 4),
            "training_labels_share": round(share, 4)}


def check_collapse(reports: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """{"collapsed": bool, "slices": [...]} over the named reports (None ones skipped); warns when any
    slice collapsed."""
    slices = [slice_collapse(rep, name) for name, rep in reports.items() if rep is not None and rep.get("n")]
    collapsed = any(s["collapsed"] for s in slices)
    for s in slices:
        if s["collapsed"]:
            warn(f"the student collapsed: it gives '{s['top_label']}' to {s['predicted_share']:.0%} of the "
                 f"{s['slice']} slice ({s['n']} items), whose labels give it at most "
                 f"{s['labels_top_share']:.0%}; try more steps (--min-steps), --class-weight balanced or a "
                 "higher --lr")
    return {"collapsed": collapsed, "slices": slices}
