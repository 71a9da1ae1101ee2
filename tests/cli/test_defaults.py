"""Every CLI default is the library's: the CLI only parses, so an option must not change a default.

`test_cli_defaults_match_the_library` walks every command of `build_app()` (through click, as a user's
shell sees them) and compares each option's default with the field of the command's config dataclass or
the parameter of the library function it feeds. An option that maps to nothing must be listed as CLI-only
below, so a new option cannot slip past. `test_no_typed_literal_defaults` reads the CLI sources: a default
is a named constant (llm2edge.defaults), never a number or string typed again.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path
from typing import Any

import pytest
import typer

import llm2edge.cli
from llm2edge.cli.app import COMMAND_MODULES, build_app
from llm2edge.cli.edge import EDGE_COMMANDS, HUB_COMMANDS, THREADS_DEFAULT_HELP, edge_parser

pytest.importorskip("torch")  # the hub and export configs are imported (their packages need the extras)
pytest.importorskip("optimum.onnxruntime")

#: CLI parameter name -> library name, where they differ; a leading "!" means the flag negates it.
RENAMES: dict[str, dict[str, str]] = {
    "train": {"soft": "soft_labels", "no_resume": "!resume"},
    "import-labels": {"map_": "map"},
    "export": {"no_optimize": "!optimize"},
    "bench": {"budget": "budget_s"},
    "predict": {"input_format": "fmt", "provider": "providers"},
}
#: Options that feed no library default (inputs, outputs, switches of the CLI's own printing).
CLI_ONLY: dict[str, set[str]] = {
    "predict": {"texts", "input", "output", "progress"},
    "evaluate": {"as_json", "threads"},
    "import-labels": {"threads"},
    "merge-experts": {"threads"},
    "experiment": {"config", "out"},
    "merge-predictions": {"threads"},
    "calibrate": {"bundle", "data"},
}


#: Command -> the library objects ("module:qualname": config dataclasses or functions) its options feed,
#: searched in order for each option's field or parameter.
SOURCES: dict[str, tuple[str, ...]] = {
    "label": ("llm2edge.hub.label.config:LabelConfig",),
    "import-labels": ("llm2edge.hub.label.importer:ImportConfig",),
    "curate": ("llm2edge.hub.curate.confident:CurateConfig",),
    "sample-experts": ("llm2edge.hub.curate.experts:SampleConfig", "llm2edge.hub.curate.oof:CrossvalConfig"),
    "merge-experts": ("llm2edge.hub.curate.experts:MergeConfig",),
    "soft-labels": ("llm2edge.hub.curate.soft:soft_labels_file", "llm2edge.hub.curate.oof:CrossvalConfig"),
    "train": ("llm2edge.hub.train.config:TrainConfig",),
    "export": ("llm2edge.export.config:ExportConfig",),
    "calibrate": ("llm2edge.edge.calibrate:calibrate_bundle",),
    "predict": ("llm2edge.edge.classifier:Classifier.load", "llm2edge.edge.stream:predict_to_path",
                "llm2edge.records:iter_records", "llm2edge.pipeline.folders:PredictJob"),
    "merge-predictions": ("llm2edge.edge.merge:merge_predictions",),
    "evaluate": ("llm2edge.edge.evaluate:evaluate_files",),
    "bench": ("llm2edge.pipeline.bench.run:BenchConfig",),
    "demo": ("llm2edge.pipeline.demo.config:DemoConfig",),
    "experiment": ("llm2edge.pipeline.experiment.runner:run_experiment",),
}


def _sources(command: str) -> list[Any]:
    """The library objects whose defaults a command's options must match."""
    assert command in SOURCES, f"command '{command}' has no library source in tests/cli/test_defaults.py"
    out = []
    for ref in SOURCES[command]:
        module, _, qualname = ref.partition(":")
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
        out.append(obj)
    return out


def _library_defaults(source: Any) -> dict[str, Any]:
    """Name -> default of a config dataclass's fields or a function's keyword parameters."""
    if dataclasses.is_dataclass(source):
        out = {}
        for f in dataclasses.fields(source):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out
    return {name: p.default for name, p in inspect.signature(source).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _same(cli: Any, lib: Any, name: str) -> bool:
    """Equal as the library would see them (a click path default arrives as str, the field may be a Path)."""
    if name == "providers":  # the CLI names one provider, the library takes a list (None: the default one)
        from llm2edge.edge.classifier import resolve_providers

        return resolve_providers([cli]) == resolve_providers(lib)
    if name == "defer":  # the CLI's text is parsed by resolve_defer ("none" -> no threshold)
        from llm2edge.edge.defer import resolve_defer

        return resolve_defer(None, cli) == resolve_defer(None, lib)  # type: ignore[arg-type]
    if isinstance(cli, (str, Path)) and isinstance(lib, (str, Path)):
        return str(cli) == str(lib)
    if cli is None or lib is None:
        return cli is lib
    return type(cli) is type(lib) and cli == lib  # 64.0 is not the int 64, True is not 1


class _ArgparseParam:
    """An argparse action read like a click parameter: name, default, required, opts, help."""

    def __init__(self, action: Any) -> None:
        self.name, self.default, self.required = action.dest, action.default, action.required
        self.opts, self.help = list(action.option_strings), action.help or ""


class _ArgparseCommand:
    """A base-install command (argparse, cli/edge.py) read like a click command: its params."""

    def __init__(self, name: str) -> None:
        self.params = [_ArgparseParam(a) for a in edge_parser(name)._actions if a.dest != "help"]


def _commands() -> dict[str, Any]:
    """Command name -> its parameters: the click command typer built (typer may vendor its own click), or
    the argparse parser of a base-install command (typer only lists those)."""
    commands = dict(typer.main.get_command(build_app()).commands)
    return {**commands, **{name: _ArgparseCommand(name) for name in EDGE_COMMANDS}}


def test_the_app_lists_every_command_once():
    """The typer app and cli/edge.py name the same commands (help and errors work without typer)."""
    assert set(typer.main.get_command(build_app()).commands) == set(EDGE_COMMANDS) | set(HUB_COMMANDS)


def test_every_command_module_is_covered():
    commands = _commands()
    assert len(commands) >= len(COMMAND_MODULES)
    for name in commands:
        assert _sources(name), name


@pytest.mark.parametrize("command", sorted(_commands()))
def test_cli_defaults_match_the_library(command):
    cmd = _commands()[command]
    sources = [(s, _library_defaults(s)) for s in _sources(command)]
    renames = RENAMES.get(command, {})
    compared = 0
    for param in cmd.params:
        if param.required or param.name in CLI_ONLY.get(command, set()):
            continue
        target = renames.get(param.name, param.name)
        negate = target.startswith("!")
        target = target.lstrip("!")
        match = next(((s, d[target]) for s, d in sources if target in d), None)
        assert match is not None, (f"{command} --{param.name}: no field or parameter '{target}' in "
                                   f"{[getattr(s, '__qualname__', s) for s, _ in sources]}; map it in "
                                   "RENAMES or list it in CLI_ONLY")
        source, lib = match
        cli = (not param.default) if negate else param.default
        assert _same(cli, lib, target), (f"{command} --{param.name} defaults to {param.default!r}, but "
                                         f"{source.__qualname__}.{target} to {lib!r}")
        compared += 1
    assert compared > 0


def test_a_changed_cli_default_is_caught():
    """The comparison is real: a typed literal that differs from the library fails it."""
    from llm2edge.export.config import ExportConfig
    from llm2edge.hub.train.config import TrainConfig

    lib = _library_defaults(TrainConfig)
    assert _same(lib["max_length"], lib["max_length"], "max_length")
    assert not _same(128, lib["max_length"], "max_length")
    assert not _same(64.0, 64, "max_length")  # a float where the library has an int
    assert not _same("bench", "bench-out", "output")
    assert not _same(1, None, "threads")  # `threads=1` where the library resolves the CPUs
    assert not _same(0.95, _library_defaults(ExportConfig)["min_agreement"], "min_agreement")


def _option_defaults(tree: ast.AST) -> list[tuple[int, ast.expr]]:
    """(line, default expression) of every typer.Option(...) / typer.Argument(...) call in a module, and of
    every argparse `default=` (cli/edge.py's commands)."""
    out = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("Option", "Argument") and node.args):
            out.append((node.lineno, node.args[0]))
        elif isinstance(node, ast.Call):  # argparse: add_argument(..., default=X) / add(..., default=X)
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("add_argument", "add"):
                out += [(node.lineno, k.value) for k in node.keywords if k.arg == "default"]
    return out


def test_no_typed_literal_defaults():
    """Defaults are named constants; only None (not given), False (a flag that is off) and ... (required)."""
    folder = Path(llm2edge.cli.__file__).parent
    bad = []
    for path in sorted(folder.glob("*.py")):
        for line, expr in _option_defaults(ast.parse(path.read_text(encoding="utf-8"))):
            named = isinstance(expr, (ast.Name, ast.Attribute))
            unset = isinstance(expr, ast.Constant) and any(expr.value is v for v in (None, False, Ellipsis))
            if not (named or unset):  # a number, a string, True, -1, Path("out"), ...: typed again
                bad.append(f"{path.name}:{line}: {ast.unparse(expr)}")
    assert not bad, "typed literal defaults (use llm2edge.defaults): " + ", ".join(bad)


def test_every_command_accepts_threads_with_one_meaning():
    for name, cmd in _commands().items():
        (param,) = [p for p in cmd.params if p.name == "threads"] or [None]
        assert param is not None, f"{name} has no --threads"
        assert param.opts == ["--threads"] and param.default is None, name
        assert THREADS_DEFAULT_HELP in param.help or "runs no model" in param.help or \
            "the CPUs this process may use" in param.help, (name, param.help)


@pytest.mark.parametrize("command", ["predict", "train", "export", "label", "curate", "bench", "demo",
                                     "experiment", "evaluate", "sample-experts"])
def test_threads_below_one_is_a_usage_error(command, capsys):
    with pytest.raises(SystemExit) as exc:
        llm2edge.cli.main([command, "--threads", "0"])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err
