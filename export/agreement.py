"""The int8 guard: on which texts int8 is compared with torch, and how a disagreement is counted.

A model's validation slice is often small (10% of a few hundred rows: 30-40 texts), where one flip moves the
agreement by 3%. Agreement with torch needs no gold labels, so the guard tops the validation texts up with
the training texts (`train_meta.json`'s `data` file) to `guard_texts` texts.

A flip (int8's top label differs from torch's) is a *near-tie* when torch itself scores the two labels within
`near_tie` logits of each other (0.05 logits: two labels at about 51/49): any of the two answers is one the
fp32 model almost gave, and int8's rounding noise (typically a few hundredths of a logit) decides it. Other
flips are *real* disagreements. The gate counts only real ones: int8 ships when
`1 - real_flips / n >= min_agreement`. Near-tie flips are reported beside them.

Training texts are ones the model has seen, so they tend to have wider margins than new texts; the guard
reports how many texts came from each source, and the validation-only agreement stays in the manifest too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.errors import DataError


@dataclass(frozen=True)
class GuardResult:
    """int8 against torch on the guard texts."""

    n: int
    from_validation: int
    from_training: int
    #: Plain argmax agreement (every flip counts).
    agreement: float
    near_tie_flips: int
    real_flips: int
    near_tie_logit: float
    #: 1 - real_flips / n: what the gate compares with min_agreement.
    judged_agreement: float

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (for the manifest)."""
        return asdict(self)


def training_texts(model_dir: Path, meta: dict[str, Any], limit: int) -> tuple[list[str], str | None]:
    """Up to `limit` texts of the data the model was trained on (train_meta.json's `data`), and a note when
    that file cannot be used (None when it was read)."""
    from llm2edge.records import iter_records

    data = meta.get("data")
    if limit <= 0 or not data:
        return [], None if limit <= 0 else f"{model_dir / 'train_meta.json'} names no training data file"
    path = Path(str(data))
    if not path.is_absolute() and not path.is_file():
        path = model_dir / path
    if not path.is_file():
        return [], f"training data {path.name} (train_meta.json) is not on this machine"
    texts: list[str] = []
    try:
        for rec in iter_records(path, text_col=str(meta.get("text_col") or "text"), allow_empty=True):
            if rec.text.strip():
                texts.append(rec.text)
            if len(texts) >= limit * 2:  # enough to fill `limit` after removing duplicates
                break
    except (DataError, OSError, json.JSONDecodeError) as exc:
        return [], f"training data {path.name} could not be read ({str(exc).splitlines()[0]})"
    return texts, None


def guard_texts(validation: list[str], training: list[str], target: int) -> tuple[list[str], int]:
    """The validation texts, then distinct training texts not among them up to `target` in all; returns
    (texts, how many came from training)."""
    seen = set(validation)
    extra: list[str] = []
    for text in training:
        if len(validation) + len(extra) >= target:
            break
        if text not in seen:
            seen.add(text)
            extra.append(text)
    return [*validation, *extra], len(extra)


def judge(reference: np.ndarray, int8: np.ndarray, *, from_validation: int, near_tie: float) -> GuardResult:
    """Count int8's flips against torch's logits, near-ties (torch margin < near_tie) apart from real ones."""
    n = len(reference)
    ref_top, got_top = reference.argmax(axis=1), int8.argmax(axis=1)
    flipped = np.flatnonzero(ref_top != got_top)
    margins = reference[flipped, ref_top[flipped]] - reference[flipped, got_top[flipped]]
    near = int(np.sum(margins < near_tie))
    real = len(flipped) - near
    return GuardResult(n=n, from_validation=from_validation, from_training=n - from_validation,
                       agreement=round(1 - len(flipped) / n, 6) if n else 1.0,
                       near_tie_flips=near, real_flips=real, near_tie_logit=near_tie,
                       judged_agreement=round(1 - real / n, 6) if n else 1.0)


def describe(result: GuardResult) -> str:
    """One line: how many texts from where, flips split into real and near-tie."""
    return (f"int8 vs torch on {result.n} texts ({result.from_validation} validation + "
            f"{result.from_training} training): {result.real_flips} real disagreement(s), "
            f"{result.near_tie_flips} near-tie flip(s) "
            f"(torch margin < {result.near_tie_logit} logits, not counted); judged agreement "
            f"{result.judged_agreement:.4f} (plain {result.agreement:.4f})")


def too_few(n: int, min_agreement: float) -> str | None:
    """A warning when n texts cannot resolve min_agreement (one real disagreement already fails it)."""
    if n and min_agreement < 1 and 1 / n > 1 - min_agreement:
        return (f"int8 is judged on only {n} texts: a single real disagreement ({1 / n:.3f}) already fails "
                f"--min-agreement {min_agreement}; give more texts (a larger --validate file, or keep the "
                "training data named in train_meta.json where export can read it)")
    return None
