"""Experiment configs (TOML): datasets x labelers x curation interventions x students."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from llm2edge.errors import TaskError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The building blocks of an intervention; combine them with '+', e.g. "experts_confidence+soft".
STEPS = ("naive", "cleanlab", "experts_confidence", "experts_random", "soft")
EVALUATE = ("edge", "torch")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """One data set: where its train/test files are, the labeling task, per-item fields, sizes."""

    name: str
    task: str
    train: Path
    test: Path
    text_col: str = "text"
    label_col: str = "label"
    fields: tuple[str, ...] = ()
    #: what the student reads: a format string over `text` and the fields (e.g. "{target}: {text}")
    student_template: str = "{text}"
    train_limit: int | None = None
    test_limit: int | None = None


@dataclass(frozen=True, kw_only=True)
class LabelerSpec:
    """An LLM labeler: backend, model, few-shot count, contextual calibration."""

    name: str
    backend: str = "hf"
    model: str | None = None  # None: the packaged SmolLM2-135M-Instruct
    base_url: str | None = None
    shots: int = 0
    calibrate: bool = False
    cot: bool = False
    batch_size: int = 8
    threads: int | None = None


@dataclass(frozen=True, kw_only=True)
class StudentSpec:
    """A student: the encoder and its training settings."""

    name: str
    model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    epochs: int = 2
    max_length: int = 64
    batch_size: int = 32
    lr: float = 5e-5
    freeze_encoder: bool = False
    head_epochs: int = 100
    threads: int | None = None


@dataclass(frozen=True, kw_only=True)
class CurateSpec:
    """How the cleanlab and expert interventions run."""

    probs: str = "crossval"
    action: str = "drop"
    folds: int = 5
    filter_by: str = "prune_by_noise_rate"
    expert_fraction: float = 0.1
    stratify: bool = True  # RED-CT: the same expert budget per LLM label
    by: str = "confidence"
    soft_smoothing: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """A whole experiment grid."""

    name: str
    source: str
    datasets: tuple[DatasetSpec, ...]
    labelers: tuple[LabelerSpec, ...]
    students: tuple[StudentSpec, ...]
    interventions: tuple[str, ...]
    curate: CurateSpec = field(default_factory=CurateSpec)
    seed: int = 0
    evaluate: str = "edge"  # edge: export int8 ONNX and classify with the edge Classifier; torch: no export
    quantize: str = "int8"
    keep_models: bool = False  # keep each run's model folder and bundle (big); results stay either way


def parse_intervention(name: str, where: str = "interventions") -> tuple[str, ...]:
    """The steps of an intervention name ('naive', 'cleanlab+soft', ...), validated."""
    steps = tuple(s.strip() for s in name.split("+") if s.strip())
    if not steps:
        raise TaskError(f"{where}: empty intervention name")
    for step in steps:
        if step not in STEPS:
            raise TaskError(f"{where}: unknown intervention step '{step}' in '{name}': use "
                            f"{', '.join(STEPS)} (combine with '+')")
    if "naive" in steps and len(steps) > 1:
        raise TaskError(f"{where}: 'naive' cannot be combined ('{name}')")
    if "experts_confidence" in steps and "experts_random" in steps:
        raise TaskError(f"{where}: choose one expert strategy in '{name}'")
    return steps


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """A spec dataclass from a TOML table; unknown keys are a TaskError naming the table."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TaskError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        return cls(**data)
    except TypeError as exc:
        raise TaskError(f"{where}: {exc}") from None


def _data_root(raw: str | None, base: Path) -> Path:
    """The data folder: $LLM2EDGE_SHARED_DATA, else `data_root` relative to the config file."""
    env = os.environ.get("LLM2EDGE_SHARED_DATA")
    if env:
        return Path(env)
    return (base / (raw or ".")).resolve()


def _names(items: list[Any], where: str) -> None:
    """Check that names are unique and safe as folder names."""
    seen: set[str] = set()
    for item in items:
        if not _NAME.match(item.name):
            raise TaskError(f"{where}: name '{item.name}' must be letters, digits, '_', '-' or '.'")
        if item.name in seen:
            raise TaskError(f"{where}: duplicate name '{item.name}'")
        seen.add(item.name)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`base` with `over` applied (tables merge key by key, everything else is replaced)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: str | Path, *, quick: bool = False) -> ExperimentConfig:
    """Read an experiment TOML; `quick` applies its [quick] table (smaller sizes, fewer runs)."""
    p = Path(path)
    if not p.is_file():
        raise TaskError(f"{p}: no such experiment config")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TaskError(f"{p}: not valid TOML ({exc})") from None
    quick_table = raw.pop("quick", None)
    if quick:
        if quick_table is None:
            raise TaskError(f"{p}: --quick needs a [quick] table in the config")
        raw = _merge(raw, quick_table)
    where = str(p)
    allowed = {"name", "data_root", "seed", "train_limit", "test_limit", "interventions", "datasets",
               "labeler", "labelers", "student", "students", "curate", "evaluate", "quantize", "keep_models",
               "only_datasets"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise TaskError(f"{where}: unknown key(s) {', '.join(unknown)}")
    root = _data_root(raw.get("data_root"), p.parent)
    defaults = {"train_limit": raw.get("train_limit"), "test_limit": raw.get("test_limit")}
    datasets = []
    for n, d in enumerate(raw.get("datasets") or [], start=1):
        d = dict(d)
        name = d.get("name")
        if not name:
            raise TaskError(f"{where}: datasets[{n}] has no name")
        d.setdefault("task", name)
        d["train"] = root / d.get("train", f"{name}/train.csv")
        d["test"] = root / d.get("test", f"{name}/test.csv")
        d["fields"] = tuple(d.get("fields", ()))
        for key, value in defaults.items():
            d.setdefault(key, value)
        datasets.append(_build(DatasetSpec, d, f"{where}: datasets[{n}]"))
    only = raw.get("only_datasets")
    if only:
        missing = sorted(set(only) - {d.name for d in datasets})
        if missing:
            raise TaskError(f"{where}: only_datasets names unknown data set(s) {', '.join(missing)}")
        datasets = [d for d in datasets if d.name in only]
    if not datasets:
        raise TaskError(f"{where}: no [[datasets]]")
    labelers = [_build(LabelerSpec, dict(x), f"{where}: labeler")
                for x in (raw.get("labelers") or [raw.get("labeler") or {"name": "default"}])]
    students = [_build(StudentSpec, dict(x), f"{where}: student")
                for x in (raw.get("students") or [raw.get("student") or {"name": "default"}])]
    for items, what in ((datasets, "datasets"), (labelers, "labelers"), (students, "students")):
        _names(items, f"{where}: {what}")
    interventions = tuple(raw.get("interventions") or ("naive",))
    for name in interventions:
        parse_intervention(name, f"{where}: interventions")
    cur = _build(CurateSpec, dict(raw.get("curate") or {}), f"{where}: [curate]")
    if cur.action != "drop":
        raise TaskError(f"{where}: [curate] action must be 'drop' in an experiment (a flag changes no "
                        f"training row), got '{cur.action}'")
    if cur.probs not in ("crossval", "llm"):
        raise TaskError(f"{where}: [curate] probs must be 'crossval' or 'llm', got '{cur.probs}'")
    evaluate = raw.get("evaluate", "edge")
    if evaluate not in EVALUATE:
        raise TaskError(f"{where}: evaluate must be one of {', '.join(EVALUATE)}, got '{evaluate}'")
    config = ExperimentConfig(name=str(raw.get("name") or p.stem), source=str(p), datasets=tuple(datasets),
                              labelers=tuple(labelers), students=tuple(students), interventions=interventions,
                              curate=cur, seed=int(raw.get("seed", 0)), evaluate=evaluate,
                              quantize=str(raw.get("quantize", "int8")),
                              keep_models=bool(raw.get("keep_models", False)))
    for d in config.datasets:
        for split in (d.train, d.test):
            if not split.is_file():
                raise TaskError(f"{where}: data set '{d.name}': {split} does not exist (set data_root or "
                                "$LLM2EDGE_SHARED_DATA)")
    return config


def with_changes(config: ExperimentConfig, **changes: Any) -> ExperimentConfig:
    """A copy of `config` with some fields replaced."""
    return replace(config, **changes)
