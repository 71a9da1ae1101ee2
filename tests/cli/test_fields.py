"""Every CLI option is a config field's (or a command's own, named in its module): generated from the field's
metadata (llm2edge.params, llm2edge.cli.fields), so a default, help text or check cannot drift between the
library and the CLI. This file checks that the generation is whole: each option of each command maps to a
field of the config the command runs (or is declared the command's own), and `--help` shows the field's
help and default."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys

import pytest
import typer

import llm2edge.cli
from llm2edge.cli.app import build_app
from llm2edge.cli.edge import EDGE_COMMANDS, HUB_COMMANDS, edge_parser
from llm2edge.cli.fields import NO_MODEL_THREADS_HELP, load, options
from llm2edge.params import THREADS_DEFAULT_HELP, param, spec

pytest.importorskip("torch")  # the hub and export configs are imported (their packages need the extras)
pytest.importorskip("optimum.onnxruntime")

#: Command -> the config whose fields are its options.
CONFIGS = {
    "label": "llm2edge.hub.label.config:LabelConfig",
    "import-labels": "llm2edge.hub.label.importer:ImportConfig",
    "curate": "llm2edge.hub.curate.confident:CurateConfig",
    "sample-experts": "llm2edge.hub.curate.experts:SampleConfig",
    "merge-experts": "llm2edge.hub.curate.experts:MergeConfig",
    "soft-labels": "llm2edge.hub.curate.soft:SoftConfig",
    "train": "llm2edge.hub.train.config:TrainConfig",
    "export": "llm2edge.export.config:ExportConfig",
    "predict": "llm2edge.pipeline.predict_job:PredictJob",
    "bench": "llm2edge.pipeline.bench.run:BenchConfig",
    "demo": "llm2edge.pipeline.demo.config:DemoConfig",
    "experiment": "llm2edge.pipeline.experiment.config:ExperimentRun",
    "calibrate": "llm2edge.edge.commands:CalibrateConfig",
    "evaluate": "llm2edge.edge.commands:EvaluateConfig",
    "merge-predictions": "llm2edge.edge.commands:MergeConfig",
}
#: The options that are a command's own (inputs, outputs, switches of its printing), by parameter name.
OWN = {
    "predict": {"texts", "bundle", "input", "output", "fmt", "provider", "resume", "progress",
                "deferred_out", "stall_timeout", "verbose"},
    "import-labels": {"threads"}, "merge-experts": {"threads"},
    "evaluate": {"as_json", "threads"},
    "merge-predictions": {"threads"},
}


#: Fields a command leaves off (sample-experts' --seed seeds its crossval folds too).
SKIP = {"sample-experts": ("crossval.seed",)}


def _options(command: str) -> list:
    """The options a command's config declares."""
    return options(load(CONFIGS[command]), skip=SKIP.get(command, ()))


class _ArgparseParam:
    """An argparse action read like a click parameter: name, default, opts, help."""

    def __init__(self, action) -> None:
        self.name, self.default, self.opts, self.help = (action.dest, action.default,
                                                         list(action.option_strings), action.help or "")


def _params(name: str) -> list:
    """The parameters of command `name`: click's (typer) or argparse's (the base-install commands)."""
    if name in EDGE_COMMANDS:
        return [_ArgparseParam(a) for a in edge_parser(name)._actions if a.dest != "help"]
    return [p for p in typer.main.get_command(build_app()).commands[name].params if p.name != "help"]


def _help(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        llm2edge.cli.main(args)
    assert exc.value.code == 0
    return re.sub(r"[\s│]+", " ", capsys.readouterr().out)


def test_the_app_lists_every_command_once():
    """The typer app and cli/edge.py name the same commands (help and errors work without typer)."""
    assert set(typer.main.get_command(build_app()).commands) == set(EDGE_COMMANDS) | set(HUB_COMMANDS)
    assert set(CONFIGS) | set(OWN) == set(EDGE_COMMANDS) | set(HUB_COMMANDS)


@pytest.mark.parametrize("command", sorted(set(EDGE_COMMANDS) | set(HUB_COMMANDS)))
def test_every_option_maps_to_a_config_field(command):
    fields = {o.dest: o for o in _options(command)} if command in CONFIGS else {}
    for p in _params(command):
        if p.name in OWN.get(command, set()):
            continue
        assert p.name in fields, f"{command} {p.opts}: not a field of {CONFIGS.get(command)} nor its own"
        option = fields[p.name]
        assert tuple(p.opts) == option.flags or p.opts == [f.split("/")[0] for f in option.flags], p.opts
        assert p.default == option.default and type(p.default) is type(option.default), (command, p.name)
        assert option.help and option.help.split(" (default")[0][:40] in p.help, (command, p.name)
    missing = set(fields) - {p.name for p in _params(command)}
    assert not missing, f"{command}: fields without an option: {missing}"


@pytest.mark.parametrize("command", ["train", "curate", "export", "label", "predict", "bench"])
def test_help_shows_each_fields_help_and_default(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "240")  # rich cuts long words in narrow help columns
    text = _help([command, "--help"], capsys)
    words = re.sub(r"\W", "", text)
    for option in _options(command):
        assert re.sub(r"\W", "", option.help)[:30] in words, (command, option.dest)
        assert option.flags[0].split("/")[0] in text, (command, option.dest)
        if option.default not in (None, False, True) and option.type is not bool:
            assert f"default: {option.default}" in text, (command, option.dest)


def test_nested_configs_are_one_declaration():
    """CurateConfig holds a CrossvalConfig, TrainConfig a PoolConfig: their options come from there."""
    from llm2edge.hub.curate.oof import CrossvalConfig
    from llm2edge.hub.train.config import PoolConfig

    curate = {o.dest: o.path for o in options(load(CONFIGS["curate"]))}
    crossval = options(CrossvalConfig)
    assert {curate[o.dest] for o in crossval} == {("crossval", o.dest) for o in crossval}
    train = {o.dest: o.path for o in options(load(CONFIGS["train"]))}
    assert train["pool_chunk_size"] == ("pool", "chunk_size")
    assert {o.dest for o in options(PoolConfig)} == {"method", "rounds", "ratio", "noise", "chunk_size",
                                                     "check_folds", "check_tolerance"}
    assert train["pool_check_folds"] == ("pool", "check_folds")  # a field added to PoolConfig: an option


def test_a_new_field_is_a_new_checked_option(capsys):
    """Adding a parameter is one field: it is an option, with its help, default and check."""
    from llm2edge.cli.fields import build
    from llm2edge.errors import ConfigError
    from llm2edge.params import check_fields

    @dataclasses.dataclass(kw_only=True)
    class Toy:
        data: str = param(help="Input.")
        rounds: int = param(3, low=1, help="Passes.")
        mode: str = param("a", choices=("a", "b"), help="The mode.")

        def __post_init__(self) -> None:
            check_fields(self)

    opts = options(Toy)
    assert [(o.flags, o.default, o.help) for o in opts] == [
        (("--data",), None, "Input."), (("--rounds",), 3, "Passes."), (("--mode",), "a", "The mode.")]
    assert build(Toy, {"data": "x", "rounds": 2, "mode": "b"}, opts) == Toy(data="x", rounds=2, mode="b")
    with pytest.raises(ConfigError, match="rounds must be at least 1, got 0"):
        build(Toy, {"data": "x", "rounds": 0, "mode": "b"}, opts)
    with pytest.raises(ConfigError, match="mode must be one of a, b, got 'c'"):
        Toy(data="x", mode="c")
    assert spec(dataclasses.fields(Toy)[1]).help == "Passes."


def test_every_command_accepts_threads_with_one_meaning():
    for name in set(EDGE_COMMANDS) | set(HUB_COMMANDS):
        (p,) = [p for p in _params(name) if p.name == "threads"] or [None]
        assert p is not None, f"{name} has no --threads"
        assert p.opts == ["--threads"] and p.default is None, name
        assert THREADS_DEFAULT_HELP in p.help or p.help == NO_MODEL_THREADS_HELP or \
            "the CPUs this process may use" in p.help, (name, p.help)


@pytest.mark.parametrize("command", ["predict", "train", "export", "label", "curate", "bench", "demo",
                                     "experiment", "evaluate", "sample-experts"])
def test_threads_below_one_is_a_usage_error(command, capsys):
    with pytest.raises(SystemExit) as exc:
        llm2edge.cli.main([command, "--threads", "0"])
    assert exc.value.code == 2
    assert "--threads" in capsys.readouterr().err


#: What `llm2edge predict` may load of llm2edge to parse its arguments: PredictJob's light module and the
#: field machinery, not the folder code (`pipeline.folders`) nor the hub; the bench gate times this start.
PREDICT_PARSE_MODULES = {"llm2edge.cli.predict", "llm2edge.cli.fields", "llm2edge.params", "llm2edge.checks",
                         "llm2edge.defaults", "llm2edge.console", "llm2edge.pipeline",
                         "llm2edge.pipeline.predict_job"}


def test_predict_parses_its_options_with_only_the_light_modules():
    """Issue 25's start-up: the options generated from PredictJob's fields are parsed without the folder
    code, typer or any stage (in a fresh process: what a `llm2edge predict` start imports)."""
    script = ("import json, sys; import llm2edge.cli.edge as e; before = set(sys.modules); "
              "argv = ['--bundle', 'b', '--threads', '2', 'hi']; "
              "args = e.edge_parser('predict').parse_intermixed_args(argv); "
              "print(json.dumps([sorted(set(sys.modules) - before), args.threads, args.texts]))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    loaded, threads, texts = json.loads(proc.stdout)
    assert {m for m in loaded if m.startswith("llm2edge")} == PREDICT_PARSE_MODULES
    assert not {m.split(".")[0] for m in loaded} & {"typer", "click", "numpy", "torch"}
    assert (threads, texts) == (2, ["hi"])
