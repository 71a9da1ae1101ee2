"""What the edge's file commands are asked to do, as config dataclasses (llm2edge.params): `calibrate`
(CalibrateConfig: `calibrate_bundle`'s arguments), `evaluate` (EvaluateConfig: `evaluate_files`') and
`merge-predictions` (MergeConfig: `merge_predictions`'). Each field declares its option's default, help and
check once; the CLI builds its argparse options from them and calls the function with the fields
(`arguments`), so a new parameter is one field here and one keyword there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from llm2edge.checks import fraction, open_fraction
from llm2edge.defaults import (
    CALIBRATE_CONFIDENCE,
    CALIBRATE_TARGET,
    ID_COL,
    LABEL_COL,
    PREDICT_BATCH_SIZE,
    TEXT_COL,
)
from llm2edge.params import Checked, param, threads_param


def arguments(config: Any) -> dict[str, Any]:
    """The config's fields as the keyword arguments of the function it configures (not copied)."""
    return {f.name: getattr(config, f.name) for f in fields(config)}


@dataclass(kw_only=True)
class CalibrateConfig(Checked):
    """`llm2edge calibrate`: the deferral threshold of a bundle from held-out labelled rows (checked when
    built)."""

    bundle: Path = param(flags=("--bundle", "-b"), help="Bundle folder made by `llm2edge export`.")
    data: Path = param(flags=("--data", "-d"),
                       help="Held-out labelled rows (gold labels, or a teacher's labels to mimic); none of "
                            "them may have been trained on.")
    text_col: str = param(TEXT_COL, help="Column holding the text.")
    label_col: str = param(LABEL_COL, help="Column holding the label.")
    target: float = param(CALIBRATE_TARGET, check=fraction,
                          help="Agreement the kept items must reach (lower confidence bound).")
    confidence: float = param(CALIBRATE_CONFIDENCE, check=open_fraction,
                              help="Confidence of the Clopper-Pearson lower bound, in (0, 1): at 0 or 1 "
                                   "every bound is 1 or 0.")
    batch_size: int = param(PREDICT_BATCH_SIZE, low=1, cli_min=1, help="Texts per model call.")
    threads: int | None = threads_param("onnxruntime threads")


@dataclass(kw_only=True)
class EvaluateConfig(Checked):
    """`llm2edge evaluate`: predictions scored against gold labels."""

    pred: Path = param(help="Predictions (e.g. `llm2edge predict` output).")
    gold: Path = param(help="Gold labels (csv, jsonl, parquet).")
    id_col: str = param(ID_COL, help="Id column used to join the two files.")
    pred_col: str = param(LABEL_COL, help="Label column of --pred.")
    gold_col: str = param(LABEL_COL, help="Label column of --gold.")
    text_col: str = param(TEXT_COL, help="Gold text column: gives the ids `predict` made for id-less rows.")


@dataclass(kw_only=True)
class MergeConfig(Checked):
    """`llm2edge merge-predictions`: the LLM's label for every deferred item, the edge's for the rest."""

    edge: Path = param(help="Predictions of `llm2edge predict --defer ...`.")
    llm: Path = param(help="The LLM's labels of the deferred items (`llm2edge label --id-col id` on "
                           "predict's --deferred-out file).")
    out: Path = param(flags=("--out", "-o"), help="Merged file (.csv or .jsonl).")
    fmt: str | None = param(None, flags=("--format", "-f"),
                            help="csv or jsonl (default: from --out's suffix).")
    id_col: str = param(ID_COL, help="Id column of the LLM file.")
    label_col: str = param(LABEL_COL, help="Label column of the LLM file.")
    map: str | None = param(None, help="Rename LLM labels that are not the bundle's: 'OLD=NEW,...' (else "
                                       "such a label is an error).")
