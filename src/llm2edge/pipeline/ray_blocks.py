"""The work of `llm2edge predict --engine ray`: zero-CPU read tasks, predictor actors that also write, and a
driver loop that hands blocks to actors, counts rows done and stops a run that makes no progress.

Every CPU slot goes to a predictor actor (`workers` x `threads` CPUs) and nothing else asks for one: each
input file is read by a streaming task with `num_cpus=0` (blocks of at most `rows` rows, a few ahead at
most), and each actor classifies a block, drops the text unless asked to keep it and writes the block's
Parquet part itself (`part-FFFFF-BBBBB.parquet`: file and block number, so the parts sort in input
order; written under a `_` name first, then renamed). No operator downstream of the actors can wait for a
CPU they hold, which is what hung Ray Data's column-drop and Write steps on a cluster the actors filled.

Ray starts its worker processes at niceness 15 (`RAY_worker_niceness`): beside any other busy process such
a worker gets a few percent of a CPU. These tasks and actors run with `RAY_worker_niceness=0` (the
raylet's priority: on a local Ray, the driver's) unless RAY_worker_niceness is set in the driver's
environment.
"""

from __future__ import annotations

import contextlib
import heapq
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.extras import require

require("ray")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # before ray is imported: no usage telemetry

import ray  # noqa: E402

from llm2edge.defaults import TEXT_COL  # noqa: E402
from llm2edge.errors import EngineError  # noqa: E402
from llm2edge.pipeline.folders import read_tables  # noqa: E402
from llm2edge.pipeline.predictor import WORKER_ENV, BundlePredictor  # noqa: E402

#: Blocks a read task may have ready before the driver takes them (a file is read ahead this far at most).
READ_AHEAD = 2
#: Blocks queued on each actor: one running, one waiting, so an actor never idles between blocks.
PER_ACTOR = 2
#: Ray's setting of its workers' niceness (ray_constants.RAY_WORKER_NICENESS; Ray's job supervisor sets 0).
NICENESS_ENV = "RAY_worker_niceness"
#: Longest wait of the driver loop between two looks at the watchdog, in seconds.
POLL_S = 1.0


def worker_env(threads: int) -> dict[str, str]:
    """Environment of every Ray task and actor of a run: one thread per CPU given, the driver's priority
    (niceness 0 on top of the raylet's) unless RAY_worker_niceness is set here."""
    return {**WORKER_ENV, "OMP_NUM_THREADS": str(threads),
            NICENESS_ENV: os.environ.get(NICENESS_ENV, "0")}


def part_name(file: int, block: int) -> str:
    """The output part of block `block` of input file `file` (names sort in input order)."""
    return f"part-{file:05d}-{block:05d}.parquet"


@ray.remote(num_cpus=0)
def read_blocks(path: str, text_col: str, id_col: str | None, fmt: str | None, rows: int) -> Iterator[Any]:
    """Ray streaming task: one input file as id/text tables of at most `rows` rows (no CPU slot)."""
    yield from read_tables(path, text_col=text_col, id_col=id_col, fmt=fmt, chunk_size=rows)


@ray.remote(max_restarts=0, max_task_retries=0)
class PartWriter:
    """Ray actor: a BundlePredictor that writes each block it classifies as one Parquet part."""

    def __init__(self, bundle: str, output: str, *, threads: int, batch_size: int, defer: str,
                 with_text: bool) -> None:
        self.predictor = BundlePredictor(bundle, threads=threads, batch_size=batch_size, defer=defer)
        self.output, self.with_text = Path(output), with_text

    def ready(self) -> bool:
        """True once the bundle is loaded (the driver waits on this)."""
        return True

    def write(self, table: Any, name: str) -> int:
        """Classify `table`, write it as `name` in the output folder; return its rows."""
        import pyarrow.parquet as pq

        result = self.predictor(table)
        if not self.with_text:
            result = result.drop_columns([TEXT_COL])
        temp = self.output / f"_{name}.tmp"
        pq.write_table(result, temp)
        os.replace(temp, self.output / name)
        return int(result.num_rows)


@dataclass
class Plan:
    """What the driver loop runs: the input files, the actors' settings and the watchdog's."""

    files: list[Path]
    output: Path
    bundle: Path
    workers: int
    threads: int
    batch_size: int
    defer: str
    with_text: bool
    text_col: str
    id_col: str | None
    fmt: str | None
    rows: int
    stall_timeout: float
    address: str


@dataclass
class _State:
    """The driver loop's bookkeeping."""

    starting: dict[Any, Any] = field(default_factory=dict)  # ready() ref -> actor
    free: list[Any] = field(default_factory=list)  # ready actors, one entry per free slot
    readers: dict[Any, list[int]] = field(default_factory=dict)  # generator -> [file, next block]
    queue: list[tuple[int, int, Any]] = field(default_factory=list)  # heap of (file, block, ref)
    inflight: dict[Any, Any] = field(default_factory=dict)  # write() ref -> actor
    rows: int = 0
    last: float = field(default_factory=time.monotonic)


class BlockRun:
    """One run of a Plan on the connected Ray: start the actors, read, classify and write every block."""

    def __init__(self, plan: Plan, on_rows: Callable[[int], None] | None = None) -> None:
        self.plan, self.on_rows = plan, on_rows
        self.state = _State()
        self.actors: list[Any] = []
        self.next_file = 0

    def run(self) -> int:
        """Run to the end and return the rows written; on any failure stop every task and actor of the
        run first (the caller empties the output folder)."""
        try:
            self._start_actors()
            while self._busy():
                self._start_readers()
                self._dispatch()
                self._step()
            return self.state.rows
        finally:
            self._stop()

    def _start_actors(self) -> None:
        p = self.plan
        env = worker_env(p.threads)
        for _ in range(p.workers):
            actor = PartWriter.options(num_cpus=p.threads, runtime_env={"env_vars": env}).remote(
                str(p.bundle), str(p.output), threads=p.threads, batch_size=p.batch_size, defer=p.defer,
                with_text=p.with_text)
            self.actors.append(actor)
            self.state.starting[actor.ready.remote()] = actor

    def _busy(self) -> bool:
        s = self.state
        return bool(self.next_file < len(self.plan.files) or s.readers or s.queue or s.inflight)

    def _start_readers(self) -> None:
        """Keep up to `workers` files being read at once, in input order."""
        p = self.plan
        env = worker_env(1)
        while len(self.state.readers) < p.workers and self.next_file < len(p.files):
            gen = read_blocks.options(runtime_env={"env_vars": env},
                                      _generator_backpressure_num_objects=READ_AHEAD).remote(
                str(p.files[self.next_file]), p.text_col, p.id_col, p.fmt, p.rows)
            self.state.readers[gen] = [self.next_file, 0]
            self.next_file += 1

    def _dispatch(self) -> None:
        """Give the earliest queued blocks to free actor slots."""
        s = self.state
        while s.free and s.queue:
            file, block, ref = heapq.heappop(s.queue)
            actor = s.free.pop(0)
            s.inflight[actor.write.remote(ref, part_name(file, block))] = actor

    def _step(self) -> None:
        """Wait for one event (an actor ready, a block read, a block written) or the watchdog's limit."""
        s, p = self.state, self.plan
        waiting = [*s.inflight, *s.starting]
        if len(s.queue) < PER_ACTOR * p.workers:
            waiting += list(s.readers)
        left = p.stall_timeout - (time.monotonic() - s.last)
        if left <= 0:
            raise EngineError(self._stall_line())
        ready, _ = ray.wait(waiting, num_returns=1, timeout=min(POLL_S, left), fetch_local=False)
        if not ready:
            return
        item = ready[0]
        s.last = time.monotonic()
        if item in s.inflight:
            actor = s.inflight.pop(item)
            s.rows += ray.get(item)
            s.free.append(actor)
            if self.on_rows is not None:
                self.on_rows(s.rows)
        elif item in s.starting:
            actor = s.starting.pop(item)
            ray.get(item)  # a bundle that fails to load raises here
            s.free += [actor] * PER_ACTOR
        else:
            file_block = s.readers[item]
            try:
                ref = next(item)
            except StopIteration:
                del s.readers[item]
                return
            heapq.heappush(s.queue, (file_block[0], file_block[1], ref))
            file_block[1] += 1

    def _stall_line(self) -> str:
        """The watchdog's one line: the stage that made no progress, the cluster, the rows done."""
        s, p = self.state, self.plan
        ready = p.workers - len(s.starting)
        if s.inflight:
            stage = f"predicting ({len(s.inflight)} block(s) on {ready} worker(s))"
        elif s.starting:
            stage = f"starting the workers ({ready} of {p.workers} ready; each needs {p.threads} CPU(s))"
        elif s.readers:
            stage = "reading " + ", ".join(p.files[f].name for f, _ in sorted(s.readers.values()))
        else:
            stage = "waiting for Ray"
        return (f"Ray made no progress for {p.stall_timeout:g} s (--stall-timeout) while {stage}, on "
                f"{p.address}; {s.rows:,} rows done; the run was stopped")

    def _stop(self) -> None:
        """Cancel the read tasks and kill the actors of this run (a shared session keeps running)."""
        for gen in self.state.readers:
            with contextlib.suppress(Exception):  # already finished or gone: nothing to stop
                ray.cancel(gen, force=True)
        for actor in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
