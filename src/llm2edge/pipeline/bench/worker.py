"""The benchmark worker: one system per process, and the parent's handle on it (`Worker`).

The worker runs as `python -m llm2edge.pipeline.bench.worker SPEC_JSON TEXTS_FILE`: it loads the
system (`runners.build_runner`) with its thread pools pinned (`worker_env`), then answers one JSON line
per request on its stdin: `run K` (classify batch K, reply its seconds), `all` (every batch once), `rss`
(peak resident memory), `quit`. The first reply is `{"ready": true, "load_s": ..., "batches": ...}` or
`{"error": ...}`. The parent times the round trip; the pipe costs ~0.05 ms, shown by the `noop` system.
Anything a library prints goes to stderr (the worker's log), never into the protocol.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm2edge.errors import BackendError
from llm2edge.pipeline.bench.runners import build_runner
from llm2edge.pipeline.bench.spec import SystemSpec

#: The module a worker process runs (`python -m ...`).
WORKER_MODULE = "llm2edge.pipeline.bench.worker"


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (VmHWM from /proc, else getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def worker_main(argv: Sequence[str]) -> int:
    """Worker process: load the system, say ready, then serve run/all/rss/quit requests on stdin."""
    wants_help = bool(argv) and argv[0] in ("-h", "--help")
    if wants_help or len(argv) != 2:
        print(f"usage: python -m {WORKER_MODULE} SPEC_JSON TEXTS_FILE\n\n" + (__doc__ or "").strip(),
              file=sys.stderr)
        return 0 if wants_help else 2
    spec = SystemSpec.from_json(argv[0])
    texts = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol

    def send(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    t0 = time.perf_counter()
    try:
        run = build_runner(spec)
    except Exception as exc:
        send({"error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
        return 1
    b = spec.per_call
    batches = [texts[i:i + b] for i in range(0, max(len(texts) - b + 1, 1), b)]
    send({"ready": True, "load_s": time.perf_counter() - t0, "batches": len(batches)})
    for line in sys.stdin:
        cmd, *args = line.split() or [""]
        try:
            if cmd == "run":
                t = time.perf_counter()
                run(batches[int(args[0]) % len(batches)])
                send({"s": time.perf_counter() - t})
            elif cmd == "all":
                t = time.perf_counter()
                for chunk in batches:
                    run(chunk)
                send({"s": time.perf_counter() - t, "items": sum(len(c) for c in batches)})
            elif cmd == "rss":
                send({"rss_mb": peak_rss_mb()})
            elif cmd == "quit":
                break
            else:
                send({"error": f"unknown command {cmd!r}"})
        except Exception as exc:
            send({"error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
    return 0


def worker_env(threads: int) -> dict[str, str]:
    """The environment of a worker: thread pools pinned to `threads`, offline, no tokenizer threads."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


class Worker:
    """A system loaded in its own process; `run()` classifies the next batch and returns its seconds."""

    def __init__(self, spec: SystemSpec, texts: Sequence[str], *, log_dir: str | Path | None = None) -> None:
        self.spec = spec
        self.texts = list(texts)
        self.log_dir = Path(log_dir) if log_dir else None
        self.load_s: float | None = None
        self.batches = 0
        self._next = 0
        self._proc: subprocess.Popen[str] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._log: Path | None = None

    def __enter__(self) -> Worker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Worker:
        """Spawn the worker and wait until its system is loaded (BackendError if it fails)."""
        self._tmp = tempfile.TemporaryDirectory(prefix="llm2edge-bench-")
        tmp = Path(self._tmp.name)
        texts_file = tmp / "texts.json"
        texts_file.write_text(json.dumps(self.texts, ensure_ascii=False), encoding="utf-8")
        log_dir = self.log_dir or tmp
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = log_dir / f"worker-{self.spec.name.replace(' ', '_').replace('/', '_')}.log"
        with open(self._log, "w", encoding="utf-8") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, self.spec.to_json(), str(texts_file)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
                env=worker_env(self.spec.threads))
        reply = self._read()
        self.load_s = float(reply["load_s"])
        self.batches = int(reply["batches"])
        return self

    def _read(self) -> dict[str, Any]:
        """The worker's next reply; a dead worker or an error reply becomes a BackendError."""
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(30)
            tail = self.log_tail()
            raise BackendError(f"benchmark worker '{self.spec.name}' exited with {self._proc.returncode}"
                               + (f": {tail}" if tail else ""))
        reply = json.loads(line)
        if "error" in reply:
            raise BackendError(f"benchmark worker '{self.spec.name}': {reply['error']}")
        return reply

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return self._read()

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the worker's stderr, joined into one line."""
        if self._log is None or not self._log.is_file():
            return ""
        text = self._log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " | ".join(t.strip() for t in text[-lines:])

    def run(self, index: int | None = None) -> float:
        """Classify batch `index` (default: the next one, cycling); the worker's own seconds for it."""
        k = self._next if index is None else index
        self._next = k + 1
        return float(self._ask(f"run {k}")["s"])

    def rewind(self) -> None:
        """Make the next `run()` classify the first batch again."""
        self._next = 0

    def run_all(self) -> tuple[float, int]:
        """Classify every batch once: (seconds, items)."""
        reply = self._ask("all")
        return float(reply["s"]), int(reply["items"])

    def peak_rss_mb(self) -> float:
        """The worker process's peak resident memory so far, in MiB."""
        return float(self._ask("rss")["rss_mb"])

    def close(self) -> None:
        """Stop the worker and remove its temporary files (the log stays when log_dir was given)."""
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                if proc.stdin:
                    proc.stdin.write("quit\n")
                    proc.stdin.close()
                proc.wait(15)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait(5)
            if proc.stdout:
                proc.stdout.close()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
