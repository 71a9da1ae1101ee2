"""Scale-out throughput: one folder of Parquet parts classified by single-process predict, Ray Data (1 and 2
workers) and Spark (local[1], local[2]) on the same machine, in one run. Not part of the CI gate subset.

    .venv/bin/python bench/scaleout.py [--rows 100000] [--files 8] [--minilm BUNDLE|none] [--minilm-rows 4000]
                                       [--rounds 1]

Rows: the shipped example's texts (mixed lengths) repeated, every part with an id column. Bundles: the tiny
real ONNX model of the tests (embedding + mean pool + linear; tokenization dominates) and, when one is
found, a real MiniLM int8 bundle (--minilm, default: the newest .bench-cache/*/int8 that bench/ builds).
Each configuration runs in its own process; its time is the whole job on an engine that is already up
(read, load the bundle in every worker, classify, write Parquet); the engine's own start (ray.init, the
Spark JVM) is listed apart. CPU ms per item counts every process of the run (this one and its
descendants: Ray's raylet and workers, Spark's JVM and Python workers) from the job's start to its end, so
it shows what an engine costs on top of the model whatever else the machine is doing; items/s on a
shared machine also depends on the share of the cores the run gets. With --rounds N every configuration
runs N times, interleaved (a shared machine's load drifts), and the table keeps each one's best. Writes
bench/out/scaleout.{json,md} and prints the table with the two targets: 2 Ray workers >= 1.7x one worker,
and within 15% of the best single-process run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "out"
#: name -> (engine, setting, threads per worker, tokenizer thread pool)
CONFIGS = {
    "local 1 thread": ("local", 1, 1, False),
    "local 2 threads": ("local", 1, 2, False),
    "local 2 threads + tokenizer pool": ("local", 1, 2, True),
    "ray 1 worker": ("ray", 1, 1, False),
    "ray 2 workers": ("ray", 2, 1, False),
    "spark local[1]": ("spark", 1, 1, False),
    "spark local[2]": ("spark", 2, 1, False),
}


def _load_avg() -> str:
    """The 1/5/15-minute load averages."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _edge_fixtures():
    """tests/edge/conftest.py as a module (the tiny bundle builder)."""
    spec = importlib.util.spec_from_file_location("_edge_conftest", REPO / "tests" / "edge" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_parts(folder: Path, n: int, files: int) -> None:
    """`n` example texts in `files` Parquet parts, each with an id column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from llm2edge.records import read_records

    pool = [r.text for s in ("train", "test") for r in read_records(REPO / "examples" / "reddit_humor" /
                                                                      f"{s}.csv")]
    folder.mkdir(parents=True)
    for k in range(files):
        rows = range(k * n // files, (k + 1) * n // files)
        pq.write_table(pa.table({"id": [f"r{i}" for i in rows], "text": [pool[i % len(pool)] for i in rows]}),
                       folder / f"part-{k:03d}.parquet")


def cpu_snapshot() -> dict[int, float]:
    """CPU seconds (user + system) so far of this process and each of its live descendants, by pid."""
    import psutil

    me = psutil.Process()
    out = {}
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            out[proc.pid] = times.user + times.system
        except psutil.Error:  # it ended meanwhile
            pass
    return out


class CpuMeter:
    """CPU seconds of this process tree during a block: sampled every 0.2 s from a thread, so a worker
    that ends before the block does (Ray Data stops its actors when their operator is done) still counts,
    up to its last sample."""

    def __init__(self) -> None:
        import threading

        self.before = cpu_snapshot()
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.last.update(cpu_snapshot())

    def stop(self) -> float:
        """Stop sampling; the CPU seconds used since the meter started."""
        self._stop.set()
        self._thread.join()
        self.last.update(cpu_snapshot())
        return sum(now - self.before.get(pid, 0.0) for pid, now in self.last.items())


def child(spec: dict) -> dict:
    """Run one configuration in this process; returns its seconds (job), setup seconds (engine start) and
    the CPU seconds of the whole process tree during the job."""
    engine, setting, threads = spec["engine"], spec["setting"], spec["threads"]
    out, setup = Path(spec["out"]), 0.0
    if engine == "spark":
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        t0 = time.perf_counter()
        from pyspark.sql import SparkSession

        from llm2edge.pipeline.spark_engine import predict_udf

        spark = (SparkSession.builder.master(f"local[{setting}]").config("spark.ui.enabled", "false")
                 .config("spark.driver.host", "127.0.0.1").config("spark.task.cpus", "1").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        setup = time.perf_counter() - t0
        meter, t0 = CpuMeter(), time.perf_counter()
        df = spark.read.parquet(spec["input"])
        classify = predict_udf(spec["bundle"], batch_size=spec["rows_per_block"], threads=threads)
        df.withColumn("pred", classify("text")).select("id", "pred.*").write.parquet(str(out))
        seconds, cpu = time.perf_counter() - t0, meter.stop()
        rows = spark.read.parquet(str(out)).count()
        spark.stop()
        return {"seconds": seconds, "setup": setup, "rows": rows, "cpu": cpu}
    from llm2edge.pipeline.folders import PredictJob, run_job

    job = PredictJob(bundle=Path(spec["bundle"]), inputs=spec["input"], output=out, threads=threads,
                     engine=engine, workers=setting if engine == "ray" else None, rows=spec["rows_per_block"],
                     batch_size=spec["batch"])
    if engine == "ray":
        import logging

        from llm2edge.pipeline import ray_engine

        t0 = time.perf_counter()
        ray_engine.ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
                            log_to_driver=False)
        setup = time.perf_counter() - t0
    meter, t0 = CpuMeter(), time.perf_counter()
    summary = run_job(job)
    seconds, cpu = time.perf_counter() - t0, meter.stop()
    return {"seconds": seconds, "setup": setup, "rows": summary.rows, "cpu": cpu}


def run_config(name: str, bundle: Path, data: Path, work: Path, batch: int) -> dict:
    """One configuration in a fresh process; its result with items/s."""
    engine, setting, threads, pool = CONFIGS[name]
    spec = {"engine": engine, "setting": setting, "threads": threads, "bundle": str(bundle), "batch": batch,
            "input": str(data), "out": str(work / name.replace(" ", "_").replace("[", "").replace("]", "")),
            "rows_per_block": 2048}
    shutil.rmtree(spec["out"], ignore_errors=True)  # the previous round's parts
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "true" if pool else "false",
           "OMP_NUM_THREADS": str(threads), "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                          text=True, env=env, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(lines[-1])
    result["items_per_s"] = result["rows"] / result["seconds"]
    result["cpu_ms_per_item"] = 1000 * result["cpu"] / result["rows"]
    return result


def markdown(results: dict[str, dict[str, dict]], meta: dict) -> str:
    """The table (items/s per bundle and configuration) and the two target ratios."""
    bundles = list(results)
    lines = [f"| configuration | {' | '.join(f'{b}: items/s (s), CPU ms/item' for b in bundles)} "
             "| engine start (s) |", "|---|" + "---|" * len(bundles) + "---|"]
    for name in CONFIGS:
        cells = [f"{results[b][name]['items_per_s']:,.0f} ({results[b][name]['seconds']:.1f}), "
                 f"{results[b][name]['cpu_ms_per_item']:.2f}" if name in results[b] else "-" for b in bundles]
        setup = max(results[b].get(name, {}).get("setup", 0.0) for b in bundles)
        lines.append(f"| {name} | {' | '.join(cells)} | {setup:.1f} |" if setup else
                     f"| {name} | {' | '.join(cells)} | - |")
    lines.append("")
    for b in bundles:
        r = results[b]
        best = max(v["items_per_s"] for k, v in r.items() if k.startswith("local"))
        scale = r["ray 2 workers"]["items_per_s"] / r["ray 1 worker"]["items_per_s"]
        share = r["ray 2 workers"]["items_per_s"] / best
        lines.append(f"- {b}: ray 2 workers / 1 worker = {scale:.2f}x (target >= 1.7); ray 2 workers / best "
                     f"single process = {share:.2f} (target >= 0.85)")
    lines.append(f"- rows: {meta['rows']}; load average before {meta['load_before']}, "
                 f"after {meta['load_after']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the tiny bundle")
    parser.add_argument("--files", type=int, default=8, help="Parquet parts")
    parser.add_argument("--minilm", default=None, help="a real MiniLM int8 bundle, or none")
    parser.add_argument("--minilm-rows", type=int, default=4000, help="rows for the MiniLM bundle")
    parser.add_argument("--only", default=None, help="comma-separated configuration names")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every configuration (best kept)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return
    names = [n.strip() for n in args.only.split(",")] if args.only else list(CONFIGS)
    minilm = args.minilm
    if minilm is None:
        found = sorted((REPO / ".bench-cache").glob("*/int8/manifest.json"), key=lambda p: p.stat().st_mtime)
        minilm = str(found[-1].parent) if found else "none"
    work = Path(tempfile.mkdtemp(prefix="l2e-scaleout-"))
    meta = {"load_before": _load_avg(), "rows": {}, "rounds": args.rounds}
    try:
        bundles = {"tiny": (work / "tiny", args.rows)}
        _edge_fixtures().build_bundle(work / "tiny")
        if minilm != "none":
            shutil.copytree(minilm, work / "minilm")  # a stable copy: the cache may be rebuilt meanwhile
            bundles["MiniLM int8"] = (work / "minilm", args.minilm_rows)
        results: dict[str, dict[str, dict]] = {}
        for label, (bundle, n) in bundles.items():
            data = work / f"data-{label.split()[0]}"
            write_parts(data, n, args.files)
            meta["rows"][label] = n
            results[label] = {}
            for round_ in range(args.rounds):
                for name in names:
                    r = run_config(name, bundle, data, work / f"out-{label.split()[0]}", batch=32)
                    r["runs"] = [*results[label].get(name, {}).get("runs", []), round(r["items_per_s"], 1)]
                    if r["items_per_s"] >= results[label].get(name, {}).get("items_per_s", 0.0):
                        results[label][name] = r
                    results[label][name]["runs"] = r["runs"]
                    print(f"{label:12s} {name:34s} {r['items_per_s']:9,.0f} items/s  {r['seconds']:6.1f} s  "
                          f"{r['cpu_ms_per_item']:6.2f} CPU ms/item  (engine start {r['setup']:.1f} s, "
                          f"round {round_ + 1})", flush=True)
        meta["load_after"] = _load_avg()
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "scaleout.json").write_text(json.dumps({"results": results, **meta}, indent=2))
        if set(names) == set(CONFIGS):
            table = markdown(results, meta)
            (OUT / "scaleout.md").write_text(table)
            print(table)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
