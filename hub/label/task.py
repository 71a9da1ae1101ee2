"""Labeling tasks as data: a TOML or YAML file with the instruction, labels, per-item fields and examples."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.defaults import LABEL_SEP
from llm2edge.errors import DataError, TaskError
from llm2edge.hashing import digest
from llm2edge.hub.label.backend import LabelSpace
from llm2edge.labelsets import join_label_set, parse_label_set

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Folder of the tasks shipped with llm2edge (package data).
TASKS_DIR = Path(__file__).resolve().parents[1] / "tasks"

_TOP_KEYS = {"name", "version", "instruction", "labels", "fields", "examples", "cot", "template",
             "multi_label", "allow_none"}


@dataclass(frozen=True)
class LabelDef:
    """One label: its name (written to the output), a description for the prompt, and verbalizer words."""

    name: str
    description: str = ""
    words: tuple[str, ...] = ()

    @property
    def forms(self) -> tuple[str, ...]:
        """The surface forms scored for this label (its words, or its name)."""
        return self.words or (self.name,)


@dataclass(frozen=True)
class Example:
    """A labeled few-shot example: text, label and the task's per-item fields (a multi-label task's label
    is its set joined with LABEL_SEP, in the task's label order; `Task.label_set` splits it)."""

    text: str
    label: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A labeling task: what to ask, which labels, which per-item fields, and few-shot examples."""

    name: str
    instruction: str
    labels: tuple[LabelDef, ...]
    version: str = "1"
    fields: tuple[str, ...] = ()
    examples: tuple[Example, ...] = ()
    cot: str | None = None
    template: str | None = None  # how an item is shown, e.g. "Target: {target}\nTweet: {text}"
    source: str = ""  # the file it came from
    multi_label: bool = False  # a row's label is a set of the labels (llm2edge.labelsets)
    allow_none: bool = False  # multi-label only: a row may carry no label at all (the empty set)

    @property
    def label_names(self) -> tuple[str, ...]:
        """The label names in order."""
        return tuple(lab.name for lab in self.labels)

    @property
    def space(self) -> LabelSpace:
        """The labels as a backend LabelSpace (names and verbalizer words)."""
        return LabelSpace(names=self.label_names, words={lab.name: lab.forms for lab in self.labels},
                          multi_label=self.multi_label, allow_none=self.allow_none)

    def material(self) -> dict[str, Any]:
        """Everything that shapes the prompt, as a JSON-ready dict (the prompt hash is taken over it)."""
        return {
            "name": self.name, "version": self.version, "instruction": self.instruction,
            "labels": [[lab.name, lab.description, list(lab.words)] for lab in self.labels],
            "fields": list(self.fields), "cot": self.cot, "template": self.template,
            "examples": [[ex.text, ex.label, sorted(ex.fields.items())] for ex in self.examples],
            **({"multi_label": True, "allow_none": self.allow_none} if self.multi_label else {}),
        }

    @property
    def prompt_hash(self) -> str:
        """sha256 of the task's template material and version (first 16 hex digits)."""
        return digest(self.material(), ensure_ascii=False)

    def check_label(self, label: str, where: str) -> None:
        """Raise TaskError if `label` is not one of the task's labels; `where` names the place."""
        if label not in self.label_names:
            raise TaskError(f"{where}: unknown label '{label}' (task '{self.name}' has "
                            f"{', '.join(self.label_names)})")

    def label_set(self, value: object, where: str, sep: str = LABEL_SEP) -> tuple[str, ...]:
        """A multi-label task's label set from a list or a `sep`-joined string, in label order; DataError
        naming `where` for an unknown or repeated name, or an empty set the task does not allow."""
        return parse_label_set(value, self.label_names, where=where, sep=sep, allow_empty=self.allow_none)


def shipped_tasks() -> list[str]:
    """The names of the tasks shipped with llm2edge."""
    return sorted(p.stem for p in TASKS_DIR.glob("*.toml"))


def _parse_file(path: Path) -> dict[str, Any]:
    """Read a TOML or YAML task file into a dict."""
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}: cannot read the task file ({exc})") from None
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TaskError(f"{path}: not valid TOML ({exc})") from None
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            msg = " ".join(str(exc).split())
            raise TaskError(f"{path}: not valid YAML ({msg})") from None
        if not isinstance(data, dict):
            raise TaskError(f"{path}: a task file must be a mapping of keys")
        return data
    raise TaskError(f"{path}: a task file must end in .toml, .yaml or .yml")


def _text(data: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    """A non-empty string value of `key` (None if optional and absent)."""
    if key not in data or data[key] is None:
        if required:
            raise TaskError(f"{where}: missing key '{key}'")
        return None
    value = data[key]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise TaskError(f"{where}: key '{key}' must be a non-empty string")
    return value


def _flag(data: dict[str, Any], key: str, where: str) -> bool:
    """A true/false value of `key` (False when absent)."""
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise TaskError(f"{where}: key '{key}' must be true or false, not {value!r}")
    return value


def task_from_dict(data: dict[str, Any], source: str = "<task>") -> Task:
    """Build and validate a Task from a parsed task file; errors name `source` and the key."""
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise TaskError(f"{source}: unknown key(s) {', '.join(unknown)} "
                        f"(allowed: {', '.join(sorted(_TOP_KEYS))})")
    name = _text(data, "name", source)
    instruction = _text(data, "instruction", source)
    version = _text(data, "version", source, required=False) or "1"
    if "labels" not in data:
        raise TaskError(f"{source}: missing key 'labels'")
    raw_labels = data["labels"]
    if not isinstance(raw_labels, list) or len(raw_labels) < 2:
        raise TaskError(f"{source}: 'labels' must be a list of at least two labels")
    labels: list[LabelDef] = []
    for i, raw in enumerate(raw_labels):
        where = f"{source}: labels[{i}]"
        if isinstance(raw, str):
            raw = {"name": raw}
        if not isinstance(raw, dict):
            raise TaskError(f"{where}: must be a table with 'name' (and 'description', 'words')")
        lname = _text(raw, "name", where)
        desc = _text(raw, "description", where, required=False) or ""
        words = raw.get("words") or []
        if isinstance(words, str):
            words = [words]
        if not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words):
            raise TaskError(f"{where}: 'words' must be a list of non-empty strings")
        extra = sorted(set(raw) - {"name", "description", "words"})
        if extra:
            raise TaskError(f"{where}: unknown key(s) {', '.join(extra)}")
        labels.append(LabelDef(name=lname.strip(), description=desc.strip(), words=tuple(words)))
    names = [lab.name for lab in labels]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise TaskError(f"{source}: duplicate label(s) {', '.join(dupes)}")
    forms = [f.strip().lower() for lab in labels for f in lab.forms]
    clash = sorted({f for f in forms if forms.count(f) > 1})
    if clash:
        raise TaskError(f"{source}: verbalizer word(s) {', '.join(clash)} used by more than one label")
    fields = data.get("fields") or []
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list) or not all(isinstance(f, str) and f.strip() for f in fields):
        raise TaskError(f"{source}: 'fields' must be a list of column names")
    template = _text(data, "template", source, required=False)
    if template is not None:
        for col in ("text", *fields):
            if "{" + col + "}" not in template:
                raise TaskError(f"{source}: 'template' must contain {{{col}}}")
    cot = _text(data, "cot", source, required=False)
    multi_label = _flag(data, "multi_label", source)
    allow_none = _flag(data, "allow_none", source)
    seps = [n for n in names if LABEL_SEP in n]
    if multi_label and seps:
        raise TaskError(f"{source}: label name(s) {', '.join(seps)} contain the list separator '{LABEL_SEP}'")
    if allow_none and not multi_label:
        raise TaskError(f"{source}: 'allow_none' needs 'multi_label = true' (a single-label row has one "
                        "label)")
    task = Task(name=name.strip(), instruction=instruction.strip(), labels=tuple(labels), version=version,
                fields=tuple(fields), cot=cot.strip() if cot else None, template=template, source=source,
                multi_label=multi_label, allow_none=allow_none)
    raw_examples = data.get("examples") or []
    if not isinstance(raw_examples, list):
        raise TaskError(f"{source}: 'examples' must be a list of tables with text and label")
    examples: list[Example] = []
    for i, raw in enumerate(raw_examples):
        where = f"{source}: examples[{i}]"
        if not isinstance(raw, dict):
            raise TaskError(f"{where}: must be a table with text and label")
        extra = sorted(set(raw) - {"text", "label", *fields})
        if extra:
            raise TaskError(f"{where}: unknown key(s) {', '.join(extra)} "
                            f"(fields are {', '.join(fields) or 'none'})")
        text = _text(raw, "text", where)
        if task.multi_label:
            try:
                label = join_label_set(task.label_set(raw.get("label"), where))
            except DataError as exc:
                raise TaskError(str(exc)) from None
        else:
            label = _text(raw, "label", where)
            task.check_label(label, where)
        ex_fields = {f: _text(raw, f, where) for f in fields}
        examples.append(Example(text=text, label=label, fields=ex_fields))  # type: ignore[arg-type]
    return Task(**{**task.__dict__, "examples": tuple(examples)})


def load_task(name_or_path: str | Path) -> Task:
    """Load a task from a TOML/YAML file, or a shipped task by name (see `shipped_tasks()`)."""
    path = Path(name_or_path)
    if path.suffix.lower() in (".toml", ".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise TaskError(f"{path}: no such task file")
        return task_from_dict(_parse_file(path), str(path))
    shipped = TASKS_DIR / f"{name_or_path}.toml"
    if shipped.is_file():
        return task_from_dict(_parse_file(shipped), str(shipped))
    raise TaskError(f"unknown task '{name_or_path}': give a .toml/.yaml file or one of "
                    f"{', '.join(shipped_tasks())}")
