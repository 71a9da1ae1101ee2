"""`llm2edge calibrate`: the deferral threshold of a bundle, from held-out labelled rows (base install)."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge.cli.options import threads_option
from llm2edge.console import say, warn
from llm2edge.defaults import CALIBRATE_CONFIDENCE, CALIBRATE_TARGET, LABEL_COL, PREDICT_BATCH_SIZE, TEXT_COL


def calibrate(
    bundle: Path = typer.Option(..., "--bundle", "-b", help="Bundle folder made by `llm2edge export`."),
    data: Path = typer.Option(..., "--data", "-d",
                              help="Held-out labelled rows (gold labels, or a teacher's labels to mimic); "
                                   "none of them may have been trained on."),
    text_col: str = typer.Option(TEXT_COL, "--text-col", help="Column holding the text."),
    label_col: str = typer.Option(LABEL_COL, "--label-col", help="Column holding the label."),
    target: float = typer.Option(CALIBRATE_TARGET, "--target",
                                 help="Agreement the kept items must reach (lower confidence bound)."),
    confidence: float = typer.Option(CALIBRATE_CONFIDENCE, "--confidence",
                                     help="Confidence of the Clopper-Pearson lower bound."),
    batch_size: int = typer.Option(PREDICT_BATCH_SIZE, "--batch-size", min=1, help="Texts per model call."),
    threads: int | None = threads_option("onnxruntime threads"),
) -> None:
    """Pick the lowest top-probability threshold whose kept items agree with the labels >= --target (lower
    bound at --confidence); write it, the coverage/agreement curve, calibration.csv and calibration.png into
    the bundle (checksummed, re-verified). Without such a threshold: a warning, no threshold, exit 0."""
    from llm2edge.edge.calibrate import calibrate_bundle

    result = calibrate_bundle(bundle, data, text_col=text_col, label_col=label_col, target=target,
                              confidence=confidence, threads=threads, batch_size=batch_size)
    if result.threshold is None:
        warn(result.summary())
    else:
        typer.echo(result.summary())
    wrote = [str(p) for p in (result.csv, result.png) if p is not None]
    say(f"llm2edge: calibration written to {result.bundle / 'manifest.json'} ({', '.join(wrote)})")


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("calibrate")(calibrate)
