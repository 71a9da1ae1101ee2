"""Self-consistency votes (`llm2edge label --samples K`): label confidence for teachers without logprobs.

Each item is answered K times by sampling at a temperature (`LABEL_SAMPLE_TEMPERATURE` by default):

- the openai backend asks for `n=K` choices in one request and makes up any choice the server leaves out
  with one more request each (llama.cpp's server ignores `n`: K requests), every request with its own
  seed derived from the item key, and no logprobs requested;
- the hf backend draws K answers from its label-score distribution at the temperature, with a generator
  seeded by (seed, item key): a rerun draws the same answers, whatever the batch or process.

The vote shares, smoothed add-alpha over the label set (`LABEL_VOTE_ALPHA`: p = (votes + alpha) /
(answers + alpha * n_labels)), become the row's `probs` with `prob_source: votes`; the row also records
`samples` (K asked) and `votes` (answers per label; an unparseable answer casts no vote). The label is the
most voted answer; a tie goes to the tied label answered first, not to the first in label order (which
would bias every tie toward one label).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from llm2edge.checks import at_least, positive
from llm2edge.defaults import LABEL_VOTE_ALPHA
from llm2edge.errors import ConfigError
from llm2edge.hashing import digest
from llm2edge.hub.label.backend import LabelSpace, Scored

#: The prob_source of a row labeled by votes.
VOTES = "votes"


def item_seed(seed: int, item_id: str, draw: int = 0) -> int:
    """A seed for draw `draw` of one item (a 60-bit integer, stable across runs, batches and processes)."""
    return int(digest([seed, item_id, draw], length=15), 16)


def vote_probs(answers: Sequence[str], labels: Sequence[str], alpha: float = LABEL_VOTE_ALPHA
               ) -> dict[str, float]:
    """Add-alpha smoothed vote shares over `labels` (sum 1); `answers` are label names."""
    at_least("alpha", alpha, 0)
    counts = Counter(answers)
    total = len(answers) + alpha * len(labels)
    if not answers or not math.isfinite(total):
        raise ConfigError(f"vote shares need at least one answer and a finite alpha (got {len(answers)} "
                          f"answers, alpha {alpha})")
    return {name: (counts[name] + alpha) / total for name in labels}


def majority(answers: Sequence[str]) -> str:
    """The most frequent answer; among tied answers the one given first."""
    counts = Counter(answers)
    top = max(counts.values())
    return next(a for a in answers if counts[a] == top)


def scored_from_answers(item_id: str, answers: Sequence[str | None], space: LabelSpace, *,
                        raw: str | None = None, alpha: float = LABEL_VOTE_ALPHA) -> Scored:
    """A Scored with the smoothed vote shares of `answers` (None: an answer that named no label)."""
    votes = tuple(a for a in answers if a is not None)
    if not votes:
        return Scored(item_id=item_id, raw=raw, samples=len(answers),
                      error=f"none of the {len(answers)} sampled answers named a label")
    return Scored(item_id=item_id, probs=vote_probs(votes, space.names, alpha), prob_source=VOTES, raw=raw,
                  answers=votes, samples=len(answers))


def sample_answers(logprobs: Mapping[str, float], k: int, temperature: float, rng: np.random.Generator
                   ) -> list[str]:
    """`k` labels drawn from softmax(logprobs / temperature): constrained answers sampled at a temperature."""
    at_least("samples", k)
    positive("temperature", temperature)
    names = list(logprobs)
    z = np.array([logprobs[n] for n in names], dtype=np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    return [names[i] for i in rng.choice(len(names), size=k, p=p)]


def row_fields(scored: Scored, labels: Sequence[str]) -> dict[str, Any]:
    """What a votes row adds to a labels row: the majority label, `samples` (K) and `votes` per label."""
    answers = scored.answers or ()
    counts = Counter(answers)
    return {"label": majority(answers), "samples": scored.samples,
            "votes": {name: counts[name] for name in labels}}
