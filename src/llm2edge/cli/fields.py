"""Command-line options generated from a config's declared fields (llm2edge.params), for both CLIs.

`options(Config)` reads a config dataclass (nested configs flattened: TrainConfig.pool gives --pool-*) as
a list of Option; `add_arguments` turns it into argparse arguments (the base-install commands: no CLI
framework imported before `llm2edge predict` answers) and `typer_command` into a typer command (the
hub/export commands; typer is imported only there). `build` makes the config from the parsed values, so
the config's own checks run once, library and CLI alike. A command module names its config, the fields it
leaves off, and what is truly its own (an input, an output, a switch of its printing).
"""

from __future__ import annotations

import argparse
import builtins
import dataclasses
import importlib
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from llm2edge.errors import MissingExtraError
from llm2edge.params import default_of, has_default, params


class Option(NamedTuple):
    """One command-line option: `dest` is its parameter name (`pool_rounds`), `path` the field names from
    the config down to it (("pool", "rounds"); empty: the command's own option, not a config field). (A
    NamedTuple: made at every `llm2edge predict` start, where a dataclass costs ten times as much.)"""

    dest: str
    path: tuple[str, ...]
    flags: tuple[str, ...]
    type: Any
    default: Any
    help: str
    required: bool = False
    optional: bool = False
    negate: bool = False
    cli_min: int | None = None
    metavar: str | None = None
    choices: tuple[Any, ...] | None = None
    parse: Callable[[str], Any] | None = None


def own(dest: str, *flags: str, type: Any = str, default: Any = None, help: str,  # noqa: A002
        required: bool = False, cli_min: int | None = None, metavar: str | None = None,
        parse: Callable[[str], Any] | None = None) -> Option:
    """An option that is the command's own (an input, an output, a switch of its printing), not a field;
    `parse`: argparse's `type` (a usage error, exit 2, on a bad value)."""
    return Option(dest=dest, path=(), flags=flags or (f"--{dest.replace('_', '-')}",), type=type,
                  default=default, help=help, required=required, optional=default is None and not required,
                  cli_min=cli_min, metavar=metavar, parse=parse)


#: Help of `--threads` in commands that run no model.
NO_MODEL_THREADS_HELP = ("Accepted for uniformity with the other commands; this command runs no model and "
                         "uses one thread.")
#: `--threads` of a command that runs no model: accepted so scripts can pass it to every command.
NO_MODEL_THREADS = own("threads", type=int, help=NO_MODEL_THREADS_HELP, cli_min=1, metavar="N")


def _field_type(config: type, f: dataclasses.Field[Any]) -> tuple[Any, bool]:
    """(the type an option parses to, whether None is allowed) of a field: a plain annotation ("int",
    "Path | None": names joined by '|') is looked up in the config's module, without the compile and eval
    of `typing.get_type_hints` (predict builds its options at every start); anything else goes through
    it."""
    if isinstance(f.type, str):
        names = [part.strip() for part in f.type.split("|")]
        scope = vars(sys.modules[config.__module__])
        members = [scope.get(name, getattr(builtins, name, None)) for name in names if name != "None"]
        if members and all(isinstance(m, type) for m in members):
            return members[0], len(members) < len(names)
    return _cli_type(typing.get_type_hints(config)[f.name])


def _cli_type(hint: Any) -> tuple[Any, bool]:
    """(the type an option parses to, whether None is allowed) of a field's type hint: the first member of
    a union (`str | Path` reads a str, `Path | None` a Path)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [m for m in typing.get_args(hint) if m is not type(None)]
        return members[0], len(members) < len(typing.get_args(hint))
    return hint, False


def options(config: type, *, skip: Iterable[str] = (), helps: Mapping[str, str] | None = None,
            _path: tuple[str, ...] = (), _prefix: str = "") -> list[Option]:
    """The options of `config`'s declared fields, in field order (nested configs flattened); `skip`: dotted
    field paths left off ("crossval.seed"); `helps`: dest -> help, where a command says it its own way."""
    skip, helps = set(skip), dict(helps or {})
    out: list[Option] = []
    for f, p in params(config):
        path = (*_path, f.name)
        if ".".join(path) in skip or p.flags == ():
            continue
        if p.prefix is not None:  # a nested config: its own fields, their flags prefixed
            out += options(f.default_factory, skip=skip, helps=helps, _path=path,  # type: ignore[arg-type]
                           _prefix=_prefix + p.prefix)
            continue
        dest = (_prefix + f.name).replace("-", "_")
        flags = p.flags or (f"--{(_prefix + f.name).replace('_', '-')}",)
        kind, optional = _field_type(config, f)
        default = default_of(f) if has_default(f) else None
        if p.negate:
            default = False
        out.append(Option(dest=dest, path=path, flags=flags, type=kind, default=default,
                          help=helps.get(dest, p.help), required=not has_default(f), optional=optional,
                          negate=p.negate, cli_min=p.cli_min, metavar=p.metavar, choices=p.choices))
    dests = [o.dest for o in out]
    if len(set(dests)) != len(dests):
        raise TypeError(f"{config.__name__}: two options share a name in {dests}; skip one")
    return out


def build(config: type, values: Mapping[str, Any], opts: list[Option], **given: Any) -> Any:
    """`config` made from parsed option values (`values`: dest -> value), nested configs included;
    `given`: more fields of the top config (what the command supplies itself)."""
    tree: dict[str, Any] = dict(given)
    for o in opts:
        value = values[o.dest]
        node = tree
        for name in o.path[:-1]:
            node = node.setdefault(name, {})
        node[o.path[-1]] = (not value) if o.negate else value
    return _make(config, tree)


def _make(config: type, tree: dict[str, Any]) -> Any:
    """Build `config` from a tree of field values, its nested configs first (each checks itself)."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    kwargs = {}
    for name, value in tree.items():
        factory = fields[name].default_factory if name in fields else None
        if isinstance(value, dict) and isinstance(factory, type) and dataclasses.is_dataclass(factory):
            value = _make(factory, value)
        kwargs[name] = value
    return config(**kwargs)


# ------------------------------------------------------------------------------------------------ argparse
def at_least_one(text: str) -> int:
    """argparse type: an integer >= 1 (a usage error, exit 2, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not in the range x>=1")
    return value


def _argparse_help(o: Option) -> str:
    """The option's help for argparse ('%' escaped), with its default where one is worth saying."""
    text = o.help.replace("%", "%%")
    if o.default is not None and o.type is not bool and "(default" not in o.help:
        text += " (default: %(default)s)"
    return text


def add_arguments(parser: argparse.ArgumentParser, opts: Iterable[Option],
                  enforce_choices: Iterable[str] = ()) -> None:
    """Add `opts` to an argparse parser; `enforce_choices`: the dests whose choices argparse itself
    checks (a usage error; the others are checked by the config, a ConfigError)."""
    enforce = set(enforce_choices)
    for o in opts:
        if not o.flags[0].startswith("-"):  # a positional: any number of values (predict's texts)
            parser.add_argument(o.flags[0], nargs="*", default=o.default, help=_argparse_help(o))
            continue
        kwargs: dict[str, Any] = {"dest": o.dest, "help": _argparse_help(o)}
        if o.type is bool:
            kwargs["action"] = "store_true" if o.default is False else argparse.BooleanOptionalAction
            kwargs["default"] = o.default
        else:
            kwargs["default"] = o.default
            kwargs["required"] = o.required
            if o.parse is not None:
                kwargs["type"] = o.parse
            elif o.cli_min is not None:
                if o.cli_min != 1:
                    raise TypeError(f"{o.dest}: argparse options take cli_min 1 only")
                kwargs["type"] = at_least_one
            elif o.type in (int, float, Path):
                kwargs["type"] = o.type
            if o.metavar:
                kwargs["metavar"] = o.metavar
            if o.dest in enforce:
                kwargs["choices"] = o.choices
        parser.add_argument(*o.flags, **kwargs)


# --------------------------------------------------------------------------------------------------- typer
def typer_parameters(opts: list[Option]) -> list[inspect.Parameter]:
    """`opts` as keyword parameters with typer.Option defaults (for a generated command's signature)."""
    import typer

    out = []
    for o in opts:
        extra: dict[str, Any] = {} if o.cli_min is None else {"min": o.cli_min}
        option = typer.Option(... if o.required else o.default, *o.flags, help=o.help, **extra)
        annotation = o.type | None if o.optional or (o.default is None and not o.required) else o.type
        out.append(inspect.Parameter(o.dest, inspect.Parameter.KEYWORD_ONLY, default=option,
                                     annotation=annotation))
    return out


def typer_command(config: type | None, run: Callable[..., None], *, skip: Iterable[str] = (),
                  helps: Mapping[str, str] | None = None, before: Sequence[Option] = (),
                  extra: Sequence[Option] = ()) -> Callable[..., None]:
    """A typer command whose options are `config`'s fields: it builds the config (its checks run) and
    calls `run(config, **own_options)`; `before` / `extra`: the command's own options (`own`), listed
    before / after the config's; `skip`, `helps`: as `options`. `config` None: only own options, and
    `run(**own_options)`. The command's help is `run`'s docstring."""
    opts = [] if config is None else options(config, skip=skip, helps=helps)
    mine = [*before, *extra]
    parameters = typer_parameters([*before, *opts, *extra])

    def command(**values: Any) -> None:
        given = {o.dest: values.pop(o.dest) for o in mine}
        if config is None:
            run(**given)
        else:
            run(build(config, values, opts), **given)

    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = run.__doc__
    command.__name__ = run.__name__
    return command


def load(ref: str) -> Any:
    """The object a "module:qualname" reference names (importing its module)."""
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def register_config_command(app: Any, name: str, config: str, make: Callable[[type], Callable[..., None]],
                            doc: str) -> None:
    """Add command `name` to the typer `app`, its options from the config class `config` names
    ("module:Class"): `make(Config)` returns the command (usually `typer_command(Config, ...)`). Where
    the config's package needs an extra that is not installed, the command is still listed (with `doc`)
    and running it raises that MissingExtraError: one line naming the pip command, exit 2."""
    try:
        command = make(load(config))
    except MissingExtraError as exc:
        missing = exc

        def unavailable(ctx: Any) -> None:
            raise missing

        unavailable.__annotations__ = {"ctx": _typer_context()}
        app.command(name, help=doc, add_help_option=False,
                    context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(unavailable)
        return
    app.command(name)(command)


def _typer_context() -> Any:
    """typer.Context (imported here: the edge commands never import typer)."""
    import typer

    return typer.Context
