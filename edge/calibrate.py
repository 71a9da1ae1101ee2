"""Calibrate selective prediction: the lowest top-probability threshold whose kept items agree with the
labels at least `target` of the time, with a Clopper-Pearson lower confidence bound (numpy only).

On held-out labelled rows (gold labels, or a teacher's labels to mimic) the bundle's predictions are
sorted by top probability. For each candidate threshold t (each distinct top probability) the items with
top probability >= t are kept; k of those m agree with the labels. The chosen threshold is the lowest t whose
one-sided Clopper-Pearson lower bound on the agreement, Beta^-1(1 - confidence; k, m - k + 1), is at least
`target`. The bound holds for one threshold fixed in advance; picking the threshold on the same rows makes
it slightly optimistic (raise --confidence for a stricter choice).

The threshold and a coverage/agreement curve go into the bundle's manifest (`calibration`), the full curve
into `calibration.csv` and a plot into `calibration.png` inside the bundle (listed and checksummed like every
bundle file), and the bundle is verified again. When no threshold reaches the target, the calibration is
written with `threshold: null` (and `predict --defer auto` refuses the bundle).

A multi-label bundle is calibrated the same way on another score: each row's margin, min over labels of
|p_l - t_l| (edge/defer.py), and a row agrees when its whole predicted set equals its labelled set (subset
agreement). The chosen threshold is the band half-width w: `--defer auto` defers rows whose margin < w.
The labelled file holds label sets (JSONL lists or `;`-joined cells; the empty set is allowed).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.checks import fraction, open_fraction
from llm2edge.defaults import CALIBRATE_CONFIDENCE, CALIBRATE_TARGET, LABEL_COL, PREDICT_BATCH_SIZE, TEXT_COL
from llm2edge.edge.bundle import CALIBRATION_FILES
from llm2edge.errors import ConfigError, DataError
from llm2edge.hashing import sha256_file

CSV_NAME, PNG_NAME = CALIBRATION_FILES
#: Points of the coverage/agreement curve kept in the manifest (the CSV has every candidate).
CURVE_POINTS = 51
#: Candidate thresholds at most (evenly thinned beyond: the curve's resolution is 1/MAX_CANDIDATES).
MAX_CANDIDATES = 2000
#: Bisection steps of the bound (2^-60: exact to float64).
BISECT_STEPS = 60
#: Continued-fraction terms of the incomplete beta function at most (converges in O(sqrt(n)) terms).
CF_MAX_TERMS = 2000
_TINY = 1e-300
_EPS = 1e-15


def _betacf(a: np.ndarray, b: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The continued fraction of the incomplete beta function (modified Lentz), vectorized."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = np.ones_like(x)
    d = 1.0 - qab * x / qap
    d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
    h = d.copy()
    for m in range(1, CF_MAX_TERMS + 1):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / np.where(np.abs(d) < _TINY, _TINY, d)
            c = 1.0 + aa / c
            c = np.where(np.abs(c) < _TINY, _TINY, c)
            delta = d * c
            h *= delta
        if np.all(np.abs(delta - 1.0) < _EPS):
            break
    return h


def _log_beta_inv(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """-log B(a, b), elementwise."""
    lgamma = np.vectorize(math.lgamma, otypes=[np.float64])
    return lgamma(a + b) - lgamma(a) - lgamma(b)


def betainc(a: Any, b: Any, x: Any, log_beta_inv: np.ndarray | None = None) -> np.ndarray:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 < x < 1, elementwise."""
    a, b, x = (np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(a, b, x))
    if log_beta_inv is None:
        log_beta_inv = _log_beta_inv(a, b)
    log_front = log_beta_inv + a * np.log(x) + b * np.log1p(-x)
    swap = x >= (a + 1.0) / (a + b + 2.0)
    a2, b2, x2 = np.where(swap, b, a), np.where(swap, a, b), np.where(swap, 1.0 - x, x)
    part = np.exp(log_front) * _betacf(a2, b2, x2) / a2
    return np.where(swap, 1.0 - part, part)


def clopper_pearson_lower(k: Any, n: Any, confidence: float, *, use_scipy: bool = True) -> np.ndarray:
    """One-sided lower confidence bound on a success rate from k successes in n trials (exact binomial).

    Beta^-1(1 - confidence; k, n - k + 1), and 0 where k == 0: scipy's betaincinv when scipy is installed,
    else (`use_scipy=False` too) bisection on the numpy incomplete beta function (same values to ~1e-12).
    `confidence` is in (0, 1): at 0 every bound would be 1, at 1 every bound 0.
    """
    open_fraction("confidence", confidence)
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(n < 1) or np.any(k < 0) or np.any(k > n):
        raise ConfigError("need 0 <= k <= n and n >= 1 for a Clopper-Pearson bound")
    alpha = 1.0 - confidence
    a = np.maximum(k, 1.0)
    b = n - k + 1.0
    if use_scipy:
        try:
            from scipy.special import betaincinv
        except ImportError:
            pass
        else:
            return np.where(k == 0, 0.0, betaincinv(a, b, alpha))
    lo, hi = np.zeros_like(a), np.ones_like(a)
    log_beta_inv = _log_beta_inv(a, b)
    for _ in range(BISECT_STEPS):
        mid = (lo + hi) / 2
        below = betainc(a, b, mid, log_beta_inv) < alpha
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return np.where(k == 0, 0.0, lo)


@dataclass(frozen=True)
class Curve:
    """Coverage and agreement of the kept items at each candidate threshold (highest threshold first)."""

    thresholds: np.ndarray  # float64: keep items whose top probability >= threshold
    kept: np.ndarray  # int: items kept
    agreement: np.ndarray  # share of kept items whose label matches
    lower: np.ndarray  # Clopper-Pearson lower bound of that share
    n: int

    @property
    def coverage(self) -> np.ndarray:
        """Share of all items kept at each threshold."""
        return self.kept / self.n

    def row(self, i: int) -> dict[str, float]:
        """Candidate i as a dict (threshold exact, the rest rounded)."""
        rounded = {"coverage": self.coverage[i], "agreement": self.agreement[i], "lower_bound": self.lower[i]}
        return {"threshold": float(self.thresholds[i]), "kept": int(self.kept[i]),
                **{key: round(float(value), 6) for key, value in rounded.items()}}


def selection_curve(top: np.ndarray, correct: np.ndarray, confidence: float) -> Curve:
    """The curve of every distinct top probability as a threshold (items sorted by top probability)."""
    if len(top) == 0:
        raise DataError("no rows to calibrate on")
    order = np.argsort(-top, kind="stable")
    p, ok = top[order], correct[order].astype(np.int64)
    ends = np.flatnonzero(np.append(p[1:] != p[:-1], True)) + 1  # prefix sizes at each distinct value
    if len(ends) > MAX_CANDIDATES:
        ends = ends[np.unique(np.linspace(0, len(ends) - 1, MAX_CANDIDATES).round().astype(int))]
    k = np.cumsum(ok)[ends - 1]
    return Curve(thresholds=p[ends - 1].astype(np.float64), kept=ends, agreement=k / ends,
                 lower=clopper_pearson_lower(k, ends, confidence), n=len(top))


def choose(curve: Curve, target: float) -> int | None:
    """Index of the lowest threshold (largest kept set) whose lower bound >= target, or None."""
    ok = np.flatnonzero(curve.lower >= target)
    return int(ok[-1]) if len(ok) else None


@dataclass(frozen=True)
class CalibrationResult:
    """What `calibrate_bundle` found and wrote."""

    bundle: Path
    threshold: float | None
    target: float
    confidence: float
    n: int
    chosen: dict[str, float] | None  # the chosen candidate's row (coverage, agreement, bound), or None
    manifest: dict[str, Any] = field(default_factory=dict)
    csv: Path | None = None
    png: Path | None = None

    def summary(self) -> str:
        """One or two plain lines: the threshold and what it keeps, or that the target was not reached."""
        if self.chosen is None:
            return (f"no threshold reaches agreement >= {self.target} at {self.confidence:.0%} confidence on "
                    f"{self.n} rows: no threshold written (predict --defer auto will refuse this bundle)")
        c = self.chosen
        return (f"threshold {c['threshold']:.6f}: keeps {c['coverage']:.1%} of {self.n} rows "
                f"(defers {1 - c['coverage']:.1%}), agreement {c['agreement']:.4f}, "
                f"lower bound {c['lower_bound']:.4f} >= target {self.target} "
                f"at {self.confidence:.0%} confidence")


def _labelled(path: Path, labels: list[str], text_col: str, label_col: str) -> tuple[list[str], list[int]]:
    """Texts and label indices of the labelled file; DataError naming file:line for an unknown label."""
    from llm2edge.records import read_records

    if not Path(path).exists():
        raise DataError(f"{path}: no such file")
    if Path(path).is_dir():
        raise DataError(f"{path}: is a folder, not a file")
    index = {name: i for i, name in enumerate(labels)}
    texts, gold = [], []
    from llm2edge.labelsets import check_single

    for rec in read_records(path, text_col=text_col, label_col=label_col, require_label=True):
        if rec.label not in index:
            check_single(rec.label, labels, where=f"{path}:{rec.line}")
            raise DataError(f"{path}:{rec.line}: label '{rec.label}' is not one of the bundle's labels "
                            f"{labels}")
        texts.append(rec.text)
        gold.append(index[rec.label])
    return texts, gold


def _multilabel_scores(clf: Any, data: Path, text_col: str, label_col: str,
                       batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """A multi-label bundle's margin per labelled row, and whether its predicted set is the labelled one."""
    from llm2edge.edge.defer import margins
    from llm2edge.edge.labelfile import read_label_sets
    from llm2edge.labelsets import decide

    rows = read_label_sets(data, clf.labels, text_col=text_col, label_col=label_col)
    proba = clf.predict_proba(rows.texts, batch_size=batch_size)
    cuts = clf.info.threshold_array
    correct = (decide(proba, cuts) == rows.matrix(clf.labels).astype(bool)).all(axis=1)
    return margins(proba, cuts), correct


def _data_record(path: Path) -> dict[str, str | None]:
    """The calibration data as the manifest records it: its file name and SHA-256 (None for a pipe or a
    device, which cannot be read twice), never a path of the machine that calibrated."""
    return {"data": path.name, "data_sha256": sha256_file(path) if path.is_file() else None}


def _write_csv(path: Path, curve: Curve) -> None:
    """Every candidate threshold as a CSV row."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["threshold", "kept", "coverage", "agreement", "lower_bound"])
        for i in range(len(curve.kept)):
            r = curve.row(i)
            writer.writerow([repr(r["threshold"]), r["kept"], r["coverage"], r["agreement"],
                             r["lower_bound"]])


def _plot(path: Path, curve: Curve, chosen: int | None, target: float, confidence: float) -> Path | None:
    """calibration.png: agreement and its lower bound against coverage; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(curve.coverage, curve.agreement, label="agreement on kept items")
    ax.plot(curve.coverage, curve.lower, label=f"lower bound ({confidence:.0%}, Clopper-Pearson)")
    ax.axhline(target, color="gray", linestyle="--", label=f"target {target}")
    if chosen is not None:
        ax.axvline(curve.coverage[chosen], color="black", linestyle=":",
                   label=f"chosen: coverage {curve.coverage[chosen]:.1%}")
    ax.set_xlabel("coverage (share of items kept)")
    ax.set_ylabel("agreement with the labels")
    ax.set_xlim(0, 1)
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})  # no version stamp: same curve, same bytes
    plt.close(fig)
    return path


def _curve_points(curve: Curve, chosen: int | None) -> list[dict[str, float]]:
    """At most CURVE_POINTS candidates, evenly spread, always with the chosen one and the last one."""
    count = len(curve.kept)
    picks = set(np.linspace(0, count - 1, min(count, CURVE_POINTS)).round().astype(int).tolist())
    if chosen is not None:
        picks.add(chosen)
    return [curve.row(i) for i in sorted(picks)]


def calibrate_bundle(bundle: str | Path, data: str | Path, *, text_col: str = TEXT_COL,
                     label_col: str = LABEL_COL, target: float = CALIBRATE_TARGET,
                     confidence: float = CALIBRATE_CONFIDENCE, threads: int | None = None,
                     batch_size: int = PREDICT_BATCH_SIZE) -> CalibrationResult:
    """Pick the bundle's deferral threshold on held-out labelled rows and write it into the bundle."""
    from llm2edge.edge.bundle import MANIFEST_NAME, read_bundle, write_manifest
    from llm2edge.edge.classifier import Classifier

    fraction("target", target)
    open_fraction("confidence", confidence)
    clf = Classifier.load(bundle, threads=threads)
    info = clf.info
    if info.multi_label:
        score, correct = _multilabel_scores(clf, Path(data), text_col, label_col, batch_size)
    else:
        texts, gold = _labelled(Path(data), info.labels, text_col, label_col)
        proba = clf.predict_proba(texts, batch_size=batch_size)
        correct = proba.argmax(axis=1) == np.asarray(gold)
        score = proba.max(axis=1)
    curve = selection_curve(score, correct, confidence)
    chosen = choose(curve, target)
    folder = info.path
    _write_csv(folder / CSV_NAME, curve)
    png = _plot(folder / PNG_NAME, curve, chosen, target, confidence)
    if png is None and (folder / PNG_NAME).exists():
        (folder / PNG_NAME).unlink()  # a stale plot of an earlier calibration
    row = curve.row(chosen) if chosen is not None else None
    calibration = {
        "threshold": None if row is None else row["threshold"], "target": target, "confidence": confidence,
        "method": "clopper-pearson", "rule": "lowest threshold with lower bound >= target",
        **({"score": "margin", "agreement_of": "label set"} if info.multi_label else {}),
        **_data_record(Path(data)), "label_col": label_col, "n": curve.n,
        "agreement_all": round(float(correct.mean()), 6),
        "coverage": None if row is None else row["coverage"],
        "agreement": None if row is None else row["agreement"],
        "lower_bound": None if row is None else row["lower_bound"],
        "curve": _curve_points(curve, chosen),
    }
    old = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest = write_manifest(folder, labels=info.labels, max_length=info.max_length,
                              source_model=info.source_model, quantization=info.quantization,
                              validation=info.validation, versions=old.get("versions") or {},
                              student=info.student, calibration=calibration,
                              multi_label=info.multi_label,
                              thresholds=info.thresholds if info.multi_label else None)
    read_bundle(folder)  # the rewritten bundle must verify
    return CalibrationResult(bundle=folder, threshold=calibration["threshold"], target=target,
                             confidence=confidence, n=curve.n, chosen=row, manifest=manifest,
                             csv=folder / CSV_NAME, png=png)
