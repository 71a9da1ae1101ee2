"""The base-install commands on argparse: no CLI framework is imported before `llm2edge predict` answers.

predict, evaluate, calibrate, merge-predictions and bench run on the base install (onnxruntime, tokenizers,
numpy). Each of their modules defines `HELP` (one line), `add_arguments(parser)` and `run(args)`; `main`
dispatches to them before anything else is imported, so their start-up is the libraries' own plus the
checksums (bench/startup.py measures it against bench/floor.py). The other commands are typer commands
(app.py) and need the extras that bring typer in; `llm2edge --help` lists both kinds.
"""

from __future__ import annotations

import argparse
import importlib
from types import ModuleType

#: Base-install command -> its module in llm2edge.cli, in the order help lists them.
EDGE_COMMANDS = {"calibrate": "calibrate", "predict": "predict", "merge-predictions": "merge_predictions",
                 "evaluate": "evaluate", "bench": "bench"}
#: The typer commands (app.py), named here so help and errors work without typer installed.
HUB_COMMANDS = ("label", "import-labels", "curate", "sample-experts", "merge-experts", "soft-labels", "train",
                "export", "demo", "experiment")
#: What `--threads` defaults to, in every command (llm2edge.edge.threads.resolve_threads).
THREADS_DEFAULT_HELP = "default: the CPUs this process may use; 1 per process under torchrun/accelerate"
#: Help of `--threads` in commands that run no model.
NO_MODEL_THREADS_HELP = ("Accepted for uniformity with the other commands; this command runs no model and "
                         "uses one thread.")


def at_least_one(text: str) -> int:
    """argparse type: an integer >= 1 (a usage error, exit 2, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not in the range x>=1")
    return value


def add_threads(parser: argparse.ArgumentParser, what: str, default: str = THREADS_DEFAULT_HELP) -> None:
    """The `--threads` option; `what` names the threads it sets, `default` says what happens without it."""
    parser.add_argument("--threads", type=at_least_one, default=None, metavar="N",
                        help=f"{what} ({default}).")


def add_no_model_threads(parser: argparse.ArgumentParser) -> None:
    """`--threads` of a command that runs no model: accepted so scripts can pass it to every command."""
    parser.add_argument("--threads", type=at_least_one, default=None, metavar="N", help=NO_MODEL_THREADS_HELP)


def command_module(name: str) -> ModuleType:
    """The module of a base-install command."""
    return importlib.import_module(f"llm2edge.cli.{EDGE_COMMANDS[name]}")


def edge_parser(name: str) -> argparse.ArgumentParser:
    """The argparse parser of a base-install command (`llm2edge NAME ...`)."""
    module = command_module(name)
    parser = argparse.ArgumentParser(prog=f"llm2edge {name}",
                                     description=getattr(module, "DESCRIPTION", module.HELP),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return parser


def run_edge(name: str, argv: list[str]) -> None:
    """Parse `argv` for the base-install command `name` and run it (usage errors exit 2)."""
    args = edge_parser(name).parse_intermixed_args(argv)
    command_module(name).run(args)


def print_help(typer_missing: bool) -> None:
    """Top-level help when typer is not installed: the base commands, and where the others come from."""
    lines = ["Usage: llm2edge [--debug] COMMAND [ARGS]...", "",
             "Turn an LLM's labels into a small, fast classifier that runs anywhere.", "",
             "Commands (base install):"]
    lines += [f"  {name:<18} {command_module(name).HELP}" for name in EDGE_COMMANDS]
    note = " (not installed here: pip install 'llm2edge[hub]')" if typer_missing else ""
    lines += ["", f"With the hub/export extras{note}: {', '.join(HUB_COMMANDS)}.",
              "", "`llm2edge COMMAND --help` describes a command."]
    print("\n".join(lines))
