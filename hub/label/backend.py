"""The contract between the labeling driver and its backends (in-process Hugging Face, OpenAI-compatible)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: Where a label distribution came from: the model's label scores (hf), the server's logprobs, one answer
#: (one-hot), or the vote shares of several sampled answers (`--samples`, llm2edge.hub.label.votes).
PROB_SOURCES = ("scores", "logprobs", "answer", "votes")


def logsumexp(values: Sequence[float]) -> float:
    """log(sum(exp(v))) without overflow."""
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def normalize(logprobs: Mapping[str, float]) -> dict[str, float]:
    """Softmax of per-label log-scores: the distribution a backend reports (sums to 1)."""
    total = logsumexp(list(logprobs.values()))
    return {label: math.exp(lp - total) for label, lp in logprobs.items()}


@dataclass(frozen=True)
class Prompt:
    """One item's rendered prompt: chat messages (few-shot turns included) ending with the user turn."""

    item_id: str
    messages: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class LabelSpace:
    """The labels of a task, in order, each with the surface forms that count as that label."""

    names: tuple[str, ...]
    words: dict[str, tuple[str, ...]] = field(default_factory=dict)  # label -> verbalizers (default: name)
    multi_label: bool = False  # an answer is a set of the names (llm2edge.labelsets)
    allow_none: bool = False  # multi-label: the empty set is an answer

    def forms(self, label: str) -> tuple[str, ...]:
        """The surface forms of `label` (its verbalizer words, or its name)."""
        return self.words.get(label) or (label,)


@dataclass
class Scored:
    """A backend's answer for one prompt: a distribution over the label names, or an error."""

    item_id: str
    probs: dict[str, float] | None = None  # sums to 1 over LabelSpace.names
    logprobs: dict[str, float] | None = None  # unnormalized log-scores per label, when the backend has them
    prob_source: str | None = None  # one of PROB_SOURCES
    raw: str | None = None  # generated text (CoT reasoning, or the server's answer), if any
    error: str | None = None  # set when the item failed after all retries
    answers: tuple[str, ...] | None = None  # votes: the label of each parsed sampled answer, in order
    samples: int | None = None  # votes: the answers asked for (K; unparseable ones cast no vote)


class Backend(Protocol):
    """An LLM that turns prompts into label distributions."""

    name: str  # "hf" or "openai"
    model: str  # model id or path as given by the user (never a secret)

    def label_batch(self, prompts: Sequence[Prompt], space: LabelSpace, *, cot: str | None = None
                    ) -> list[Scored]:
        """Score `prompts` (one Scored per prompt, same order); `cot` asks for reasoning first."""
        ...

    def close(self) -> None:
        """Release models, clients and servers."""
        ...
