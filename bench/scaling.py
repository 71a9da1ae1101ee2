"""Scaling: `llm2edge predict` on a file at --threads 1 and 2 (items/s, same output), and a long run's memory.

    python bench/scaling.py threads --bundle B [--rows 20000] [--rounds 2]   # items/s at 1 and 2 threads
    python bench/scaling.py long --bundle B [--rows 1000000]                  # peak RSS vs a 10k-row run
    python bench/scaling.py designs --bundle B [--rows 4000]                  # how to spend 2 threads

Rows are the shipped example's texts (examples/reddit_humor, train + test) cycled to the size asked, one
CSV with an id column; `long` uses their first 60 characters ("short rows"). Every run is a whole
`llm2edge predict --input F --output O` process: items/s = rows / process wall time (start-up included),
peak RSS and CPU time from `os.wait4`. `threads` alternates the two thread counts (`rounds` each, medians)
and checks that every output file is byte-identical. `designs` runs the model the three ways two threads
can be spent, in one process each: intra-op threads inside one call, one session run from two threads
(what the edge does, edge/workers.py), one session per thread. Results: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path

from jsonout import write_result

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "reddit_humor"


def example_texts(chars: int | None = None) -> list[str]:
    """The example's texts (train then test), one line each, optionally cut to `chars` characters."""
    texts = []
    for split in ("train", "test"):
        with (EXAMPLE / f"{split}.csv").open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                text = " ".join(row["text"].split())
                if text:
                    texts.append(text[:chars] if chars else text)
    return texts


def write_rows(path: Path, n: int, texts: list[str]) -> Path:
    """A CSV of n rows (id, text), cycling through `texts`."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text"])
        for i, text in enumerate(islice(cycle(texts), n)):
            writer.writerow([f"r{i}", text])
    return path


def predict_run(bundle: Path, rows_file: Path, out: Path, threads: int, rows: int) -> dict:
    """One whole `llm2edge predict` process: rows/s (wall), CPU s, peak RSS MiB, output digest."""
    exe = Path(sys.executable).with_name("llm2edge")
    cli = [str(exe)] if exe.is_file() else [sys.executable, "-m", "llm2edge"]
    cmd = [*cli, "predict", "--bundle", str(bundle), "--input", str(rows_file), "--output", str(out),
           "--threads", str(threads), "--no-progress"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err.decode(errors='replace')[-800:]}")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()[:16] if out.stat().st_size < 1 << 30 else ""
    return {"threads": threads, "rows": rows, "wall_s": round(wall, 2), "rows_per_s": round(rows / wall, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "rss_mb": round(usage.ru_maxrss / 1024, 1),
            "digest": digest, "load_avg": [round(x, 2) for x in os.getloadavg()]}


def threads_scaling(bundle: Path, rows: int = 20_000, rounds: int = 2, work: Path | None = None) -> dict:
    """items/s of predict at --threads 1 and 2, alternating, `rounds` each; outputs must be identical."""
    with tempfile.TemporaryDirectory(prefix="llm2edge-scaling-") as tmp:
        folder = work or Path(tmp)
        data = write_rows(folder / f"rows{rows}.csv", rows, example_texts())
        runs: list[dict] = []
        for n in range(rounds):
            for threads in ((1, 2) if n % 2 == 0 else (2, 1)):
                runs.append(predict_run(bundle, data, folder / f"out-t{threads}.jsonl", threads, rows))
    digests = {r["digest"] for r in runs}
    if len(digests) != 1:
        raise RuntimeError(f"outputs differ between thread counts: {runs}")
    rate = {t: statistics.median(r["rows_per_s"] for r in runs if r["threads"] == t) for t in (1, 2)}
    return {"rows": rows, "rounds": rounds, "runs": runs, "rows_per_s": rate, "speedup": rate[2] / rate[1],
            "identical": True}


def long_run(bundle: Path, rows: int = 1_000_000, small: int = 10_000, threads: int = 2,
             work: Path | None = None) -> dict:
    """Peak RSS of predict on `rows` short rows against a `small`-row run, and the long run's rows/s."""
    with tempfile.TemporaryDirectory(prefix="llm2edge-long-") as tmp:
        folder = work or Path(tmp)
        texts = example_texts(chars=60)
        short = predict_run(bundle, write_rows(folder / "small.csv", small, texts), folder / "small.jsonl",
                            threads, small)
        big_file = write_rows(folder / "long.csv", rows, texts)
        big = predict_run(bundle, big_file, folder / "long.jsonl", threads, rows)
        with (folder / "long.jsonl").open("rb") as handle:
            lines = sum(1 for _ in handle)
    if lines != rows:
        raise RuntimeError(f"long run wrote {lines} rows, expected {rows}")
    return {"small": short, "long": big, "rss_ratio": big["rss_mb"] / short["rss_mb"]}


def designs(bundle: Path, rows: int = 4000) -> dict:
    """rows/s of the model alone (tokenized once, one text per call, length-sorted) for each way to spend
    threads: 1 thread; intra-op 2; one session run from 2 threads (edge); one session per thread."""
    code = r"""
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
from llm2edge.edge.session import session_options
bundle, mode, texts = sys.argv[1], sys.argv[2], json.load(sys.stdin)
tok = Tokenizer.from_file(bundle + "/tokenizer.json"); tok.no_padding()
tok.enable_truncation(max_length=json.load(open(bundle + "/manifest.json"))["max_length"])
def session(intra):
    return ort.InferenceSession(bundle + "/model.onnx", session_options(intra),
                                providers=["CPUExecutionProvider"])
encs = tok.encode_batch(texts); order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
def rows(s, idx):
    names = [i.name for i in s.get_inputs()]
    for i in idx:
        ids = np.array([encs[i].ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        s.run(None, {n: feed[n] for n in names})
sessions = {"1 thread": [session(1)], "intra-op 2": [session(2)], "1 session, 2 workers": [session(1)] * 2,
            "2 sessions": [session(1), session(1)]}[mode]
rows(sessions[0], order[:50])
t = time.perf_counter()
with ThreadPoolExecutor(len(sessions)) as pool:
    list(pool.map(lambda k: rows(sessions[k], order[k::len(sessions)]), range(len(sessions))))
print(len(texts) / (time.perf_counter() - t))
"""
    texts = list(islice(cycle(example_texts()), rows))
    out = {}
    for mode in ("1 thread", "intra-op 2", "1 session, 2 workers", "2 sessions"):
        proc = subprocess.run([sys.executable, "-c", code, str(bundle), mode], input=json.dumps(texts),
                              capture_output=True, text=True, check=True,
                              env={**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
        out[mode] = round(float(proc.stdout.strip()), 1)
    return {"rows": rows, "rows_per_s": out, "load_avg": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    """Run one measurement and print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("threads", "long", "designs"))
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work", type=Path, default=None, help="Keep the data and outputs here.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    if args.what == "threads":
        result = threads_scaling(args.bundle, args.rows or 20_000, args.rounds, args.work)
    elif args.what == "long":
        result = long_run(args.bundle, args.rows or 1_000_000, work=args.work)
    else:
        result = designs(args.bundle, args.rows or 4000)
    print(json.dumps(result, indent=2))
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
