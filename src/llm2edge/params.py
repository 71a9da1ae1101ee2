"""Parameters declared once: a config dataclass field carries its default, help, choices and check.

A stage's config dataclass (TrainConfig, CurateConfig, ExportConfig, ...) is the only place where one of
its parameters is declared (HfArgumentParser style: a field plus `metadata`)::

    @dataclass(kw_only=True)
    class PoolConfig:
        rounds: int = param(POOL_ROUNDS, help="Self-training: labeling passes over the pool.",
                            check=at_least)

        def __post_init__(self) -> None:
            check_fields(self)  # every field's choices and check, in field order

The default comes from `llm2edge.defaults` (httpx `_config.py` style); `check` is one of `llm2edge.checks`
(called as `check(name, value)`); `choices` runs `checks.one_of`. The CLI reads the same fields
(`llm2edge.cli.fields`: typer for the hub/export commands, argparse for the edge ones), so an option, its
default, its help and its check cannot drift from the library. This module imports nothing heavy: the
edge's `predict` builds its arguments from it at start-up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import MISSING, Field
from functools import partial
from typing import Any, NamedTuple

from llm2edge.checks import at_least, one_of, thread_count

#: The metadata key of a field's Param.
KEY = "llm2edge"
#: What `--threads` defaults to, in every command (llm2edge.edge.threads.resolve_threads).
THREADS_DEFAULT_HELP = "default: the CPUs this process may use; 1 per process under torchrun/accelerate"

Check = Callable[[str, Any], Any]


class Param(NamedTuple):
    """What a field declares beyond its type and default (read by `check_fields` and the CLI builders).

    `help`: one line for `--help` and the docs; `choices`: accepted values (checked with `one_of`);
    `check`: `check(name, value)` raising ConfigError (None passes where the field's default is None);
    `name`: the name in error messages (default: the field's); `flags`: the CLI option strings (default:
    `--field-name`; empty: not on the command line); `negate`: a bool field set to False by its flag
    (`--no-resume`); `cli_min`: a lower bound the CLI parser itself enforces (a usage error, exit 2);
    `metavar`: argparse's placeholder; `prefix`: for a nested config field, the prefix of its options'
    flags (`pool-` gives `--pool-rounds`); `none_ok`: None passes `check` and `choices`. (A NamedTuple, not
    a dataclass: `llm2edge predict` builds its options from Params at every start, and a NamedTuple class
    costs a tenth of a dataclass to make.)
    """

    help: str = ""
    choices: tuple[Any, ...] | None = None
    check: Check | None = None
    name: str | None = None
    flags: tuple[str, ...] | None = None
    negate: bool = False
    cli_min: int | None = None
    metavar: str | None = None
    prefix: str | None = None
    none_ok: bool = False


def param(default: Any = MISSING, *, help: str = "", choices: tuple[Any, ...] | None = None,  # noqa: A002
          check: Check | None = None, low: int | float | None = None, name: str | None = None,
          flags: tuple[str, ...] | None = None, negate: bool = False, cli_min: int | None = None,
          metavar: str | None = None, default_factory: Any = MISSING, prefix: str | None = None,
          cli: bool = True, none_ok: bool | None = None) -> Any:
    """A dataclass field declaring one parameter: its default, help, choices and check (see Param).

    `low`: shorthand for `check=at_least` with that lower bound (`low=0`: at least 0); `cli=False`: a
    library-only setting, checked but not on the command line; `none_ok`: None passes the check (by
    default where the default is None: "not given, decided at run time")."""
    if not cli:
        flags = ()
    if low is not None:
        if check is not None:
            raise TypeError("give check or low, not both")
        check = partial(at_least, low=low)
    meta = {KEY: Param(help=help, choices=None if choices is None else tuple(choices), check=check,
                       name=name, flags=flags, negate=negate, cli_min=cli_min, metavar=metavar,
                       prefix=prefix, none_ok=default is None if none_ok is None else none_ok)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def threads_param(what: str, default: str = THREADS_DEFAULT_HELP) -> Any:
    """The `threads` field of a stage that runs a model: None resolves the CPUs at run time; `what` names
    the threads it sets (e.g. "Torch threads per process"), `default` says what happens without it."""
    return param(None, help=f"{what} ({default}).", check=thread_count, cli_min=1, metavar="N")


def nested(config: type, *, help: str = "", prefix: str = "") -> Any:  # noqa: A002
    """A field holding another config (TrainConfig.pool, CurateConfig.crossval), built with its defaults;
    its options are the nested config's, their flags prefixed with `prefix`."""
    return param(help=help, default_factory=config, prefix=prefix)


class Checked:
    """Base of a config whose fields' checks are all its checks: `__post_init__` runs `check_fields` (a
    config with more checks overrides it and calls `super().__post_init__()` first)."""

    def __post_init__(self) -> None:
        check_fields(self)


def spec(f: Field[Any]) -> Param | None:
    """The Param a field declares, or None for a plain field."""
    return f.metadata.get(KEY)


def has_default(f: Field[Any]) -> bool:
    """True if the field can be left out."""
    return f.default is not MISSING or f.default_factory is not MISSING


def default_of(f: Field[Any]) -> Any:
    """The field's default value (a new one from its factory)."""
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def params(config: Any) -> Iterator[tuple[Field[Any], Param]]:
    """The declared fields of a config class or instance, with their Param, in field order."""
    for f in dataclasses.fields(config):
        p = spec(f)
        if p is not None:
            yield f, p


def check_fields(config: Any) -> None:
    """Run every declared field's choices and check on `config` (ConfigError on the first bad value);
    a nested config given as a dict (a TOML table) is built and so checked."""
    for f, p in params(config):
        value = getattr(config, f.name)
        if p.prefix is not None:  # a nested config
            factory = f.default_factory
            if isinstance(value, dict) and isinstance(factory, type):
                object.__setattr__(config, f.name, factory(**value))
            continue
        if value is None and p.none_ok:  # "not given": decided at run time
            continue
        name = p.name or f.name
        if p.choices is not None:
            one_of(name, value, p.choices)
        if p.check is not None:
            p.check(name, value)
