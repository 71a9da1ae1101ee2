"""`llm2edge calibrate`: the deferral threshold of a bundle, from held-out labelled rows (base install)."""

from __future__ import annotations

import argparse
from pathlib import Path

from llm2edge.cli.fields import add_arguments as add_arguments_from
from llm2edge.cli.fields import own
from llm2edge.console import say, warn
from llm2edge.defaults import CALIBRATE_CONFIDENCE, CALIBRATE_TARGET, LABEL_COL, PREDICT_BATCH_SIZE, TEXT_COL
from llm2edge.params import THREADS_DEFAULT_HELP

HELP = "The deferral threshold of a bundle, from held-out labelled rows."
DESCRIPTION = ("Pick the lowest top-probability threshold whose kept items agree with the labels >= --target "
               "(lower bound at --confidence); write it, the coverage/agreement curve, calibration.csv and "
               "calibration.png into the bundle (checksummed, re-verified). Without such a threshold: a "
               "warning, no threshold, exit 0. A multi-label bundle: the band half-width on each row's "
               "margin min |p_l - t_l| whose kept rows' label sets agree >= --target (README, deferral).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """calibrate's arguments (those of `calibrate_bundle`)."""
    add_arguments_from(parser, [
        own("bundle", "--bundle", "-b", type=Path, required=True,
            help="Bundle folder made by `llm2edge export`."),
        own("data", "--data", "-d", type=Path, required=True,
            help="Held-out labelled rows (gold labels, or a teacher's labels to mimic); none of them may "
                 "have been trained on."),
        own("text_col", "--text-col", default=TEXT_COL, help="Column holding the text."),
        own("label_col", "--label-col", default=LABEL_COL, help="Column holding the label."),
        own("target", "--target", type=float, default=CALIBRATE_TARGET,
            help="Agreement the kept items must reach (lower confidence bound)."),
        own("confidence", "--confidence", type=float, default=CALIBRATE_CONFIDENCE,
            help="Confidence of the Clopper-Pearson lower bound, in (0, 1): at 0 or 1 every bound is 1 or "
                 "0."),
        own("batch_size", "--batch-size", type=int, default=PREDICT_BATCH_SIZE, cli_min=1,
            help="Texts per model call."),
        own("threads", "--threads", type=int, cli_min=1, metavar="N",
            help=f"onnxruntime threads ({THREADS_DEFAULT_HELP})."),
    ])


def run(args: argparse.Namespace) -> None:
    """Calibrate the bundle and say where the result was written."""
    from llm2edge.edge.calibrate import calibrate_bundle

    result = calibrate_bundle(args.bundle, args.data, text_col=args.text_col, label_col=args.label_col,
                              target=args.target, confidence=args.confidence, threads=args.threads,
                              batch_size=args.batch_size)
    if result.threshold is None:
        warn(result.summary())
    else:
        print(result.summary())
    wrote = [str(p) for p in (result.csv, result.png) if p is not None]
    say(f"llm2edge: calibration written to {result.bundle / 'manifest.json'} ({', '.join(wrote)})")
