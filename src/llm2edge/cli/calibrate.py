"""`llm2edge calibrate`: the deferral threshold of a bundle, from held-out labelled rows (base install)."""

from __future__ import annotations

import argparse

from llm2edge.cli.fields import add_arguments as add_arguments_from
from llm2edge.cli.fields import build, options
from llm2edge.console import say, warn

HELP = "The deferral threshold of a bundle, from held-out labelled rows."
DESCRIPTION = ("Pick the lowest top-probability threshold whose kept items agree with the labels >= --target "
               "(lower bound at --confidence); write it, the coverage/agreement curve, calibration.csv and "
               "calibration.png into the bundle (checksummed, re-verified). Without such a threshold: a "
               "warning, no threshold, exit 0. A multi-label bundle: the band half-width on each row's "
               "margin min |p_l - t_l| whose kept rows' label sets agree >= --target (README, deferral).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """calibrate's arguments: CalibrateConfig's fields."""
    from llm2edge.edge.commands import CalibrateConfig

    add_arguments_from(parser, options(CalibrateConfig))


def run(args: argparse.Namespace) -> None:
    """Calibrate the bundle and say where the result was written."""
    from llm2edge.edge.calibrate import calibrate_bundle
    from llm2edge.edge.commands import CalibrateConfig, arguments

    config = build(CalibrateConfig, vars(args), options(CalibrateConfig))
    result = calibrate_bundle(**arguments(config))
    if result.threshold is None:
        warn(result.summary())
    else:
        print(result.summary())
    wrote = [str(p) for p in (result.csv, result.png) if p is not None]
    say(f"llm2edge: calibration written to {result.bundle / 'manifest.json'} ({', '.join(wrote)})")
