"""Start-up: `llm2edge predict --bundle B "text"` (checksums verified) against the floor (bench/floor.py).

Each run is a whole process, from exec to exit, after it printed its one label: CPU time (user + sys) and
peak RSS (ru_maxrss) come from `os.wait4` on that child alone. The two commands alternate (floor first in
even rounds, predict first in odd ones) so load drifts hit both alike; medians of `runs` rounds after
`warmup` unmeasured rounds (the page cache and the .pyc files are warm, as on any second start). Both run
at the same onnxruntime thread count (`--threads N` / LLM2EDGE_FLOOR_THREADS=N) and must print the same
label. Run it as a small process of its own: Linux keeps a process's peak RSS across exec, so children
forked from a big parent (a pytest with torch loaded) would report the parent's peak.

    python bench/startup.py --bundle B [--runs 9] [--threads 1] [--json out.json]

bench/test_startup.py runs it on the bench bundle; bench/gates.py gates the two ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from jsonout import write_result

FLOOR = Path(__file__).with_name("floor.py")
#: The text both sides classify.
TEXT = "I told my wife she was drawing her eyebrows too high. She looked surprised."


def child_cost(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(CPU seconds user+sys, peak RSS MiB, stdout) of one whole child process; raises if it fails."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.stdout.read(), proc.stderr.read()  # small outputs: read, then reap with its rusage
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode()


def commands(bundle: Path, text: str, threads: int, python: str = sys.executable) -> dict[str, list[str]]:
    """The floor and the `llm2edge predict` command lines (the console script next to `python`)."""
    exe = Path(python).with_name("llm2edge")
    cli = [str(exe)] if exe.is_file() else [python, "-m", "llm2edge"]
    return {"floor": [python, str(FLOOR), str(bundle), text],
            "predict": [*cli, "predict", "--bundle", str(bundle), "--threads", str(threads), text]}


def measure(bundle: str | Path, *, runs: int = 9, warmup: int = 2, threads: int = 1, text: str = TEXT,
            python: str = sys.executable) -> dict:
    """Medians of `runs` interleaved rounds: {floor: {...}, predict: {...}, cpu_ratio, rss_ratio, ...}."""
    cmds = commands(Path(bundle), text, threads, python)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # users' starts use .pyc
    env.update(LLM2EDGE_FLOOR_THREADS=str(threads), TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cmds}
    labels: dict[str, set[str]] = {name: set() for name in cmds}
    for n in range(warmup + runs):
        order = list(cmds) if n % 2 == 0 else list(reversed(cmds))
        for name in order:
            cpu, rss, out = child_cost(cmds[name], env)
            label = out.strip() if name == "floor" else json.loads(out)["label"]
            labels[name].add(label)
            if n >= warmup:
                samples[name].append((cpu, rss))
    if labels["floor"] != labels["predict"] or len(labels["floor"]) != 1:
        raise RuntimeError(f"floor and predict disagree on the label: {labels}")
    result: dict = {"runs": runs, "threads": threads, "text": text, "bundle": str(bundle),
                    "load_avg": [round(x, 2) for x in os.getloadavg()]}
    for name, rows in samples.items():
        result[name] = {"cpu_s": statistics.median(c for c, _ in rows),
                        "rss_mb": statistics.median(r for _, r in rows),
                        "cpu_all": [round(c, 4) for c, _ in rows], "rss_all": [round(r, 1) for _, r in rows],
                        "cmd": " ".join(cmds[name][:2] + ["..."])}
    result["cpu_ratio"] = result["predict"]["cpu_s"] / result["floor"]["cpu_s"]
    result["rss_ratio"] = result["predict"]["rss_mb"] / result["floor"]["rss_mb"]
    return result


def table(result: dict) -> str:
    """A markdown table of a `measure` result."""
    lines = ["| process start -> first label | CPU s (user+sys) | peak RSS MiB |", "|---|---:|---:|"]
    for name, what in (("floor", "floor (bench/floor.py: onnxruntime + tokenizers + numpy)"),
                       ("predict", "`llm2edge predict --bundle B TEXT` (checksums verified)")):
        lines.append(f"| {what} | {result[name]['cpu_s']:.3f} | {result[name]['rss_mb']:.1f} |")
    lines.append(f"| predict / floor | {result['cpu_ratio']:.3f}x | {result['rss_ratio']:.3f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Measure, print the table, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    result = measure(args.bundle, runs=args.runs, warmup=args.warmup, threads=args.threads)
    print(table(result))
    print(f"load average {result['load_avg']}, {args.runs} runs each, threads {args.threads}")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
