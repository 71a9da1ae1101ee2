"""`PredictJob`: a folder prediction (`llm2edge predict --input DIR|GLOB --output DIR [--engine ray]`).

Its fields are also `llm2edge predict`'s options, so this module is what predict's argument parser reads at
every start: it imports only core modules (the folder code, `folders`, is loaded when a folder runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm2edge.checks import positive
from llm2edge.defaults import (
    CHUNK_SIZE,
    DEFER,
    PREDICT_BATCH_SIZE,
    PREDICT_ENGINE,
    RAY_STALL_TIMEOUT_S,
    TEXT_COL,
)
from llm2edge.errors import ConfigError
from llm2edge.params import check_fields, param, threads_param

#: The engines `folders.run_job` knows.
ENGINES = ("local", "ray")


@dataclass
class PredictJob:
    """A folder prediction, the same on every engine; its fields are also `llm2edge predict`'s options.

    `bundle`: the bundle folder; `inputs`: a folder, glob or file of CSV/JSONL/Parquet files; `output`: the
    folder of Parquet parts (created; must be empty).
    """

    bundle: Path
    inputs: str
    output: Path
    text_col: str = param(TEXT_COL, help="Column holding the text.")
    id_col: str | None = param(None, help="Column holding the id (default: 'id' if the file has one, else "
                                          "row number + text hash).")
    input_format: str | None = param(None, help="csv, jsonl, txt or parquet (default: from the suffix; "
                                                "stdin: txt, one text per line).")
    batch_size: int = param(PREDICT_BATCH_SIZE, low=1, cli_min=1,
                            help="Texts per model call on a GPU (on CPU each text runs alone: results never "
                                 "depend on the batch).")
    #: In folder mode a Ray block.
    chunk_size: int = param(CHUNK_SIZE, low=1, cli_min=1, help="Rows read, classified and written at a time.")
    #: local: default the CPUs; ray: per worker, default 1.
    threads: int | None = threads_param("onnxruntime threads")
    with_text: bool = param(False, help="Copy each text into the output.")
    #: Adds `deferred` to every row.
    defer: str = param(DEFER, help="Mark items whose top probability is under a threshold 'deferred' "
                                   "(label still given): auto (the bundle's `llm2edge calibrate` threshold), "
                                   "a probability, or none. Multi-label bundle: a band, deferred when a "
                                   "label's probability is within it of its threshold.")
    engine: str = param(PREDICT_ENGINE, choices=ENGINES,
                        help="Folder mode: local (this process) or ray (Ray Data actors; --threads is per "
                             "worker, default 1).")
    #: Ray: `auto` is the cluster this machine is part of; HOST:PORT its head; `ray://HOST:PORT` Ray Client.
    address: str | None = param(None, help="--engine ray: the Ray cluster: auto (the one this machine is "
                                           "part of) or ray://HOST:PORT (default: RAY_ADDRESS, else a local "
                                           "Ray started for this run).")
    workers: int | None = param(None, low=1, cli_min=1,
                                help="--engine ray: predictor actors (default: the cluster's CPUs / "
                                     "--threads).")
    #: EngineError naming the stage (`predict --stall-timeout`, parsed there).
    stall_timeout: float = param(RAY_STALL_TIMEOUT_S, check=positive, cli=False,
                                 help="ray: seconds without progress before the run is stopped.")
    verbose: bool = param(False, cli=False, help="ray: Ray's own log lines on stderr.")

    def __post_init__(self) -> None:
        check_fields(self)
        if self.engine != "ray" and (self.address is not None or self.workers is not None):
            raise ConfigError("--address and --workers need --engine ray")
        if self.input_format is not None:
            from llm2edge.records import detect_format

            detect_format("", self.input_format)  # DataError naming the formats
        self.bundle, self.output = Path(self.bundle), Path(self.output)
