"""Ray Data engine: `llm2edge predict --engine ray` and `BundlePredictor` on Ray actors (the `ray` extra).

    llm2edge predict -b bundle/ --engine ray --input posts/ --output preds/ [--address auto] [--workers N]

One actor per worker loads the verified bundle once, with one onnxruntime thread (`--threads` per worker),
and classifies blocks of `rows` rows; read tasks turn each input file into id/text blocks with the ids
single-process `predict` gives that file; the output is Parquet parts written by the workers, rows in
input order. The same actor class runs in your own pipelines:

    ds.map_batches(BundlePredictor, fn_constructor_kwargs={"bundle": "/shared/bundle"},
                   compute=ray.data.ActorPoolStrategy(size=4), batch_size=2048, batch_format="pyarrow",
                   num_cpus=1)

Ray's usage telemetry is off unless RAY_USAGE_STATS_ENABLED is set; Ray's console logs are kept to errors
(its session logs stay under /tmp/ray). An error raised in a worker is raised again here as itself (a
DataError naming the file and line), anything else Ray reports as one EngineError line. Importing this
module without the extra raises MissingExtraError with the pip command.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

from llm2edge.extras import require

require("ray")

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before ray is imported: no usage telemetry

import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import ray  # noqa: E402
import ray.data  # noqa: E402

from llm2edge.defaults import TEXT_COL, WORKER_THREADS  # noqa: E402
from llm2edge.edge.bundle import read_bundle  # noqa: E402
from llm2edge.edge.defer import resolve_defer  # noqa: E402
from llm2edge.edge.threads import available_cpus  # noqa: E402
from llm2edge.errors import EngineError, Llm2EdgeError  # noqa: E402
from llm2edge.pipeline.folders import (  # noqa: E402
    FolderSummary,
    PredictJob,
    discard_parts,
    input_files,
    prepare_output,
    read_tables,
)
from llm2edge.pipeline.predictor import WORKER_ENV, BundlePredictor  # noqa: E402

__all__ = ["BundlePredictor", "predict_folder_ray", "ray_cluster", "worker_error"]

#: The address meaning "start a private local Ray for this run" (ray.init's own word for it).
LOCAL = "local"


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, else its type name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def worker_error(exc: BaseException) -> BaseException:
    """The exception to raise for a failed Ray run: what the worker raised, out of Ray's wrappers (a
    RayTaskError(DataError) gives the DataError); an error of Ray's own (an actor that died, a lost
    object) or a foreign one becomes an EngineError line."""
    todo, seen = [exc], set()
    while todo:
        err = todo.pop(0)
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if not type(err).__module__.startswith("ray."):
            if isinstance(err, Llm2EdgeError):
                err.args = (_first_line(err),)  # Ray Data appends its retry advice to the message
                return err.with_traceback(None)
            if isinstance(err, OSError):
                return err.with_traceback(None)
            return EngineError(f"a Ray worker failed: {type(err).__name__}: {_first_line(err)}")
        todo += [getattr(err, "cause", None), err.__cause__, err.__context__]
    return EngineError(f"Ray failed: {type(exc).__name__}: {_first_line(exc)}")


@contextlib.contextmanager
def ray_cluster(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[float]:
    """Connect to Ray (or start it) for a run and yield the cluster's CPUs; shut down only what it started.

    A session already open in this process (a notebook's, a test's) is used as it is. Otherwise `address`,
    else RAY_ADDRESS, else a private local Ray with `num_cpus` CPUs (default: the CPUs this process may
    use), no dashboard. `auto` joins the cluster this machine belongs to; `ray://HOST:PORT` goes through
    Ray Client."""
    if ray.is_initialized():
        yield float(ray.cluster_resources().get("CPU", 0.0))
        return
    target = address or os.environ.get("RAY_ADDRESS") or LOCAL
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if target == LOCAL:
        options.update(num_cpus=num_cpus or available_cpus(), include_dashboard=False)
    try:
        ray.init(address=target, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = "" if target == LOCAL or os.environ.get("RAY_AUTH_MODE") else (
            " (a cluster with token authentication needs RAY_AUTH_MODE=token and its token: RAY_AUTH_TOKEN "
            "or ~/.ray/auth_token)")
        raise EngineError(f"cannot connect to Ray at '{target}': {_first_line(exc)}{hint}") from None
    try:
        yield float(ray.cluster_resources().get("CPU", 0.0))
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _quiet_data_context(progress: bool) -> Iterator[None]:
    """Ray Data settings for one run (restored after it): rows in input order, progress bars only when
    asked, no execution banner, nothing from Ray Data on the console, neither log lines nor Python warnings
    (a failure is raised as one error; Ray Data's own log file under /tmp/ray keeps its full report)."""
    ctx = ray.data.DataContext.get_current()
    saved = (ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.execution_options.preserve_order)
    handlers = [h for h in logging.getLogger("ray.data").handlers if isinstance(h, logging.StreamHandler)
                and not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in handlers]
    ctx.enable_progress_bars, ctx.print_on_execution_start = progress, False
    ctx.execution_options.preserve_order = True
    for handler in handlers:
        handler.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"ray\.")
            yield
    finally:
        ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.execution_options.preserve_order = saved
        for handler, level in zip(handlers, levels):
            handler.setLevel(level)


def _read_files(batch: dict[str, Any], *, text_col: str, id_col: str | None, fmt: str | None,
                chunk_size: int) -> Iterator[Any]:
    """Ray map_batches function: the files named in `batch["path"]` as id/text pyarrow tables."""
    for path in batch["path"]:
        yield from read_tables(str(path), text_col=text_col, id_col=id_col, fmt=fmt, chunk_size=chunk_size)


def _output_rows(folder: Path) -> int:
    """Rows in the Parquet parts of `folder` (from their footers)."""
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(p).metadata.num_rows for p in folder.rglob("*.parquet"))


def predict_folder_ray(job: PredictJob) -> FolderSummary:
    """Run a folder prediction on Ray (see the module docstring); returns rows, files and seconds."""
    files = input_files(job.inputs)
    bundle = read_bundle(job.bundle)  # a bad bundle fails here, before Ray starts (each actor checks again)
    resolve_defer(bundle, job.defer)  # so does --defer auto on an uncalibrated bundle
    threads = job.threads or WORKER_THREADS
    out = prepare_output(job.output).resolve()
    start = time.perf_counter()
    local_cpus = max(available_cpus(), (job.workers or 0) * threads)
    with ray_cluster(job.address, num_cpus=local_cpus) as cpus, _quiet_data_context(job.progress):
        workers = job.workers or max(1, int(cpus // threads))
        if workers * threads > cpus:
            raise EngineError(f"{workers} workers x {threads} thread(s) need {workers * threads} CPUs; "
                              f"the Ray cluster has {cpus:g}")
        paths = [{"path": str(p.resolve())} for p in files]
        ds = ray.data.from_items(paths, override_num_blocks=len(paths))
        # Reading takes no CPU slot of its own: every slot goes to a predictor actor.
        ds = ds.map_batches(_read_files, batch_size=1, num_cpus=0,
                            compute=ray.data.TaskPoolStrategy(size=max(1, min(len(paths), workers))),
                            fn_kwargs={"text_col": job.text_col, "id_col": job.id_col,
                                       "fmt": job.input_format, "chunk_size": job.chunk_size})
        # batch_size=None: every block (a file's chunk of at most `chunk_size` rows) is one batch, never
        # merged with other files' blocks into one actor's call, so even a small job spreads over all the
        # actors.
        ds = ds.map_batches(BundlePredictor, batch_size=None, batch_format="pyarrow",
                            compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=threads,
                            runtime_env={"env_vars": {**WORKER_ENV, "OMP_NUM_THREADS": str(threads)}},
                            fn_constructor_kwargs={"bundle": str(bundle.path.resolve()), "threads": threads,
                                                   "batch_size": job.batch_size, "defer": job.defer})
        if not job.with_text:
            ds = ds.drop_columns([TEXT_COL])
        try:
            ds.write_parquet(str(out), ray_remote_args={"num_cpus": 0})
        except Exception as exc:  # Ray wraps what a worker raised: raise that
            discard_parts(out)
            raise worker_error(exc) from None
    return FolderSummary(rows=_output_rows(out), files=len(files), seconds=time.perf_counter() - start,
                         output=out, engine="ray", workers=workers)
