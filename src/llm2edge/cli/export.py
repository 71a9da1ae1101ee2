"""`llm2edge export`: a trained model to an edge bundle (ONNX, int8, validated, checksummed)."""

from __future__ import annotations

from pathlib import Path

import typer

from llm2edge import defaults
from llm2edge.cli.options import threads_option


def export(
    model: Path = typer.Option(..., "--model", "-m", help="Model folder made by `llm2edge train`."),
    out: Path = typer.Option(..., "--out", "-o", help="Bundle folder to write (replaced if it is a bundle)."),
    quantize: str = typer.Option(defaults.QUANTIZE, "--quantize", "-q", help="int8 or none."),
    validate: Path | None = typer.Option(None, "--validate",
                                         help="Validation file (default: MODEL/validation.csv)."),
    min_agreement: float = typer.Option(defaults.MIN_AGREEMENT, "--min-agreement",
                                        help="int8 must agree with torch this often, else fp32 ships."),
    guard_texts: int = typer.Option(defaults.GUARD_TEXTS, "--guard-texts", min=0,
                                    help="Judge int8 on at least this many texts: the validation rows, "
                                         "topped up with the training texts of train_meta.json."),
    strict: bool = typer.Option(False, "--strict", help="Fail instead of falling back to fp32."),
    max_length: int | None = typer.Option(None, "--max-length",
                                          help="Token limit (default: train_meta.json's, else the "
                                               "tokenizer's model_max_length; at most the model's "
                                               "position limit)."),
    no_optimize: bool = typer.Option(False, "--no-optimize", help="Skip the transformer graph fusion."),
    per_channel: bool | None = typer.Option(None, "--per-channel/--per-tensor",
                                            help="int8 weight layout (default: chosen for this CPU)."),
    text_col: str = typer.Option(defaults.TEXT_COL, "--text-col", help="Text column of the validation file."),
    label_col: str = typer.Option(defaults.LABEL_COL, "--label-col",
                                  help="Label column of the validation file."),
    threads: int | None = threads_option("Threads for validation (torch and onnxruntime)"),
) -> None:
    """Export a trained model to an edge bundle: ONNX, fused, int8, validated, with a manifest."""
    from llm2edge.extras import require

    require("export")
    from llm2edge.export import ExportConfig, export_bundle

    result = export_bundle(ExportConfig(
        model=model, out=out, quantize=quantize, validate=validate, min_agreement=min_agreement,
        guard_texts=guard_texts, strict=strict, max_length=max_length, optimize=not no_optimize,
        per_channel=per_channel, text_col=text_col, label_col=label_col, threads=threads,
    ))
    typer.echo(result.table())


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to `app`."""
    app.command("export")(export)
