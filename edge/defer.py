"""Selective prediction at the edge: which predictions to defer (e.g. to the LLM), with numpy only.

A prediction is deferred when its top probability is below a threshold: the bundle's calibrated one
(`defer="auto"`, written by `llm2edge calibrate`), or one given as a probability. The label is still given.

A multi-label bundle decides each label apart (p_l >= t_l), so the defer value is a band half-width w in
[0, 1]: a row is deferred when any label's probability lies inside its uncertainty band around its threshold,
|p_l - t_l| < w. A row's `margin` (its confidence) is min over labels of |p_l - t_l|; it is deferred when
margin < w (w = 0 defers nothing). `llm2edge calibrate` fits w the way it fits the single-label threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llm2edge.edge.bundle import BundleInfo
from llm2edge.errors import BundleError, ConfigError
from llm2edge.labelsets import decide, sets_of

#: The word forms of `defer` (besides a probability): no deferral, or the bundle's calibrated threshold.
DEFER_WORDS = ("none", "auto")


@dataclass(frozen=True)
class Prediction:
    """One text's prediction with deferral: its label, top probability, and whether it is deferred.

    For a multi-label bundle `label` is the list of labels that apply and `confidence` the row's margin,
    min over labels of |p_l - t_l| (see the module docstring)."""

    label: str | list[str]
    confidence: float
    deferred: bool


def resolve_defer(info: BundleInfo, defer: str | float | None) -> float | None:
    """The deferral threshold for `defer`: None for None/"none", the calibrated one for "auto", else `defer`.

    "auto" on a bundle without calibration, or whose calibration met no threshold, is a BundleError.
    """
    if defer is None or (isinstance(defer, str) and defer.strip().lower() == "none"):
        return None
    if isinstance(defer, str) and defer.strip().lower() == "auto":
        cal = info.calibration
        where = info.path / "manifest.json"
        if not cal:
            raise BundleError(f"{where}: the bundle is not calibrated; run `llm2edge calibrate` first "
                              "or give --defer a probability")
        if info.defer_threshold is None:
            raise BundleError(f"{where}: calibration found no threshold with agreement >= "
                              f"{cal.get('target')} at its confidence; recalibrate with a lower --target or "
                              "give --defer a probability")
        return info.defer_threshold
    try:
        value = float(defer)
    except (TypeError, ValueError):
        raise ConfigError(f"defer must be none, auto or a probability in [0, 1], got {defer!r}") from None
    if isinstance(defer, bool) or not 0 <= value <= 1:
        raise ConfigError(f"defer must be none, auto or a probability in [0, 1], got {defer!r}")
    return value


def margins(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Each row's multi-label margin: min over labels of |p_l - t_l| (float64 [n])."""
    if not len(proba):
        return np.zeros(0)
    return np.abs(np.asarray(proba, dtype=np.float64) - np.asarray(thresholds)[None, :]).min(axis=1)


def deferred_mask(proba: np.ndarray, threshold: float | None,
                  thresholds: np.ndarray | None = None) -> np.ndarray:
    """Boolean [n]: True where the top probability is below `threshold` (all False for None); with the
    per-label `thresholds` of a multi-label bundle, True where the margin is below `threshold` (a label's
    probability lies inside its band |p_l - t_l| < threshold)."""
    if threshold is None or not len(proba):
        return np.zeros(len(proba), dtype=bool)
    if thresholds is not None:
        return margins(proba, thresholds) < threshold
    return proba.max(axis=1) < threshold


def multilabel_predictions(proba: np.ndarray, labels: list[str], thresholds: np.ndarray,
                           threshold: float | None) -> list[Prediction]:
    """Prediction rows (label list, margin, deferred) of a multi-label probability matrix."""
    if not len(proba):
        return []
    sets = sets_of(decide(proba, thresholds), labels)
    margin = margins(proba, thresholds)
    mask = deferred_mask(proba, threshold, thresholds)
    return [Prediction(label=list(s), confidence=float(m), deferred=bool(d))
            for s, m, d in zip(sets, margin, mask)]


def predictions(proba: np.ndarray, labels: list[str], threshold: float | None) -> list[Prediction]:
    """Prediction rows (label, top probability, deferred) of a probability matrix."""
    if not len(proba):
        return []
    mask = deferred_mask(proba, threshold)
    top = proba.argmax(axis=1)
    return [Prediction(label=labels[int(i)], confidence=float(proba[row, i]), deferred=bool(mask[row]))
            for row, i in enumerate(top)]
