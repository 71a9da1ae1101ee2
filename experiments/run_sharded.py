"""Run an experiment grid as parallel shards, one process per (data set, labeler) pair, on one machine.

For grids too slow for one process, such as the fine-tuned recorded-teacher grid (960 fine-tunes) on one
GPU box with many cores:

    python experiments/run_sharded.py --config experiments/recorded_teachers.toml --out runs/rt_ft \
        --only students=minilm --jobs 16 [--deadline 3600]

Each shard is `llm2edge experiment` restricted to one pair (`--only datasets=D --only labelers=L` plus the
`--only` given here), writing its own folder OUT/shards/D__L (own labels and embedding caches: nothing two
processes write to), its log beside it. A shard stopped by --deadline (or a crash) resumes where it stopped
when the same command runs again: finished runs are cached by their result.json. Runs already in OUT/runs
(an earlier merge, or result.json + run_key.txt restored from an archive) are copied into a shard that lacks
them before it starts, so they are not redone either. Then every finished run
(result.json, run_key.txt) is copied into OUT/runs, so `llm2edge experiment --config C --out OUT` with the
same --only finds every run cached and only writes results.csv/md/png (this script does that last step
when every run finished; else it says which pairs are incomplete). Progress: one line per minute.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: What a finished run leaves that the aggregating pass needs (the model folders are removed anyway).
RUN_FILES = ("result.json", "run_key.txt")


def parse_only(items: list[str]) -> dict[str, list[str]]:
    """--only KEY=a,b items as the CLI reads them."""
    parts: dict[str, list[str]] = {}
    for item in items:
        key, _, names = item.partition("=")
        parts[key.strip()] = [n.strip() for n in names.split(",") if n.strip()]
    return parts


def shard_command(python: str, config: Path, out: Path, dataset: str, labeler: str,
                  only: dict[str, list[str]], *, quick: bool = False) -> list[str]:
    """The `llm2edge experiment` command of one shard."""
    cmd = [python, "-m", "llm2edge", "experiment", "--config", str(config), "--out", str(out),
           "--only", f"datasets={dataset}", "--only", f"labelers={labeler}", *(["--quick"] if quick else [])]
    for key, names in only.items():
        if key not in ("datasets", "labelers"):
            cmd += ["--only", f"{key}={','.join(names)}"]
    return cmd


def finished_runs(folder: Path) -> int:
    """result.json files under folder/runs."""
    return sum(1 for _ in (folder / "runs").rglob("result.json")) if (folder / "runs").is_dir() else 0


def copy_run(result: Path, target: Path) -> None:
    """Copy one finished run's RUN_FILES (result.json is in folder result.parent) into folder target."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if (result.parent / name).is_file():
            shutil.copy2(result.parent / name, target / name)


def seed_shard(out: Path, folder: Path, dataset: str, labeler: str) -> int:
    """Copy the pair's finished runs found in out/runs (an earlier merge, or runs restored from an archive)
    into the shard folder that lacks them, so the shard finds them cached; the number copied."""
    source = out / "runs" / dataset / labeler
    if not source.is_dir():
        return 0
    seeded = 0
    for result in source.rglob("result.json"):
        target = folder / "runs" / result.parent.relative_to(out / "runs")
        if not (target / "result.json").is_file():
            copy_run(result, target)
            seeded += 1
    return seeded


def merge_runs(shards: Path, out: Path) -> int:
    """Copy every finished run of every shard into out/runs (same relative paths); the number copied."""
    copied = 0
    for runs in sorted(p / "runs" for p in shards.iterdir() if (p / "runs").is_dir()):
        for result in runs.rglob("result.json"):
            copy_run(result, out / "runs" / result.parent.relative_to(runs))
            copied += 1
    return copied


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="the config's [quick] grid")
    parser.add_argument("--only", action="append", default=[], help="as `llm2edge experiment --only`")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="shards at a time")
    parser.add_argument("--deadline", type=float, help="stop every shard after this many seconds")
    parser.add_argument("--python", default=sys.executable, help="the Python that runs llm2edge")
    args = parser.parse_args()

    from llm2edge.pipeline.experiment.config import load_config

    only = parse_only(args.only)
    config = load_config(args.config, quick=args.quick, only=only or None)
    pairs = [(d.name, lab.name) for d in config.datasets for lab in config.labelers]
    per_pair = len(config.students) * len(config.interventions) * max(1, config.folds)
    total = per_pair * len(pairs)
    shards = args.out / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    waiting = list(pairs)
    running: dict[tuple[str, str], tuple[subprocess.Popen, object]] = {}
    codes: dict[tuple[str, str], int] = {}
    t0 = last = time.monotonic()
    print(f"run_sharded: {len(pairs)} pairs x {per_pair} runs = {total} runs, {args.jobs} at a time",
          flush=True)
    while waiting or running:
        late = args.deadline is not None and time.monotonic() - t0 > args.deadline
        while waiting and len(running) < args.jobs and not late:
            pair = waiting.pop(0)
            folder = shards / f"{pair[0]}__{pair[1]}"
            seeded = seed_shard(args.out, folder, *pair)
            if seeded:
                print(f"run_sharded: {pair[0]}__{pair[1]}: {seeded} finished runs seeded from "
                      f"{args.out / 'runs'}", flush=True)
            log = (shards / f"{pair[0]}__{pair[1]}.log").open("a", encoding="utf-8")
            cmd = shard_command(args.python, args.config, folder, *pair, only, quick=args.quick)
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
            running[pair] = (proc, log)
        for pair, (proc, log) in list(running.items()):
            if late and proc.poll() is None:
                proc.terminate()
            if proc.poll() is not None:
                codes[pair] = proc.returncode
                log.close()
                del running[pair]
        if late:
            waiting.clear()
        if time.monotonic() - last >= 60 or not (waiting or running):
            last = time.monotonic()
            done = sum(finished_runs(shards / f"{d}__{lab}") for d, lab in pairs)
            print(f"run_sharded: {time.monotonic() - t0:6.0f} s  {done}/{total} runs  "
                  f"{len(running)} running, {len(waiting)} waiting", flush=True)
        time.sleep(1)
    copied = merge_runs(shards, args.out)
    failed = {f"{d}__{lab}": c for (d, lab), c in codes.items() if c != 0}
    print(f"run_sharded: {copied} finished runs copied into {args.out / 'runs'}; "
          f"{time.monotonic() - t0:.0f} s", flush=True)
    if failed or copied < total:
        print(f"run_sharded: incomplete ({copied}/{total} runs); exit codes {failed or 'all 0'}; logs in "
              f"{shards}. Run the same command again to finish.", flush=True)
        return 1
    cmd = [args.python, "-m", "llm2edge", "experiment", "--config", str(args.config), "--out", str(args.out),
           *(["--quick"] if args.quick else [])]
    for key, names in only.items():
        cmd += ["--only", f"{key}={','.join(names)}"]
    return subprocess.call(cmd, env=env)


if __name__ == "__main__":
    sys.exit(main())
