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
