"""Labeling a multi-label task (`multi_label = true`): per-label yes/no prompts, label sets, row fields.

The contract is `llm2edge.labelsets`. Here:

- **hf backend**: each (text, label) pair is one prompt asking whether that label (its name and
  description) applies, answered `yes` or `no` (`YesNoBuilder`); P(label) = P(yes) / (P(yes) + P(no)) from
  the next-token scores of the two answers (each summed over its forms `yes`/`Yes`, `no`/`No`). The k
  prompts of a batch's texts go to the backend as one batch (`score_sets`), in runs of k per text: the hf
  backend forwards each text's shared prefix (system turn, shots, the text) once and only the k questions
  after it (`group`), so a text's scores do not depend on the rest of the batch. `--calibrate` divides each
  label's yes/no pair by its mean on the content-free texts (contextual calibration per label).
- **openai backend**: one prompt per text asking for the list (`answer_set` parses the reply strictly).
- **votes** (`--samples K`): a label's probability is its smoothed share of the K answer sets holding it,
  p = (votes + alpha) / (answers + 2 alpha) (add-alpha over its two outcomes, as `votes.vote_probs`).
- **the set** written to a row: the labels with p >= LABEL_THRESHOLD, in task order; when that is empty
  and the task does not allow none, the most probable label (a row is never left without a label the task
  requires, and never truncated to one when several pass).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llm2edge.defaults import LABEL_SEP, LABEL_THRESHOLD, LABEL_VOTE_ALPHA
from llm2edge.errors import DataError
from llm2edge.hub.label.backend import Backend, LabelSpace, Prompt, Scored
from llm2edge.hub.label.prompts import CONTENT_FREE, PromptBuilder
from llm2edge.hub.label.task import LabelDef, Task
from llm2edge.labelsets import join_label_set, parse_label_set, set_confidence

YES, NO = "yes", "no"
#: The two answers of a per-label prompt, each with the forms scored for it.
YES_NO = LabelSpace(names=(YES, NO), words={YES: ("yes", "Yes"), NO: ("no", "No")})
#: The system turn of a per-label prompt.
YES_NO_SYSTEM = "Decide whether a label applies to a text. Answer yes or no."
#: The question after the item; {label} is the name, {description} ' (its description)' or ''.
YES_NO_QUESTION = "Does the label '{label}'{description} apply to this text? Answer yes or no."
#: Bump when the yes/no rendering changes: it is part of a multi-label prompt hash.
YES_NO_VERSION = "yn1"
#: What an answer may say for the empty set (tasks with allow_none).
NONE_ANSWERS = ("none", "")
_STRIP = " \t\r\n\"'`*.!,:[](){}<>"


def yes_no_material() -> dict[str, str]:
    """The yes/no template (hashed into a multi-label task's prompt hash)."""
    return {"version": YES_NO_VERSION, "system": YES_NO_SYSTEM, "question": YES_NO_QUESTION}


@dataclass(frozen=True)
class YesNoBuilder:
    """Renders the yes/no prompt of one label for any item (same interface as PromptBuilder's render and
    content_free, so `contextual.Calibrator` calibrates it)."""

    builder: PromptBuilder
    label: LabelDef

    def question(self) -> str:
        """The question that follows the item."""
        desc = f" ({self.label.description})" if self.label.description else ""
        return YES_NO_QUESTION.format(label=self.label.name, description=desc)

    def answer(self, example_label: str) -> str:
        """A few-shot example's answer: yes when this label is in the example's set."""
        return YES if self.label.name in self.builder.task.label_set(example_label, "shot") else NO

    def render(self, item_id: str, text: str, fields: Mapping[str, str] | None = None) -> Prompt:
        """The prompt asking whether this label applies to one item (the item id gets '#<label>')."""
        b = self.builder
        messages: list[dict[str, str]] = [{"role": "system", "content": YES_NO_SYSTEM}]
        for ex in b.shots:
            messages.append({"role": "user", "content": f"{b.user_message(ex.text, ex.fields)}\n\n"
                                                        f"{self.question()}"})
            messages.append({"role": "assistant", "content": self.answer(ex.label)})
        messages.append({"role": "user", "content": f"{b.user_message(text, fields or {})}\n\n"
                                                    f"{self.question()}"})
        return Prompt(item_id=f"{item_id}#{self.label.name}", messages=tuple(messages))

    def content_free(self, fields: Mapping[str, str] | None = None) -> list[Prompt]:
        """This label's prompts on the content-free texts (contextual calibration)."""
        return [self.render(f"__content_free_{i}", text, fields) for i, text in enumerate(CONTENT_FREE)]


def yes_no_builders(builder: PromptBuilder) -> list[YesNoBuilder]:
    """One YesNoBuilder per label of the builder's task, in task order."""
    return [YesNoBuilder(builder, lab) for lab in builder.task.labels]


def set_vote_probs(answers: Sequence[Sequence[str]], labels: Sequence[str], alpha: float = LABEL_VOTE_ALPHA
                   ) -> dict[str, float]:
    """Each label's add-alpha smoothed share of the answer sets holding it (independent per label)."""
    n = len(answers)
    return {name: (sum(name in a for a in answers) + alpha) / (n + 2 * alpha) for name in labels}


def score_sets(backend: Backend, builders: Sequence[YesNoBuilder], items: Sequence[tuple[str, str,
               Mapping[str, str]]], calibrators: Sequence[Any] | None = None) -> list[Scored]:
    """Per item (key, text, fields): the probability of each label from its yes/no prompt, all k prompts
    of all items scored in one backend batch; `calibrators`: one contextual Calibrator per label."""
    k = len(builders)
    prompts = [b.render(key, text, fields) for key, text, fields in items for b in builders]
    # a text's k prompts differ only after the text: a backend that can forwards that prefix once
    grouped = {"group": k} if getattr(backend, "shares_group_prefix", False) else {}
    scored = backend.label_batch(prompts, YES_NO, **grouped)
    out: list[Scored] = []
    for i, (key, _text, fields) in enumerate(items):
        part = scored[i * k:(i + 1) * k]
        bad = next((s for s in part if s.error or not s.probs), None)
        if bad is not None:
            out.append(Scored(item_id=key, error=bad.error or "no yes/no probabilities"))
            continue
        if calibrators is not None:
            part = [cal.apply(s, fields) for cal, s in zip(calibrators, part)]
        names = [b.label.name for b in builders]
        probs = {name: float(s.probs[YES]) for name, s in zip(names, part)}  # type: ignore[index]
        if all(s.answers is not None for s in part):  # --samples: draw j of every label makes answer set j
            draws = len(part[0].answers or ())
            sets = tuple(join_label_set([n for n, s in zip(names, part) if s.answers[j] == YES])  # type: ignore[index]
                         for j in range(draws))
            out.append(Scored(item_id=key, probs=probs, prob_source=part[0].prob_source, answers=sets,
                              samples=part[0].samples))
            continue
        out.append(Scored(item_id=key, probs=probs, prob_source=part[0].prob_source))
    return out


def answer_set(content: str, space: LabelSpace, *, where: str = "answer") -> tuple[str, ...]:
    """The label set an answer names: `a;b` (case-insensitive forms, surrounding quotes and full stops
    ignored), 'none' for the empty set; DataError (via labelsets.parse_label_set) for an unknown or
    repeated name or an empty set the task does not allow."""
    text = content.strip().strip(_STRIP)
    if space.allow_none and text.lower() in NONE_ANSWERS:
        return ()
    forms = {f.lower(): name for name in space.names for f in (*space.forms(name), name)}
    parts = [p.strip(_STRIP) for p in text.split(LABEL_SEP)] if text else []
    names = [forms.get(p.lower(), p) for p in parts]
    return parse_label_set(names, space.names, where=where, allow_empty=space.allow_none)


def decide_set(probs: Mapping[str, float], names: Sequence[str], *, allow_none: bool) -> list[str]:
    """The row's label set: p >= LABEL_THRESHOLD, in `names` order; the most probable label when that is
    empty and the task does not allow none."""
    chosen = [n for n in names if probs[n] >= LABEL_THRESHOLD]
    if not chosen and not allow_none:
        chosen = [max(names, key=lambda n: probs[n])]
    return chosen


def row_fields(scored: Scored, task: Task) -> dict[str, Any]:
    """What a multi-label row holds: `label` (the set, a list), `probs` per label (independent, in [0, 1]),
    `confidence` (labelsets.set_confidence); votes rows add `samples` and `votes` (sets holding each
    label). An error text instead when the backend gave no valid probability per label."""
    probs = scored.probs or {}
    bad = [n for n in task.label_names
           if n not in probs or not np.isfinite(probs[n]) or not 0.0 <= probs[n] <= 1.0]
    if bad:
        return {"error": f"backend returned no valid probability per label (got {probs})"}
    p = {n: float(probs[n]) for n in task.label_names}
    row: dict[str, Any] = {
        "label": decide_set(p, task.label_names, allow_none=task.allow_none), "probs": p,
        "confidence": float(set_confidence(np.array([[p[n] for n in task.label_names]]))[0]),
        "margin_logprob": None, "prob_source": scored.prob_source,
    }
    if scored.answers is not None:
        sets = [a.split(LABEL_SEP) if a else [] for a in scored.answers]
        row.update(samples=scored.samples, votes={n: sum(n in s for s in sets) for n in task.label_names})
    return row


def check_row_kind(row: Mapping[str, Any], multi_label: bool, where: str) -> None:
    """DataError when a labels row's `label` is a list for a single-label task, or a string for a
    multi-label one (labels.jsonl tells them apart by the JSON type)."""
    label = row.get("label")
    if label is None:
        return
    if multi_label and not isinstance(label, list):
        raise DataError(f"{where}: label {label!r} is a single label, but the task is multi-label (a "
                        "multi-label labels file holds a list per row): use another --out, or the "
                        "single-label task")
    if not multi_label and isinstance(label, list):
        raise DataError(f"{where}: label {label!r} is a list of labels, but the task is single-label: use "
                        "another --out, or the multi-label task")
