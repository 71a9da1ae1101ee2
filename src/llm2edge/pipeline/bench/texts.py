"""The texts a benchmark classifies: a fixed sample of a data file, or a built-in mixed-length set."""

from __future__ import annotations

import random
from pathlib import Path

from llm2edge.errors import DataError
from llm2edge.records import read_records

#: Texts used when no --texts file is given: mixed lengths, written for llm2edge.
DEFAULT_TEXTS = (
    "Great product, works as described.",
    "The delivery was late and the box was damaged, but support replaced it within two days.",
    "I would not recommend this to anyone.",
    "After three weeks of daily use the battery still lasts a full day, the screen is bright enough "
    "outdoors, and the only thing I miss is a headphone jack.",
    "Meh.",
    "The council voted to extend the bus line to the new hospital, starting next spring.",
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    "Scientists report that the new vaccine reduced hospital admissions by more than half in a trial "
    "with twelve thousand volunteers across four countries, though side effects were common.",
)


def sample_texts(path: str | Path | None, *, n: int = 256, seed: int = 0, text_col: str = "text"
                 ) -> list[str]:
    """A fixed sample of `n` texts from a data file (cycled when shorter), or the built-in mixed set."""
    pool = list(DEFAULT_TEXTS) if path is None else [r.text for r in read_records(path, text_col=text_col)]
    if n < 1:
        raise DataError(f"need at least one text to benchmark, asked for {n}")
    rng = random.Random(seed)
    if len(pool) >= n:
        return rng.sample(pool, n)
    out: list[str] = []
    while len(out) < n:
        chunk = list(pool)
        rng.shuffle(chunk)
        out += chunk
    return out[:n]
