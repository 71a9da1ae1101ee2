"""How a command names its label set: a task (shipped name or task file) or `--labels a,b,c` with
`--multi-label`. `label` and `import-labels` configs inherit these fields, so they are declared once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm2edge.errors import ConfigError
from llm2edge.hub.label.task import Task, load_task, task_from_dict
from llm2edge.params import param

#: The name of a task made from --labels (in every labels.jsonl row's `task`).
LABELS_TASK = "labels"
#: What a task made from --labels asks (a task file says more: descriptions, examples, fields).
LABELS_INSTRUCTION = "Which label fits the text best?"
LABELS_INSTRUCTION_MULTI = ("Which labels apply to the text? Answer with every label that applies, separated "
                            "by ';'.")


def parse_labels(spec: str) -> tuple[str, ...]:
    """'a,b,c' as a label tuple; ConfigError for fewer than two labels or a repeated one."""
    labels = tuple(x.strip() for x in spec.split(",") if x.strip())
    if len(labels) < 2:
        raise ConfigError(f"--labels: give at least two labels separated by commas, got {spec!r}")
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise ConfigError(f"--labels: '{twice[0]}' is given twice")
    return labels


@dataclass(kw_only=True)
class TaskChoice:
    """A task or a bare label set (exactly one); `check_task_choice` runs in the config's __post_init__."""

    #: Its label set, name, instruction, per-item fields and examples.
    task: str | Path | None = param(None, help="Shipped task name (stance, misinfo, ideology, humor, "
                                               "emotions) or a .toml/.yaml task file; or give --labels.")
    labels: str | None = param(None, help="The label set, comma-separated: a,b,c (instead of --task).")
    #: A task file says it with `multi_label = true`.
    multi_label: bool = param(False, help="With --labels: each row's label is a set of the labels (cells "
                                          "a;b, JSONL lists).")

    def check_task_choice(self) -> None:
        """ConfigError unless exactly one of task and labels is given (multi_label only with labels)."""
        if (self.task is None) == (self.labels is None):
            raise ConfigError("give exactly one of --task (a task with its labels) and --labels a,b,c")
        if self.labels is not None:
            parse_labels(self.labels)
        if self.multi_label and self.task is not None:
            raise ConfigError("--multi-label goes with --labels: a task file declares multi_label = true")

    def load_task(self) -> Task:
        """The task: loaded from --task, or made from --labels with a generic instruction."""
        if self.task is not None:
            return load_task(self.task)
        names = parse_labels(str(self.labels))
        return task_from_dict({"name": LABELS_TASK, "multi_label": self.multi_label, "labels": list(names),
                               "instruction": LABELS_INSTRUCTION_MULTI if self.multi_label
                               else LABELS_INSTRUCTION}, "--labels")
