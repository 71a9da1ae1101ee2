"""`llm2edge label`: read items, render prompts, label them with a backend, write resumable JSONL.

Data-parallel under `accelerate launch`: each process labels the items whose index % world_size equals its
rank into `OUT.part-<rank>-of-<n>.jsonl`; rank 0 then merges every part into OUT in input order.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import BackendError, ConfigError, DataError, Interrupted, Llm2EdgeError
from llm2edge.hashing import digest
from llm2edge.hub.label import multilabel, votes
from llm2edge.hub.label.backend import Backend, Prompt, Scored
from llm2edge.hub.label.config import BACKENDS, LabelConfig
from llm2edge.hub.label.dryrun import DryRun, dry_run
from llm2edge.hub.label.prompts import PromptBuilder, examples_from_file
from llm2edge.hub.label.store import (
    LabelWriter,
    item_key,
    latest_by_key,
    margins,
    repair,
    write_atomic,
    write_csv,
)
from llm2edge.hub.label.task import Task
from llm2edge.hub.models import llm_name
from llm2edge.outputs import OutputLock
from llm2edge.records import Record, chunked, read_records


@dataclass(frozen=True)
class LabelSummary:
    """The outcome of a run."""

    out: Path
    total: int
    labeled: int
    failed: int
    skipped: int
    distribution: dict[str, int]
    seconds: float
    items_per_s: float
    csv: Path | None = None
    dry_run: DryRun | None = None
    rank: int = 0
    world_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    first_error: str | None = None  # the error of the first failed row (rank 0)

    def text(self) -> str:
        """A human-readable summary."""
        if self.dry_run is not None:
            return self.dry_run.text()
        dist = ", ".join(f"{k} {v}" for k, v in sorted(self.distribution.items(), key=lambda kv: -kv[1]))
        lines = [f"labeled {self.labeled}, failed {self.failed}, skipped {self.skipped} (already done) "
                 f"of {self.total} items in {self.seconds:.1f} s ({self.items_per_s:.2f} items/s)",
                 f"labels: {dist or 'none'}",
                 f"written: {self.out}" + (f" and {self.csv}" if self.csv else "")]
        return "\n".join(lines)

    def raise_if_failed(self) -> None:
        """BackendError when items are left failed (the CLI exits 2), so that a run that labeled nothing,
        or only part, never looks like success: it says how many failed, the first error, how to retry."""
        if self.dry_run is not None or self.rank != 0 or not self.failed:
            return
        first = f" (first error: {self.first_error})" if self.first_error else ""
        retry = "rerun the same command to retry only the failed items (finished ones are kept)"
        if self.labeled + self.skipped == 0:
            raise BackendError(f"{self.out}: nothing labeled, all {self.failed} items failed{first}; fix the "
                               f"backend, then {retry}")
        raise BackendError(f"{self.out}: {self.failed} of {self.total} items failed{first}; {retry}")


# ---- distributed helpers ---------------------------------------------------------------------------------
class _Dist:
    """Rank, world size and barriers: accelerate's PartialState when launched with several processes."""

    def __init__(self) -> None:
        self.state: Any = None
        self.rank, self.world = 0, 1
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState

            self.state = PartialState()
            self.rank, self.world = self.state.process_index, self.state.num_processes

    def barrier(self) -> None:
        """Wait for every process (no-op when alone)."""
        if self.state is not None:
            self.state.wait_for_everyone()


def part_path(out: Path, rank: int, world: int) -> Path:
    """The part file of one process."""
    return out.with_name(f"{out.name}.part-{rank}-of-{world}.jsonl")


def _part_files(out: Path) -> list[Path]:
    """Every part file next to `out` (from this or an earlier, interrupted distributed run)."""
    return sorted(out.parent.glob(f"{out.name}.part-*-of-*.jsonl"))


# ---- backends --------------------------------------------------------------------------------------------
def make_backend(config: LabelConfig, *, threads: int | None) -> Backend:
    """Construct the configured backend (imports it lazily)."""
    if config.backend == "hf":
        from llm2edge.hub.label.hf_backend import HFBackend

        return HFBackend(config.model, dtype=config.dtype, device=config.device, threads=threads,
                         max_new_tokens=config.max_new_tokens, samples=config.samples,
                         temperature=config.sample_temperature, seed=config.seed)
    if config.backend == "openai":
        if not config.model:
            raise ConfigError("--backend openai needs --model (the server's model name)")
        from llm2edge.hub.label.openai_backend import OpenAIBackend  # type: ignore[import-not-found]

        return OpenAIBackend(model=config.model, base_url=config.base_url, concurrency=config.concurrency,
                             timeout=config.timeout, max_retries=config.max_retries, samples=config.samples,
                             sample_temperature=config.sample_temperature, seed=config.seed)
    raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {config.backend!r}")


def _model_name(config: LabelConfig, backend: Backend | None) -> str:
    """The model name recorded in rows and keys."""
    return backend.model if backend is not None else llm_name(config.model)


# ---- the run ---------------------------------------------------------------------------------------------
def _records(config: LabelConfig, task: Task) -> list[Record]:
    """The input items (with the task's fields), cut to --limit."""
    records = read_records(config.data, text_col=config.text_col, id_col=config.id_col,
                           fields=task.fields)
    if config.limit is not None:
        records = records[: config.limit]
    ids = Counter(r.id for r in records)
    dupes = [i for i, n in ids.items() if n > 1]
    if dupes:
        raise DataError(f"{config.data}: id '{dupes[0]}' occurs {ids[dupes[0]]} times in column "
                        f"'{config.id_col}': ids must be unique")
    return records


def _row(rec: Record, key: str, scored: Scored, *, backend: str, model: str, task: Task, prompt_hash: str
         ) -> dict[str, Any]:
    """One labels row for an item and its backend answer."""
    row: dict[str, Any] = {"id": rec.id, "key": key, "text": rec.text, "label": None, "probs": None,
                           "confidence": None, "margin_logprob": None, "prob_source": None,
                           "backend": backend,
                           "model": model, "task": task.name, "prompt_hash": prompt_hash, "raw": scored.raw,
                           "error": scored.error, "source": "llm", "fields": dict(rec.fields)}
    if scored.error is None and task.multi_label:  # a set: llm2edge.hub.label.multilabel
        row.update(multilabel.row_fields(scored, task))
    elif scored.error is None:
        probs = scored.probs or {}
        bad = [n for n in task.label_names if n not in probs or not math.isfinite(probs[n])]
        total = sum(probs.get(n, 0.0) for n in task.label_names)
        if bad or abs(total - 1.0) > 1e-3:
            row["error"] = f"backend returned no valid distribution over the labels (got {probs})"
            return row
        label, conf, margin = margins(probs, scored.logprobs)
        row.update(label=label, probs={n: probs[n] for n in task.label_names}, confidence=conf,
                   margin_logprob=margin, prob_source=scored.prob_source)
        if scored.answers is not None:  # self-consistency: majority label, K, votes per label
            row.update(votes.row_fields(scored, task.label_names))
    return row


def _check_multi(config: LabelConfig, task: Task) -> None:
    """ConfigError for options a multi-label task does not take."""
    if config.cot:
        raise ConfigError(f"task '{task.name}' is multi-label: --cot is for single-label tasks")
    if config.calibrate and config.backend != "hf":
        raise ConfigError(f"task '{task.name}' is multi-label: --calibrate needs the hf backend (the openai "
                          "backend reads the list an answer names)")


def _check_kinds(paths: list[Path], task: Task) -> None:
    """DataError naming file and row when a labels file to resume holds single-label rows for a
    multi-label task, or the reverse."""
    from llm2edge.hub.label.store import read_rows

    for path in paths:
        if path.is_file():
            for n, row in enumerate(read_rows(path), start=1):
                multilabel.check_row_kind(row, task.multi_label, f"{path}: row {n}")


def _progress(total: int, enabled: bool) -> Any:
    """A tqdm bar on stderr (items/s and ETA), or a stand-in with the same methods."""
    from tqdm.auto import tqdm

    if not enabled:
        class _Null:
            def update(self, n: int = 1) -> None: ...
            def set_postfix_str(self, s: str) -> None: ...
            def close(self) -> None: ...
        return _Null()
    return tqdm(total=total, unit="item", desc="labeling", file=sys.stderr, dynamic_ncols=True)


def label_file(config: LabelConfig) -> LabelSummary:
    """Label every item of `config.data` (skipping finished ones) into `config.out`; see the module doc.

    The run holds an exclusive lock on `config.out` (OutputLock; rank 0 under accelerate), so a second run
    on the same file fails at once with BusyError instead of doing all the work again.
    """
    dist = _Dist()
    if config.dry_run or dist.rank != 0:
        return _label(config, dist)
    with OutputLock(config.out):
        return _label(config, dist)


def _label(config: LabelConfig, dist: _Dist) -> LabelSummary:
    """The run of label_file (under its lock)."""
    t0 = time.perf_counter()
    task = config.load_task()
    examples = examples_from_file(config.examples, task) if config.examples else None
    builder = PromptBuilder.create(task, shots=config.shots, examples=examples, cot=config.cot)
    prompt_hash = builder.prompt_hash
    yes_no = None  # multi-label on hf: one yes/no prompt per (text, label)
    if task.multi_label:
        _check_multi(config, task)
        if config.backend == "hf":
            yes_no = multilabel.yes_no_builders(builder)
            prompt_hash = digest([prompt_hash, multilabel.yes_no_material()])
    records = _records(config, task)
    out = Path(config.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    threads = resolve_threads(config.threads)
    backend: Backend | None = None
    if config.backend == "hf" or not config.dry_run:
        if dist.world > 1 and dist.rank != 0:
            dist.barrier()  # rank 0 builds caches (e.g. the GGUF conversion) first
        backend = make_backend(config, threads=threads)
        if dist.world > 1 and dist.rank == 0:
            dist.barrier()
    model = _model_name(config, backend)
    keys = [item_key(r.text, r.fields, task=task.name, prompt_hash=prompt_hash, model=model,
                     backend=config.backend, shots=config.shots, cot=config.cot, calibrate=config.calibrate,
                     sampling=(config.samples, config.sample_temperature, config.seed))
            for r in records]

    # what is already done: the merged file, then any part files (later wins)
    mine = part_path(out, dist.rank, dist.world) if dist.world > 1 else out
    repair(mine)
    _check_kinds([out, *_part_files(out)], task)
    done = latest_by_key([out, *_part_files(out)])
    finished = {k for k, row in done.items() if not row.get("error")}
    todo_idx: list[int] = []
    seen: set[str] = set()
    for i, k in enumerate(keys):
        if k in finished or k in seen:
            continue
        seen.add(k)
        todo_idx.append(i)
    skipped = len({k for k in keys if k in finished})
    shard = [i for i in todo_idx if i % dist.world == dist.rank]

    if config.dry_run:
        summary_dry = dry_run(config, builder, task, [records[i] for i in todo_idx], len(records), backend,
                               model, yes_no=yes_no)
        if backend is not None:
            backend.close()
        return LabelSummary(out=out, total=len(records), labeled=0, failed=0, skipped=skipped,
                            distribution={},
                            seconds=time.perf_counter() - t0, items_per_s=0.0, dry_run=summary_dry,
                            rank=dist.rank, world_size=dist.world)
    assert backend is not None

    cot = builder.cot_instruction
    calibrator = None
    calibrators = None
    if config.calibrate:
        from llm2edge.hub.label.contextual import Calibrator

        calibrator = Calibrator(backend, builder, task.space, cot=cot)
        if yes_no is not None:  # per label, on its yes/no pair
            calibrators = [Calibrator(backend, b, multilabel.YES_NO) for b in yes_no]  # type: ignore[arg-type]

    labeled = failed = 0
    bar = _progress(len(shard), config.progress and dist.rank == 0)
    t_label = time.perf_counter()
    try:
        with LabelWriter(mine) as writer:
            pending = shard
            for attempt in range(1 + max(0, config.retry_failed)):
                if not pending:
                    break
                if attempt:
                    bar.set_postfix_str(f"retrying {len(pending)} failed")
                # longest first: similar lengths share a batch (less padding) and memory errors come early
                order = sorted(pending, key=lambda i: -len(records[i].text))
                failed_now: list[int] = []
                for batch in chunked(order, config.batch_size):  # type: ignore[arg-type]
                    prompts: list[Prompt] = [builder.render(keys[i], records[i].text, records[i].fields)
                                             for i in batch]
                    try:
                        if yes_no is not None:
                            scored = multilabel.score_sets(backend, yes_no, [
                                (keys[i], records[i].text, records[i].fields) for i in batch], calibrators)
                        else:
                            scored = backend.label_batch(prompts, task.space, cot=cot)
                        if calibrator is not None and yes_no is None:
                            scored = [s if s.error else calibrator.apply(s, records[i].fields)
                                      for s, i in zip(scored, batch)]
                    except Llm2EdgeError as exc:
                        if labeled == 0:
                            raise  # nothing works: a configuration problem, not a flaky item
                        scored = [Scored(item_id=keys[i], error=f"{type(exc).__name__}: {exc}")
                                  for i in batch]
                    except Exception as exc:  # a bad batch must not end a long run
                        scored = [Scored(item_id=keys[i], error=f"{type(exc).__name__}: {exc}")
                                  for i in batch]
                    if len(scored) != len(batch):
                        raise BackendError(f"backend returned {len(scored)} answers for {len(batch)} prompts")
                    for i, s in zip(batch, scored):
                        row = _row(records[i], keys[i], s, backend=config.backend, model=model, task=task,
                                   prompt_hash=prompt_hash)
                        writer.append(row)
                        if row["error"]:
                            failed_now.append(i)
                        else:
                            labeled += 1
                        if attempt == 0:
                            bar.update(1)
                pending = failed_now
            failed = len(pending)
    except KeyboardInterrupt:  # every finished row is on disk: the rerun skips it
        bar.close()
        raise Interrupted(f"interrupted: {skipped + labeled:,} of {len(records):,} items labeled in {mine}; "
                          "rerun the same command to continue (finished items are skipped)") from None
    finally:
        bar.close()
        backend.close()
    seconds_label = time.perf_counter() - t_label

    # merge (rank 0, after everyone finished) and compact to one row per input item, in input order
    dist.barrier()
    csv_path = None
    first_error: str | None = None
    distribution: Counter[str] = Counter()
    if dist.rank == 0:
        parts = _part_files(out)
        latest = latest_by_key([out, *parts])
        rows = []
        for rec, k in zip(records, keys):
            row = latest.get(k)
            if row is not None:
                rows.append({**row, "id": rec.id, "fields": dict(rec.fields)})
                if row.get("label") is not None and not row.get("error"):
                    label = row["label"]
                    distribution.update(label if isinstance(label, list) else [label])
        wanted = set(keys)
        stale = [row for k, row in latest.items() if k not in wanted]
        if stale:  # rows of other inputs/settings are kept aside, never silently lost
            with LabelWriter(out.with_name(out.name + ".dropped.jsonl")) as w:
                for row in stale:
                    w.append(row)
        write_atomic(out, rows)
        for p in parts:
            p.unlink(missing_ok=True)
        if config.fmt == "csv":
            csv_path = write_csv(rows, out.with_suffix(".csv"), task.label_names)
        failed = sum(1 for r in rows if r.get("error"))
        first_error = next((str(r["error"])[:200] for r in rows if r.get("error")), None)
        if dist.world > 1:  # every process's new labels, not just this one's
            labeled = sum(1 for r in rows if not r.get("error")) - skipped
    dist.barrier()
    seconds = time.perf_counter() - t0
    return LabelSummary(out=out, total=len(records), labeled=labeled, failed=failed, skipped=skipped,
                        distribution=dict(distribution), seconds=seconds,
                        items_per_s=(labeled + failed) / seconds_label if seconds_label > 0 else 0.0,
                        csv=csv_path, rank=dist.rank, world_size=dist.world, first_error=first_error,
                        extra={"threads": threads, "prompt_hash": prompt_hash, "model": model})
