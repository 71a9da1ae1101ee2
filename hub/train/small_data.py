"""Settings sized for small, skewed label sets (a few hundred LLM labels, most of them one label).

Measured on recorded gpt-3.5-turbo labels (issue 10): with a fixed 3 epochs, ~350 rows are ~33 optimizer
steps, and a student trained on 68% one label gave that label to every test item. Two remedies live here:
the number of epochs is raised until the run takes at least `min_steps` optimizer steps (at most
`max_epochs`), and `class_weight="auto"` turns balanced loss weights on when the labels are skewed.
"""

from __future__ import annotations

import math

import torch

#: "auto" class weights are balanced when the most frequent training label has more than this many
#: times the rows (or soft mass) of the least frequent one present; below it the loss is unweighted.
AUTO_SKEW_RATIO = 1.5


def planned_epochs(steps_per_epoch: int, *, epochs: int, min_steps: int, max_epochs: int) -> int:
    """The epochs to run: `epochs`, raised until at least `min_steps` optimizer steps, capped at
    `max_epochs` (never below `epochs`); `min_steps` 0 keeps `epochs` exactly."""
    if min_steps <= 0:
        return epochs
    needed = math.ceil(min_steps / max(1, steps_per_epoch))
    return max(epochs, min(max_epochs, needed))


def label_mass(targets: torch.Tensor, num_labels: int) -> torch.Tensor:
    """Rows per class: counts of hard targets, or the summed probability of soft ones (float64)."""
    if targets.dim() == 1:
        return torch.bincount(targets, minlength=num_labels).to(torch.float64)
    return targets.to(torch.float64).sum(0)


def skew_ratio(targets: torch.Tensor, num_labels: int) -> float:
    """Most frequent over least frequent class among the classes present (1.0 for a single class)."""
    mass = label_mass(targets, num_labels)
    present = mass[mass > 0]
    if len(present) < 2:
        return 1.0
    return float(present.max() / present.min())


def resolve_class_weight(mode: str, targets: torch.Tensor, num_labels: int) -> str:
    """"none" or "balanced": `mode` itself, or for "auto" balanced iff skew_ratio > AUTO_SKEW_RATIO."""
    if mode != "auto":
        return mode
    return "balanced" if skew_ratio(targets, num_labels) > AUTO_SKEW_RATIO else "none"
