"""Soft labels: each row's label distribution normalized to sum to 1 (expert rows one-hot, maybe smoothed).

RED-CT's code took `expit` of the log-probabilities as the soft target: that is neither a distribution
nor bounded in sum. Here the LLM's probabilities are renormalized over the task's label set, so a
cross-entropy with soft targets is a proper one.

Where the distribution of a (non-expert) row comes from, `source`: "llm", the row's own `probs` (one-hot
for a bare answer); "crossval", the out-of-fold probabilities of a model trained on the file's labels over
frozen student embeddings (`oof`: soft targets for teachers without probabilities; its argmax may differ
from the row's label); "mix", the equal-weight average (llm + crossval) / 2, which keeps at least half the
mass on a bare answer's label. The temperature applies after the source is chosen.

A multi-label file (`label` a list) gets soft targets per label (`build_multi_soft`): each label its own
Bernoulli probability, from the same sources (per label: the row's `probs`, the out-of-fold one-vs-rest
model, or their average); the temperature scales each label's log-odds (p^(1/T) over p^(1/T) + (1-p)^(1/T),
the two-outcome form of the softmax above); expert rows become 1 or 0 per label, smoothed to
(1 - smoothing) * y + smoothing / 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm2edge.checks import fraction, one_of, open_fraction_from_zero, positive
from llm2edge.defaults import SOFT_FROM, SOFT_SMOOTHING, SOFT_TEMPERATURE
from llm2edge.errors import ConfigError, TaskError
from llm2edge.hub.curate.oof import CrossvalConfig, oof_probs
from llm2edge.hub.curate.rows import Row, load_labels, row_probs, write_rows
from llm2edge.params import Checked, nested, param

#: Where soft targets come from (see the module docstring).
SOFT_SOURCES = ("llm", "crossval", "mix")


def build_soft_labels(rows: Sequence[Row], smoothing: float = SOFT_SMOOTHING,
                      labels: Sequence[str] | None = None, *,
                      temperature: float = SOFT_TEMPERATURE, source: str = SOFT_FROM,
                      oof: Sequence[Sequence[float]] | None = None) -> list[Row]:
    """Rows with `probs` a distribution over `labels` (sum 1); expert rows one-hot with `smoothing`; other
    rows from `source` ("crossval" and "mix" need `oof`, the rows' out-of-fold probabilities in `labels`
    order: `oof.oof_probs`)."""
    fraction("smoothing", smoothing, closed=False)
    positive("temperature", temperature)
    one_of("source", source, SOFT_SOURCES)
    if source != "llm" and (oof is None or labels is None or len(oof) != len(rows)):
        raise ConfigError(f"soft labels from {source} need the label set and one out-of-fold distribution "
                          "per row (oof.oof_probs)")
    if labels is None:
        seen: dict[str, None] = {}
        for row in rows:
            for name in (row.get("probs") or {}):
                seen.setdefault(str(name), None)
            seen.setdefault(str(row["label"]), None)
        labels = tuple(seen)
    k = len(labels)
    out = []
    for i, row in enumerate(rows):
        if row["label"] not in labels:
            raise TaskError(f"row id {row.get('id')}: label '{row['label']}' is not in {list(labels)}")
        if row.get("source") == "expert":
            probs = [(1.0 - smoothing) * (name == row["label"]) + smoothing / k for name in labels]
        else:
            probs = row_probs(row, labels)
            if oof is not None and source != "llm":
                other = [float(v) for v in oof[i]]
                probs = other if source == "crossval" else [(a + b) / 2 for a, b in zip(probs, other)]
            if temperature != 1.0:  # sharpen (<1) or flatten (>1) the LLM's distribution
                logs = [math.log(max(p, 1e-12)) / temperature for p in probs]
                top = max(logs)
                exps = [math.exp(v - top) for v in logs]
                probs = [e / sum(exps) for e in exps]
        total = sum(probs)
        new = dict(row)
        new["probs"] = {name: p / total for name, p in zip(labels, probs)}
        if source != "llm" and row.get("source") != "expert":
            new["soft_from"] = source  # the row's probs are no longer the LLM's own
        out.append(new)
    return out


@dataclass(kw_only=True)
class SoftConfig(Checked):
    """Options of `llm2edge soft-labels` (checked when built): `soft_labels` runs it."""

    labels: Path = param(help="labels.jsonl (LLM or merged).")
    out: Path = param(help="labels.jsonl with normalized `probs` to write.")
    smoothing: float = param(SOFT_SMOOTHING, check=open_fraction_from_zero,
                             help="Label smoothing of expert (one-hot) rows.")
    temperature: float = param(SOFT_TEMPERATURE, check=positive,
                               help="Sharpen (<1) or flatten (>1) LLM probs.")
    source: str = param(SOFT_FROM, choices=SOFT_SOURCES, flags=("--from",),
                        help="llm (the file's probs) | crossval (out-of-fold probabilities of a model on "
                             "student embeddings) | mix (their average).")
    #: The out-of-fold model of crossval and mix.
    crossval: CrossvalConfig = nested(CrossvalConfig)


@dataclass(frozen=True)
class SoftResult:
    """What `soft_labels_file` wrote."""

    out: Path
    rows: int
    skipped_error: int  # rows of the input with an error (no label): left out
    source: str


def build_multi_soft(rows: Sequence[Row], labels: Sequence[str], smoothing: float = SOFT_SMOOTHING, *,
                     temperature: float = SOFT_TEMPERATURE, source: str = SOFT_FROM,
                     oof: Any = None) -> list[Row]:
    """Multi-label rows with `probs` each label's own soft probability (the module docstring); `oof` (n, k)
    the rows' out-of-fold per-label probabilities (`multilabel.oof_label_probs`) for crossval and mix."""
    import numpy as np

    from llm2edge.hub.curate.multilabel import label_matrix, llm_label_probs

    fraction("smoothing", smoothing, closed=False)
    positive("temperature", temperature)
    one_of("source", source, SOFT_SOURCES)
    if source != "llm" and (oof is None or len(oof) != len(rows)):
        raise ConfigError(f"soft labels from {source} need one row of out-of-fold per-label probabilities "
                          "per row (multilabel.oof_label_probs)")
    probs = llm_label_probs(rows, labels)
    if source != "llm":
        other = np.asarray(oof, dtype=np.float64)
        probs = other if source == "crossval" else (probs + other) / 2
    if temperature != 1.0:
        a = np.clip(probs, 1e-12, 1.0) ** (1.0 / temperature)
        b = np.clip(1.0 - probs, 1e-12, 1.0) ** (1.0 / temperature)
        probs = a / (a + b)
    expert = (1.0 - smoothing) * label_matrix(rows, labels) + smoothing / 2
    out = []
    for i, row in enumerate(rows):
        is_expert = row.get("source") == "expert"
        values = expert[i] if is_expert else probs[i]
        new = {**row, "probs": {name: float(v) for name, v in zip(labels, values)}}
        if source != "llm" and not is_expert:
            new["soft_from"] = source
        out.append(new)
    return out


def soft_labels_file(labels: str | Path, out: str | Path, *, smoothing: float = SOFT_SMOOTHING,
                     temperature: float = SOFT_TEMPERATURE, source: str = SOFT_FROM,
                     crossval: CrossvalConfig | None = None) -> SoftResult:
    """`llm2edge soft-labels`: read a labels file, build soft targets from `source`, write them to `out`."""
    one_of("source", source, SOFT_SOURCES)
    data = load_labels(labels)
    if data.multi_label:
        from llm2edge.hub.curate.multilabel import oof_label_probs

        oof = oof_label_probs(data.rows, data.labels, crossval) if source != "llm" else None
        multi = build_multi_soft(data.rows, data.labels, smoothing, temperature=temperature, source=source,
                                 oof=oof)
        write_rows(out, multi)
        return SoftResult(Path(out), len(multi), data.skipped_error, source)
    oof: Any = oof_probs(data.rows, data.labels, crossval) if source != "llm" else None
    rows = build_soft_labels(data.rows, smoothing, data.labels, temperature=temperature, source=source,
                             oof=oof)
    write_rows(out, rows)
    return SoftResult(Path(out), len(rows), data.skipped_error, source)


def soft_labels(config: SoftConfig) -> SoftResult:
    """`soft_labels_file` with the settings of a SoftConfig."""
    return soft_labels_file(config.labels, config.out, smoothing=config.smoothing,
                            temperature=config.temperature, source=config.source, crossval=config.crossval)
