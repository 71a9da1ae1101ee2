"""Folder in, folder out: `llm2edge predict --input DIR|GLOB --output DIR [--engine local|ray]`.

What every engine shares: which files a DIR or GLOB names (`input_files`), each file read as tables of id
and text with the ids single-process `predict` gives it (`read_tables`: its `id` column, else row number +
text hash), the output folder check (`prepare_output`), and the job itself (`PredictJob`). `run_job` runs
a job on its engine: "local" here, in this process (one Parquet part per input file, in input order);
"ray" in `llm2edge.pipeline.ray_engine` (the `ray` extra). Output rows: id, [text,] label, [deferred,]
p_<label>... (float32), one per input row. Reading Parquet and writing it needs pyarrow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm2edge.defaults import (
    CHUNK_SIZE,
    ID_COL,
    TEXT_COL,
)
from llm2edge.errors import DataError
from llm2edge.pipeline.predict_job import ENGINES, PredictJob  # noqa: F401  (this module's API)
from llm2edge.records import (  # noqa: F401  (input_files, names_many, DATA_SUFFIXES: this module's API)
    DATA_SUFFIXES,
    chunked,
    default_id_col,
    detect_format,
    input_files,
    iter_records,
    names_many,
)

if TYPE_CHECKING:
    import pyarrow as pa

def prepare_output(output: str | Path) -> Path:
    """Create the output folder; DataError if it is a file or already holds files (an earlier run's parts
    would mix with this run's)."""
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise DataError(f"{path}: is a file; --output names a folder for the Parquet parts")
    if path.is_dir() and any(path.iterdir()):
        raise DataError(f"{path}: the output folder is not empty; remove it or choose another")
    path.mkdir(parents=True, exist_ok=True)
    return path


def discard_parts(folder: Path) -> None:
    """Empty the output folder of a failed run (it was empty when the run began): no partial output is
    left to be mistaken for a result."""
    import shutil  # (not at the top: `llm2edge predict FILE` imports this module and starts fast)

    for entry in folder.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _pyarrow() -> Any:
    """The pyarrow module, or a DataError with the pip command."""
    try:
        import pyarrow
    except ImportError:
        raise DataError("reading and writing Parquet folders needs pyarrow: pip install pyarrow") from None
    return pyarrow


def read_tables(path: str | Path, *, text_col: str = TEXT_COL, id_col: str | None = None,
                fmt: str | None = None, chunk_size: int = CHUNK_SIZE) -> Iterator[pa.Table]:
    """One data file as pyarrow tables of at most `chunk_size` rows with columns id and text (string).

    Ids as single-process `predict` gives this file: `id_col`, else its `id` column, else row number + text
    hash. Errors name the file and line (records.iter_records)."""
    pa = _pyarrow()
    if id_col is None:
        id_col = default_id_col(path, fmt=fmt, text_col=text_col)
    records = iter_records(path, text_col=text_col, id_col=id_col, fmt=fmt, allow_empty=True)
    for chunk in chunked(records, chunk_size):
        yield pa.table({ID_COL: pa.array([r.id for r in chunk], type=pa.string()),
                        TEXT_COL: pa.array([r.text for r in chunk], type=pa.string())})


@dataclass(frozen=True)
class FolderSummary:
    """What a folder prediction did: rows written, input files, seconds, where, on what."""

    rows: int
    files: int
    seconds: float
    output: Path
    engine: str
    workers: int
    truncated: int = 0  # texts cut to max_length (known on the local engine only)
    empty: int = 0  # empty texts classified (local engine only)
    max_length: int = 0  # the bundle's max_length (local engine only)


def run_job(job: PredictJob, *, on_rows: Callable[[int], None] | None = None) -> FolderSummary:
    """Run `job` on its engine; `on_rows(done)` is called with the rows done after each block written."""
    if job.engine == "ray":
        from llm2edge.pipeline.ray_engine import predict_folder_ray

        return predict_folder_ray(job, on_rows=on_rows)
    return predict_folder(job, on_rows=on_rows)


def predict_folder(job: PredictJob, *, on_rows: Callable[[int], None] | None = None) -> FolderSummary:
    """The local engine: classify every input file in this process, one Parquet part per input file
    (part-00000.parquet for the first file, in sorted order), rows in input order."""
    from llm2edge.pipeline.predictor import BundlePredictor

    files = input_files(job.inputs)
    _pyarrow()
    import pyarrow.parquet as pq

    predictor = BundlePredictor(job.bundle, threads=job.threads, batch_size=job.batch_size, defer=job.defer)
    out = prepare_output(job.output)
    start, rows = time.perf_counter(), 0
    try:
        for n, path in enumerate(files):
            writer = None
            try:
                for table in read_tables(path, text_col=job.text_col, id_col=job.id_col,
                                         fmt=job.input_format, chunk_size=job.chunk_size):
                    result = predictor(table)
                    if not job.with_text:
                        result = result.drop_columns([TEXT_COL])
                    if writer is None:
                        writer = pq.ParquetWriter(out / f"part-{n:05d}.parquet", result.schema)
                    writer.write_table(result)
                    rows += result.num_rows
                    if on_rows is not None:
                        on_rows(rows)
            finally:
                if writer is not None:
                    writer.close()
    except BaseException:
        discard_parts(out)
        raise
    counts = predictor.classifier.counts
    return FolderSummary(rows=rows, files=len(files), seconds=time.perf_counter() - start, output=out,
                         engine="local", workers=1, truncated=counts.truncated, empty=counts.empty,
                         max_length=predictor.classifier.max_length)
