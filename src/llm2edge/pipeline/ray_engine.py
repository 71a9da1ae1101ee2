"""Ray engine: `llm2edge predict --engine ray` and `BundlePredictor` on Ray actors (the `ray` extra).

    llm2edge predict -b bundle/ --engine ray --input posts/ --output preds/ [--address auto] [--workers N]

One actor per worker loads the verified bundle once, with one onnxruntime thread (`--threads` per worker),
classifies blocks of `rows` rows and writes each as a Parquet part; zero-CPU read tasks turn each input
file into id/text blocks with the ids single-process `predict` gives that file (ray_blocks). The parts sort
in input order. Every CPU the run asks for is an actor's, so nothing waits behind the actors on a full
cluster; workers run at the driver's priority, not Ray's niceness 15; rows done go to `on_rows`; a run
with no progress for `stall_timeout` seconds stops with one line naming the stage, the address and the
rows done. The same BundlePredictor runs in your own Ray Data pipelines:

    ds.map_batches(BundlePredictor, fn_constructor_kwargs={"bundle": "/shared/bundle"},
                   compute=ray.data.ActorPoolStrategy(min_size=1, max_size=4), batch_size=2048,
                   batch_format="pyarrow", num_cpus=1)

Ray's usage telemetry is off unless RAY_USAGE_STATS_ENABLED is set; Ray's console logs are kept to errors
unless `verbose` (its session logs stay under /tmp/ray). An error raised in a worker is raised again here
as itself (a DataError naming the file and line), anything else Ray reports as one EngineError line; an
address where nothing answers fails within seconds, naming it. Importing this module without the extra
raises MissingExtraError with the pip command.
"""

from __future__ import annotations

import contextlib
import logging
import os

from llm2edge.extras import require

require("ray")

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before ray is imported: no usage telemetry

import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import ray  # noqa: E402

from llm2edge.defaults import WORKER_THREADS  # noqa: E402
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
)
from llm2edge.pipeline.predictor import BundlePredictor  # noqa: E402
from llm2edge.pipeline.ray_address import probe_address  # noqa: E402
from llm2edge.pipeline.ray_blocks import BlockRun, Plan  # noqa: E402

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
def ray_cluster(address: str | None = None, *, num_cpus: int | None = None,
                verbose: bool = False) -> Iterator[tuple[float, str]]:
    """Connect to Ray (or start it) for a run; yield the cluster's CPUs and its address as the messages
    name it; shut down only what it started.

    A session already open in this process (a notebook's, a test's) is used as it is. Otherwise `address`,
    else RAY_ADDRESS, else a private local Ray with `num_cpus` CPUs (default: the CPUs this process may
    use), no dashboard. `auto` joins the cluster this machine belongs to; `ray://HOST:PORT` goes through
    Ray Client. A HOST:PORT where Ray does not answer fails within seconds, naming it (ray_address). Ray's own
    log lines reach stderr only when `verbose`."""
    if ray.is_initialized():
        yield float(ray.cluster_resources().get("CPU", 0.0)), _gcs_address("the Ray of this process")
        return
    target = address or os.environ.get("RAY_ADDRESS") or LOCAL
    probe_address(target)
    options: dict[str, Any] = {"logging_level": logging.INFO if verbose else logging.ERROR,
                               "log_to_driver": verbose}
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
        yield float(ray.cluster_resources().get("CPU", 0.0)), (
            _gcs_address("the local Ray") if target == LOCAL else f"Ray at '{target}'")
    finally:
        ray.shutdown()


def _gcs_address(what: str) -> str:
    """`what` and the address of the Ray this process is connected to (`the local Ray at 10.0.0.5:6379`)."""
    try:
        return f"{what} at {ray.get_runtime_context().gcs_address}"
    except Exception:  # noqa: BLE001 - Ray Client has no GCS address here: the words alone
        return what


def predict_folder_ray(job: PredictJob, *, on_rows: Callable[[int], None] | None = None) -> FolderSummary:
    """Run a folder prediction on Ray (see the module docstring); `on_rows(done)` is called after each
    block written. Returns rows, files and seconds."""
    files = input_files(job.inputs)
    bundle = read_bundle(job.bundle)  # a bad bundle fails here, before Ray starts (each actor checks again)
    resolve_defer(bundle, job.defer)  # so does --defer auto on an uncalibrated bundle
    threads = job.threads or WORKER_THREADS
    out = prepare_output(job.output).resolve()
    start = time.perf_counter()
    local_cpus = max(available_cpus(), (job.workers or 0) * threads)
    with ray_cluster(job.address, num_cpus=local_cpus, verbose=job.verbose) as (cpus, where):
        workers = job.workers or max(1, int(cpus // threads))
        if workers * threads > cpus:
            raise EngineError(f"{workers} workers x {threads} thread(s) need {workers * threads} CPUs; "
                              f"the Ray cluster has {cpus:g}")
        plan = Plan(files=[p.resolve() for p in files], output=out, bundle=bundle.path.resolve(),
                    workers=workers, threads=threads, batch_size=job.batch_size, defer=job.defer,
                    with_text=job.with_text, text_col=job.text_col, id_col=job.id_col, fmt=job.input_format,
                    rows=job.chunk_size, stall_timeout=job.stall_timeout, address=where)
        try:
            rows = BlockRun(plan, on_rows).run()
        except BaseException as exc:
            discard_parts(out)
            if isinstance(exc, Exception):
                raise worker_error(exc) from None  # Ray wraps what a worker raised: raise that
            raise
    return FolderSummary(rows=rows, files=len(files), seconds=time.perf_counter() - start, output=out,
                         engine="ray", workers=workers)
