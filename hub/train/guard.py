"""The collapse guard: a student that gives one label to nearly every item, where the labels do not.

A few hundred skewed labels and a short schedule can leave a fine-tuned student predicting the majority
label for everything, and training still "succeeds". After training, each scored slice (the held-back
validation slice against its LLM labels, the --eval data against gold) is checked: when one predicted label
covers at least COLLAPSE_SHARE of a slice while the slice's own labels are below that share, the run is
marked `collapsed` (metrics.json, train_meta.json) and a warning line is printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm2edge.console import warn

#: A student that gives one label to at least this share of a slice has collapsed (unless the slice's
#: own labels are at least that skewed).
COLLAPSE_SHARE = 0.95


def slice_collapse(report: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The collapse check of one slice from its report dict (labels + confusion, rows = truth)."""
    labels = list(report["labels"])
    confusion = report["confusion"]
    n = sum(sum(row) for row in confusion)
    predicted = [sum(row[j] for row in confusion) for j in range(len(labels))]
    truth = [sum(row) for row in confusion]
    top = max(range(len(labels)), key=lambda j: predicted[j])
    pred_share = predicted[top] / n if n else 0.0
    true_share = max(truth) / n if n else 0.0
    collapsed = n > 0 and pred_share >= COLLAPSE_SHARE and true_share < COLLAPSE_SHARE
    return {"slice": name, "n": n, "collapsed": collapsed, "top_label": labels[top],
            "predicted_share": round(pred_share, 4), "labels_top_share": round(true_share, 4)}


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
