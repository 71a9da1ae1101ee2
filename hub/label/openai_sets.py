"""Multi-label items on an OpenAI-compatible server: ask for the list, parse it strictly, or vote over K.

The prompt (`prompts.PromptBuilder` for a multi-label task) asks for every label that applies, separated
by LABEL_SEP. The reply is read with `multilabel.answer_set`: a name outside the labels, a name twice, or
an empty set the task does not allow is an error of that row (retried like any unparseable answer when the
answer is sampled; a greedy answer would only repeat itself). The set becomes 0/1 probabilities
(`prob_source: answer`). With `samples` K > 1 the K sampled answer sets give each label its smoothed vote
share (`multilabel.set_vote_probs`, `prob_source: votes`); an unparseable answer casts no vote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm2edge.errors import DataError
from llm2edge.hub.label.backend import LabelSpace, Prompt, Scored
from llm2edge.hub.label.multilabel import answer_set, set_vote_probs
from llm2edge.hub.label.votes import VOTES, item_seed
from llm2edge.labelsets import join_label_set

if TYPE_CHECKING:
    from llm2edge.hub.label.openai_backend import OpenAIBackend

#: Longest answer asked for: every label once, joined (a few tokens per label).
_TOKENS_PER_LABEL = 6


def one_line(text: str, limit: int = 200) -> str:
    """One line of `text`, cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def max_tokens(space: LabelSpace, floor: int) -> int:
    """The answer budget of a list: enough for every label once, at least `floor`."""
    return max(floor, _TOKENS_PER_LABEL * len(space.names))


async def label_set_one(backend: OpenAIBackend, client: Any, prompt: Prompt, space: LabelSpace) -> Scored:
    """One multi-label item: the parsed answer set as 0/1 probabilities, or K answers' vote shares."""
    from llm2edge.hub.label.openai_backend import _ItemError

    messages = [dict(m) for m in prompt.messages]
    budget = max_tokens(space, backend.max_tokens)
    sampled = backend.samples > 1 or backend.temperature > 0
    kind = "parse" if sampled else "answer"  # a greedy answer would repeat itself: no retry
    if backend.samples == 1:
        content = (await backend._request(client, messages, space, constrain=False, max_tokens=budget))[0][0]
        try:
            labels = answer_set(content, space, where="answer")
        except DataError as exc:
            raise _ItemError(str(exc), kind) from None
        backend.stats["answer"] += 1
        return Scored(item_id=prompt.item_id, probs={n: float(n in labels) for n in space.names},
                      prob_source="answer", raw=content)
    contents: list[str] = []
    while len(contents) < backend.samples:
        want = backend.samples - len(contents)
        replies = await backend._request(client, messages, space, constrain=False, max_tokens=budget, n=want,
                                         seed=item_seed(backend.seed, prompt.item_id, len(contents)))
        backend.stats["n_short"] += max(0, want - len(replies))
        contents += [content for content, _ in replies[:want]]
    sets: list[tuple[str, ...]] = []
    for content in contents:
        try:
            sets.append(answer_set(content, space))
        except DataError:
            continue  # an unparseable answer casts no vote
    raw = " | ".join(one_line(c, 40) for c in contents)
    if not sets:
        raise _ItemError(f"none of the {len(contents)} sampled answers is a valid label list: {raw!r}", kind)
    backend.stats["votes"] += 1
    return Scored(item_id=prompt.item_id, probs=set_vote_probs(sets, space.names), prob_source=VOTES, raw=raw,
                  answers=tuple(join_label_set(s) for s in sets), samples=len(contents))
