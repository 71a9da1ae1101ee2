"""Experiment configs (TOML): datasets x labelers x curation interventions x students, read into the
dataclasses of `specs` (unknown keys and bad values are a ConfigError naming the table)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from llm2edge.checks import one_of
from llm2edge.errors import ConfigError
from llm2edge.hub.train.config import PoolConfig
from llm2edge.params import THREADS_DEFAULT_HELP, Checked, param, threads_param
from llm2edge.pipeline.experiment.multilabel import check_multi_label
from llm2edge.pipeline.experiment.specs import (
    NAME_PATTERN,
    CurateSpec,
    DatasetSpec,
    ExperimentConfig,
    LabelerSpec,
    StudentSpec,
    parse_intervention,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


#: The parts of the grid `--only` may keep.
ONLY_KEYS = ("datasets", "labelers", "students", "interventions")


@dataclass(kw_only=True)
class ExperimentRun(Checked):
    """What `llm2edge experiment` is asked to run (`run_experiment`'s arguments; the grid itself is the TOML
    file's), checked when built."""

    config: Path = param(help="Experiment TOML (see experiments/).")
    out: Path = param(help="Output folder: labels, runs, results.csv/md/png.")
    quick: bool = param(False, help="Use the config's [quick] overrides (small, for CI).")
    #: Each item KEY=a,b (KEY one of ONLY_KEYS); `parts()` reads them.
    only: list[str] | None = param(None, help="Keep some parts of the grid (repeatable): datasets=a,b | "
                                              "labelers=a,b | students=a | interventions=a,b.")
    threads: int | None = threads_param("Threads of every stage of every run, replacing the config's",
                                        "default: the config's, else "
                                        + THREADS_DEFAULT_HELP.removeprefix("default: "))

    def __post_init__(self) -> None:
        super().__post_init__()
        self.parts()  # a malformed --only item is a ConfigError before anything runs

    def parts(self) -> dict[str, list[str]] | None:
        """`only` as {key: names} (None: the whole grid); ConfigError on an item that is not KEY=a,b."""
        parts: dict[str, list[str]] = {}
        for item in self.only or []:
            key, sep, names = item.partition("=")
            if not sep or not names.strip():
                raise ConfigError(f"--only {item!r}: use KEY=a,b with KEY datasets, labelers, students or "
                                  "interventions")
            parts[key.strip()] = [n.strip() for n in names.split(",") if n.strip()]
        return parts or None


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """A spec dataclass from a TOML table; unknown keys and bad values are a ConfigError naming the table.
    The keys are the class's fields, or its `table_keys()` where it has them (StudentSpec)."""
    known = cls.table_keys() if hasattr(cls, "table_keys") else {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        return cls(**data)
    except (TypeError, ConfigError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


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
        if not NAME_PATTERN.match(item.name):
            raise ConfigError(f"{where}: name '{item.name}' must be letters, digits, '_', '-' or '.'")
        if item.name in seen:
            raise ConfigError(f"{where}: duplicate name '{item.name}'")
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


def _read(p: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's tables; `extends = "other.toml"` (relative to this file) reads that one first and
    applies this one over it (tables merge key by key, lists and values are replaced)."""
    if not p.is_file():
        raise ConfigError(f"{p}: no such experiment config")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    base = (p.parent / str(parent)).resolve()
    if base in seen or base == p.resolve():
        raise ConfigError(f"{p}: extends '{parent}' loops back to itself")
    return _merge(_read(base, (*seen, p.resolve())), raw)


def load_config(path: str | Path, *, quick: bool = False, only: dict[str, list[str]] | None = None
                ) -> ExperimentConfig:
    """Read an experiment TOML (over the one it `extends`, if any); `quick` applies its [quick] table
    (smaller sizes, fewer runs); `only` ({"datasets"|"labelers"|"students"|"interventions": names}) keeps
    just those parts."""
    p = Path(path)
    raw = _read(p)
    quick_table = raw.pop("quick", None)
    if quick:
        if quick_table is None:
            raise ConfigError(f"{p}: --quick needs a [quick] table in the config")
        raw = _merge(raw, quick_table)
    for key, names in (only or {}).items():
        one_of("only", key, ONLY_KEYS)
        raw["interventions" if key == "interventions" else f"only_{key}"] = list(names)
    where = str(p)
    allowed = {"name", "data_root", "seed", "train_limit", "test_limit", "interventions", "datasets",
               "labeler", "labelers", "student", "students", "curate", "evaluate", "quantize", "keep_models",
               "only_datasets", "threads", "folds", "limit", "only_labelers", "only_students", "pool"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    root = _data_root(raw.get("data_root"), p.parent)
    defaults = {"train_limit": raw.get("train_limit"), "test_limit": raw.get("test_limit"),
                "limit": raw.get("limit")}
    datasets = []
    for n, d in enumerate(raw.get("datasets") or [], start=1):
        d = dict(d)
        name = d.get("name")
        if not name:
            raise ConfigError(f"{where}: datasets[{n}] has no name")
        d.setdefault("task", name)
        d["train"] = root / d.get("train", f"{name}/train.csv")
        d["test"] = root / d.get("test", f"{name}/test.csv")
        d["fields"] = tuple(d.get("fields", ()))
        d["labels"] = tuple(d.get("labels", ()))
        _resolved(d, "recorded", p.parent)
        if d.get("unlabeled"):
            d["unlabeled"] = root / d["unlabeled"]
        for key, value in defaults.items():
            d.setdefault(key, value)
        datasets.append(_build(DatasetSpec, d, f"{where}: datasets[{n}]"))
    datasets = _only(datasets, raw.get("only_datasets"), "only_datasets", where)
    if not datasets:
        raise ConfigError(f"{where}: no [[datasets]]")
    labelers = [_build(LabelerSpec, _resolved(dict(x), "recorded", p.parent), f"{where}: labeler")
                for x in (raw.get("labelers") or [raw.get("labeler") or {"name": "default"}])]
    labelers = _only(labelers, raw.get("only_labelers"), "only_labelers", where)
    students = [_build(StudentSpec, dict(x), f"{where}: student")
                for x in (raw.get("students") or [raw.get("student") or {"name": "default"}])]
    students = _only(students, raw.get("only_students"), "only_students", where)
    for items, what in ((datasets, "datasets"), (labelers, "labelers"), (students, "students")):
        _names(items, f"{where}: {what}")
    interventions = tuple(raw.get("interventions") or ("naive",))
    for name in interventions:
        parse_intervention(name, f"{where}: interventions")
    cur = _build(CurateSpec, dict(raw.get("curate") or {}), f"{where}: [curate]")
    pool = _build(PoolConfig, dict(raw.get("pool") or {}), f"{where}: [pool]")
    top = {key: raw[key] for key in ("seed", "evaluate", "quantize", "keep_models", "threads", "folds")
           if key in raw}
    config = _build(ExperimentConfig, {"name": str(raw.get("name") or p.stem), "source": str(p),
                                       "datasets": tuple(datasets), "labelers": tuple(labelers),
                                       "students": tuple(students), "interventions": interventions,
                                       "curate": cur, "pool": pool, **top}, where)
    for d in config.datasets:
        for split in (d.train, d.test, *([d.unlabeled] if d.unlabeled else [])):
            if not split.exists():
                raise ConfigError(f"{where}: data set '{d.name}': {split} does not exist (set data_root or "
                                  "$LLM2EDGE_SHARED_DATA)")
    check_multi_label(config)  # before any labeling: what a multi-label data set cannot run
    return config


def _only(items: list[Any], names: list[str] | None, key: str, where: str) -> list[Any]:
    """The items named in `names` (all when None); a name that is not there is a ConfigError."""
    if not names:
        return items
    missing = sorted(set(names) - {x.name for x in items})
    if missing:
        raise ConfigError(f"{where}: {key} names unknown name(s) {', '.join(missing)}")
    return [x for x in items if x.name in names]


def _resolved(table: dict[str, Any], key: str, base: Path) -> dict[str, Any]:
    """`table` with the path under `key` (when set) resolved against the config's folder."""
    if table.get(key):
        table[key] = (base / table[key]).resolve()
    return table

