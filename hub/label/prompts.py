"""Render a task and an item into chat messages: instruction with label descriptions, K shots, the item."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from llm2edge.defaults import LABEL_SEP
from llm2edge.errors import TaskError
from llm2edge.hashing import digest
from llm2edge.hub.label.backend import Prompt
from llm2edge.hub.label.task import Example, Task
from llm2edge.labelsets import check_single, join_label_set

#: Bump when the rendering below changes: it is part of every prompt hash.
RENDER_VERSION = "p1"
#: The cue before the final answer when the model reasons first (--cot); backends score labels after it.
ANSWER_CUE = "Answer:"
#: Texts that carry no content, for contextual calibration (Zhao et al., 2021).
CONTENT_FREE = ("N/A", "", "[MASK]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: The default chain-of-thought instruction when the task has none.
DEFAULT_COT = ("First explain your reasoning in one or two sentences, then give the answer on its own line "
               f"as '{ANSWER_CUE} <label>'.")


def select_shots(examples: Sequence[Example], task: Task, k: int, *, shuffle_seed: int | None = None
                 ) -> tuple[Example, ...]:
    """Pick `k` examples round-robin over the task's labels (deterministic; optional seeded shuffle first)."""
    if k <= 0:
        return ()
    pool = list(examples)
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(pool)
    if task.multi_label:  # an example counts for every label in its set, and is chosen once
        by_label = {name: [ex for ex in pool if name in task.label_set(ex.label, "example")]
                    for name in task.label_names}
    else:
        by_label = {name: [ex for ex in pool if ex.label == name] for name in task.label_names}
    chosen: list[Example] = []
    while len(chosen) < k and any(by_label.values()):
        for name in task.label_names:
            while by_label[name] and by_label[name][0] in chosen:
                by_label[name].pop(0)
            if by_label[name] and len(chosen) < k:
                chosen.append(by_label[name].pop(0))
    if len(chosen) < k:
        raise TaskError(f"--shots {k}: task '{task.name}' has only {len(chosen)} examples; "
                        "add examples to the task or pass --examples FILE")
    return tuple(chosen)


def examples_from_file(path: str | Path, task: Task, *, text_col: str = "text", label_col: str = "label"
                       ) -> list[Example]:
    """Labeled few-shot examples from a data file (text, label and the task's fields)."""
    from llm2edge.records import iter_records

    out = []
    for rec in iter_records(path, text_col=text_col, label_col=label_col, fields=task.fields,
                            require_label=True):
        where = f"{path}:{rec.line}"
        if task.multi_label:
            label = join_label_set(task.label_set(rec.label or "", where))
        else:
            check_single(rec.label or "", task.label_names, where=where)
            task.check_label(rec.label or "", where)
            label = rec.label or ""
        out.append(Example(text=rec.text, label=label, fields=dict(rec.fields)))
    return out


@dataclass(frozen=True)
class PromptBuilder:
    """Renders a task (with its chosen shots and CoT switch) into Prompts; its hash names the prompt."""

    task: Task
    shots: tuple[Example, ...] = ()
    cot: bool = False

    @classmethod
    def create(cls, task: Task, *, shots: int = 0, examples: Sequence[Example] | None = None,
               cot: bool = False) -> PromptBuilder:
        """A builder with `shots` examples from `examples` (shuffled, seed 0) or else from the task."""
        if examples is not None:
            chosen = select_shots(examples, task, shots, shuffle_seed=0)
        else:
            chosen = select_shots(task.examples, task, shots)
        return cls(task=task, shots=chosen, cot=cot)

    @property
    def cot_instruction(self) -> str | None:
        """The reasoning instruction when CoT is on (the task's, or the default)."""
        return (self.task.cot or DEFAULT_COT) if self.cot else None

    def answer(self, label: str) -> str:
        """The assistant's answer for `label` (its first verbalizer word)."""
        return self.task.space.forms(label)[0]

    def system_message(self) -> str:
        """The instruction followed by the labels (as the model should answer them) and their descriptions."""
        lines = [self.task.instruction, "", "Labels:"]
        for lab in self.task.labels:
            desc = f": {lab.description}" if lab.description else ""
            lines.append(f"- {self.answer(lab.name)}{desc}")
        if self.task.multi_label:
            none = "; answer none when no label applies" if self.task.allow_none else ""
            lines += ["", f"Answer with every label that applies, separated by '{LABEL_SEP}'{none}."]
        if self.cot_instruction:
            lines += ["", self.cot_instruction]
        return "\n".join(lines)

    def user_message(self, text: str, fields: Mapping[str, str]) -> str:
        """The item as the user turn: the task's template, or 'Field: value' lines and 'Text: ...'."""
        missing = [f for f in self.task.fields if f not in fields]
        if missing:
            raise TaskError(f"task '{self.task.name}' needs field(s) {', '.join(missing)} for every item")
        if self.task.template:
            values = {"text": text, **{f: fields[f] for f in self.task.fields}}
            # one pass: braces inside the values are never substituted again
            return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), self.task.template)
        lines = [f"{f.replace('_', ' ').capitalize()}: {fields[f]}" for f in self.task.fields]
        lines.append(f"Text: {text}")
        return "\n".join(lines)

    def shot_answer(self, label: str) -> str:
        """The assistant turn of a few-shot example (with the answer cue under CoT; a multi-label
        example's set as its answers joined with LABEL_SEP, 'none' for the empty set)."""
        if self.task.multi_label:
            labels = self.task.label_set(label, "example")
            answer = LABEL_SEP.join(self.answer(n) for n in labels) or "none"
        else:
            answer = self.answer(label)
        return f"{ANSWER_CUE} {answer}" if self.cot else answer

    def render(self, item_id: str, text: str, fields: Mapping[str, str] | None = None) -> Prompt:
        """The Prompt for one item: system, K user/assistant shot pairs, then the item's user turn."""
        fields = fields or {}
        messages: list[dict[str, str]] = [{"role": "system", "content": self.system_message()}]
        for ex in self.shots:
            messages.append({"role": "user", "content": self.user_message(ex.text, ex.fields)})
            messages.append({"role": "assistant", "content": self.shot_answer(ex.label)})
        messages.append({"role": "user", "content": self.user_message(text, fields)})
        return Prompt(item_id=item_id, messages=tuple(messages))

    def content_free(self, fields: Mapping[str, str] | None = None) -> list[Prompt]:
        """Prompts with content-free texts (for contextual calibration), keeping the item's fields."""
        fields = fields or {}
        return [self.render(f"__content_free_{i}", text, fields) for i, text in enumerate(CONTENT_FREE)]

    @property
    def prompt_hash(self) -> str:
        """sha256 (16 hex digits) of the rendered template: system, shots, item template, version, CoT."""
        placeholder = self.user_message("{text}", {f: "{" + f + "}" for f in self.task.fields})
        material = {
            "render": RENDER_VERSION, "version": self.task.version, "task": self.task.name,
            "system": self.system_message(), "item": placeholder, "cot": self.cot,
            "shots": [[self.user_message(ex.text, ex.fields), self.shot_answer(ex.label)]
                      for ex in self.shots],
            "labels": [[name, list(self.task.space.forms(name))] for name in self.task.label_names],
        }
        return digest(material, ensure_ascii=False)


def plain_text(messages: Sequence[Mapping[str, str]]) -> str:
    """Chat messages as plain text for models without a chat template; ends with the answer cue."""
    parts: list[str] = []
    for msg in messages:
        role, content = msg["role"], msg["content"]
        if role == "system":
            parts.append(content + "\n\n")
        elif role == "user":
            parts.append(content + "\n")
        else:  # assistant: the previous user turn is followed by its answer
            answer = content[len(ANSWER_CUE):].strip() if content.startswith(ANSWER_CUE) else content
            parts.append(f"{ANSWER_CUE} {answer}\n\n")
    return "".join(parts) + ANSWER_CUE
