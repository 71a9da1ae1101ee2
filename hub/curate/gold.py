"""Gold labels (`merge-experts --simulate-from`): simulated experts, and what an expert sample is worth.

`GoldLabels` joins a gold file to labels rows (by id, then by text and per-item fields, then by text).
`sample_error_rates` measures a confidence source: the LLM's error rate inside the expert sample next to
its error rate overall and inside a random sample of the same size. The overall rate is what a random
sample is worth in expectation (its error count is hypergeometric with that mean); one seeded random draw
is reported beside it, and `p_value` is the chance that a random sample holds at least as many errors as
the expert sample. `ratio` = sample rate / overall rate: above 1 the confidence source finds LLM errors
better than chance, which is the whole case for confidence-informed sampling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.defaults import LABEL_COL, SEED, TEXT_COL
from llm2edge.errors import DataError
from llm2edge.hub.curate.rows import Row
from llm2edge.records import iter_rows, stable_id


@dataclass(frozen=True)
class GoldLabels:
    """Gold labels by id, by (text, field values) and by text (texts with two gold labels left out)."""

    path: Path
    by_id: dict[str, str]
    by_key: dict[tuple[str, ...], str]
    by_text: dict[str, str]
    fields: tuple[str, ...]

    def get(self, row: Row) -> str | None:
        """The gold label of a labels row (by its id, then its text and fields, then its text), or None."""
        key = (str(row["text"]), *(str((row.get("fields") or {}).get(f, "")) for f in self.fields))
        return (self.by_id.get(str(row["id"])) or self.by_key.get(key)
                or self.by_text.get(str(row["text"])))


def read_gold(path: str | Path, fields: Sequence[str] = (), *, id_col: str | None = None,
              label_col: str = LABEL_COL, text_col: str = TEXT_COL) -> GoldLabels:
    """Read a gold file (CSV/JSONL/Parquet); ids are `id_col` or derived as `label` derives them."""
    by_id: dict[str, str] = {}
    by_key: dict[tuple[str, ...], str] = {}
    by_text: dict[str, str | None] = {}
    path = Path(path)
    for n, (line, row) in enumerate(iter_rows(path)):
        if n == 0:
            missing = [c for c in (text_col, label_col, *([id_col] if id_col else [])) if c not in row]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(row)})")
        text = str(row[text_col])
        label = str(row[label_col] or "").strip()
        if not label:
            raise DataError(f"{path}:{line}: empty gold label")
        rid = str(row[id_col]) if id_col else stable_id(n, text)
        by_id[rid] = label
        by_key[(text, *(str(row.get(f, "")) for f in fields))] = label
        by_text[text] = label if by_text.get(text, label) == label else None
    return GoldLabels(path, by_id, by_key, {t: v for t, v in by_text.items() if v is not None}, tuple(fields))


@dataclass(frozen=True)
class SampleErrorRates:
    """The LLM's error rate inside an expert sample, overall, and inside a random sample of the same size."""

    rows: int  # rows with a gold label
    sampled: int  # of them in the expert sample
    errors: int  # LLM labels that differ from gold, among `rows`
    errors_sampled: int  # ... among the expert sample
    rate_overall: float  # errors / rows: also the expected rate of a random sample
    rate_sampled: float
    rate_random: float  # one random sample of `sampled` rows drawn with `seed`
    ratio: float | None  # rate_sampled / rate_overall (None when the LLM made no error)
    p_value: float  # P(a random sample of the same size holds >= errors_sampled errors), hypergeometric
    seed: int

    def text(self) -> str:
        """One phrase for a summary line."""
        ratio = f"{self.ratio:.2f}x" if self.ratio is not None else "n/a"
        return (f"LLM error rate {self.rate_sampled:.3f} in the expert sample vs {self.rate_overall:.3f} "
                f"overall ({ratio}, p={self.p_value:.3g}; a seeded random sample of {self.sampled}: "
                f"{self.rate_random:.3f})")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, floats rounded to 4 digits."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def sample_error_rates(llm: Sequence[str], gold: Sequence[str | None], sampled: Sequence[int], *,
                       seed: int = SEED) -> SampleErrorRates:
    """Error rates of LLM labels `llm` against `gold` (None: unknown, left out), inside the rows `sampled`
    (indices into both), overall, and inside a random sample of as many rows drawn with `seed`."""
    from scipy.stats import hypergeom

    if len(llm) != len(gold):
        raise DataError(f"{len(llm)} LLM labels but {len(gold)} gold labels")
    known = [i for i, g in enumerate(gold) if g is not None]
    wrong = np.array([llm[i] != gold[i] for i in known], dtype=bool)
    pos = {i: j for j, i in enumerate(known)}
    inside = sorted({pos[i] for i in sampled if i in pos})
    if not known or not inside:
        raise DataError("no gold label for the rows, or none for the sampled rows: no error rates")
    n, k, errors = len(known), len(inside), int(wrong.sum())
    errors_sampled = int(wrong[inside].sum())
    draw = np.random.default_rng(seed).choice(n, size=k, replace=False)
    overall = errors / n
    rate = errors_sampled / k
    return SampleErrorRates(rows=n, sampled=k, errors=errors, errors_sampled=errors_sampled,
                            rate_overall=overall, rate_sampled=rate, rate_random=float(wrong[draw].mean()),
                            ratio=rate / overall if errors else None,
                            p_value=float(hypergeom.sf(errors_sampled - 1, n, errors, k)), seed=seed)
