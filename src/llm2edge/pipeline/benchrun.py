"""Per-item latency of an edge bundle against torch eager, optimum's ORTModel and the labeling LLM.

Every system runs in its own worker process (`python -m llm2edge.pipeline.benchrun SPEC TEXTS`): one
runtime per process, its thread count fixed (OMP/MKL variables, torch and onnxruntime settings),
nothing else competing
for the pool. The parent sends "run K" over a pipe and times the round trip; the pipe costs ~0.05 ms, shown by
the `noop` system. `llm2edge bench` (run_bench below) and the pytest-benchmark suite in bench/ both drive
these workers, so both measure the same thing.

This module imports only the standard library at the top: the edge rows work on a base install (no torch).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm2edge.errors import BackendError, DataError
from llm2edge.hub.label.server import MODEL_ALIAS, llama_server, server_available

#: What a worker can run.
KINDS = ("noop", "edge", "torch", "ortmodel", "llm-score", "llm-generate", "llm-server")
#: Texts per call of the "stream" rows: a chunk the edge sorts by length and splits into batches, as
#: `llm2edge predict` does with a file.
STREAM_CHUNK = 256
#: Row name the ratios are taken against.
REFERENCE = "edge int8 b1"
#: Texts used when no --texts file is given: mixed lengths, written for llm2edge.
DEFAULT_TEXTS = (
    "Great product, works as described.",
    "The delivery was late and the box was damaged, but support replaced it within two days.",
    "I would not recommend this to anyone.",
    "After three weeks of daily use the battery still lasts a full day, the screen is bright enough "
    "outdoors, and the only thing I miss is a headphone jack.",
    "Meh.",
    "The council voted to extend the bus line to the new hospital, starting next spring.",
    "Why did the scarecrow win an award? Because he was outstanding in his field.",
    "Scientists report that the new vaccine reduced hospital admissions by more than half in a trial "
    "with twelve thousand volunteers across four countries, though side effects were common.",
)


@dataclass(frozen=True)
class SystemSpec:
    """One system to measure: what a worker loads and how many texts it gets per call."""

    name: str  # row name, e.g. "edge int8 b1"
    kind: str  # one of KINDS
    batch: int = 1  # batch size the system runs with
    chunk: int = 0  # texts per timed call (0: = batch); the edge sorts a call's texts by length first
    path: str | None = None  # bundle (edge, ortmodel) or model folder (torch)
    threads: int = 1
    device: str = "cpu"  # cpu | cuda
    model: str | None = None  # LLM id/folder/GGUF (llm-score, llm-generate) or served name (llm-server)
    url: str | None = None  # base URL of the OpenAI-compatible server (llm-server)
    task: str | None = None  # task name or file for LLM prompts; None: a plain task over `labels`
    labels: tuple[str, ...] = ()
    max_length: int = 64  # student truncation (torch, ortmodel), as in the bundle
    max_new_tokens: int = 16  # llm-generate

    @property
    def per_call(self) -> int:
        """Texts per timed call."""
        return self.chunk or self.batch

    def to_json(self) -> str:
        """The spec as one JSON string (the worker's first argument)."""
        return json.dumps({**asdict(self), "labels": list(self.labels)})

    @classmethod
    def from_json(cls, text: str) -> SystemSpec:
        """Parse a spec written by to_json."""
        data = json.loads(text)
        data["labels"] = tuple(data.get("labels") or ())
        return cls(**data)


@dataclass(frozen=True)
class SpeedRow:
    """One measured system: per-item latency from the median call, throughput, peak memory."""

    system: str
    kind: str
    batch: int
    per_item_ms: float  # median call seconds / texts per call
    items_per_s: float
    rounds: int
    load_s: float | None = None
    rss_mb: float | None = None
    per_call: int = 1
    note: str = ""


# ---------------------------------------------------------------------------------------------- texts


def sample_texts(path: str | Path | None, *, n: int = 256, seed: int = 0, text_col: str = "text"
                 ) -> list[str]:
    """A fixed sample of `n` texts from a data file (cycled when shorter), or the built-in mixed set."""
    if path is None:
        pool = list(DEFAULT_TEXTS)
    else:
        from llm2edge.records import read_records

        pool = [r.text for r in read_records(path, text_col=text_col)]
    if n < 1:
        raise DataError(f"need at least one text to benchmark, asked for {n}")
    rng = random.Random(seed)
    if len(pool) >= n:
        return rng.sample(pool, n)
    out: list[str] = []
    while len(out) < n:
        chunk = list(pool)
        rng.shuffle(chunk)
        out += chunk
    return out[:n]


# --------------------------------------------------------------------------------------------- worker


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


def _bench_task(spec: SystemSpec) -> Any:
    """The labeling task for LLM rows: the named task, or a plain one over the bundle's labels."""
    from llm2edge.hub.label.task import load_task, task_from_dict

    if spec.task:
        return load_task(spec.task)
    if len(spec.labels) < 2:
        raise BackendError(f"{spec.name}: LLM rows need a --task or at least two labels")
    names = ", ".join(spec.labels)
    return task_from_dict({"name": "bench", "instruction": f"Classify the text. Answer with one of: {names}.",
                           "labels": [{"name": lab} for lab in spec.labels]}, "<bench task>")


def _student_runner(spec: SystemSpec) -> Callable[[list[str]], Any]:
    """A transformers text-classification pipeline on torch eager or on optimum's ORTModel."""
    import torch

    torch.set_num_threads(spec.threads)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    from transformers import AutoTokenizer, pipeline

    device = 0 if spec.device == "cuda" else -1
    if spec.kind == "torch":
        pipe = pipeline("text-classification", model=spec.path, device=device)
    else:
        import onnxruntime as ort
        from optimum.onnxruntime import ORTModelForSequenceClassification

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = spec.threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        provider = "CUDAExecutionProvider" if spec.device == "cuda" else "CPUExecutionProvider"
        model = ORTModelForSequenceClassification.from_pretrained(spec.path, session_options=opts,
                                                                  provider=provider)
        tokenizer = AutoTokenizer.from_pretrained(spec.path)
        pipe = pipeline("text-classification", model=model, tokenizer=tokenizer,
                        device=device if spec.device == "cuda" else None)
    kwargs = {"truncation": True, "max_length": spec.max_length, "batch_size": spec.batch, "top_k": None}
    return lambda batch: pipe(batch, **kwargs)


def _llm_runner(spec: SystemSpec) -> Callable[[list[str]], Any]:
    """The labeling LLM: in-process constrained scoring or generation, or an OpenAI-compatible server."""
    from llm2edge.hub.label.prompts import PromptBuilder

    task = _bench_task(spec)
    builder = PromptBuilder.create(task, shots=0)
    space = task.space

    def prompts(batch: list[str]) -> list[Any]:
        return [builder.render(f"b{i}", text) for i, text in enumerate(batch)]

    if spec.kind == "llm-server":
        from llm2edge.hub.label.openai_backend import OpenAIBackend

        server = OpenAIBackend(model=spec.model or MODEL_ALIAS, base_url=spec.url, concurrency=1)
        return lambda batch: server.label_batch(prompts(batch), space)
    from llm2edge.hub.label.hf_backend import HFBackend

    backend = HFBackend(spec.model, threads=spec.threads, max_new_tokens=spec.max_new_tokens,
                        device="cuda" if spec.device == "cuda" else None)
    backend.lm  # noqa: B018  (load now, not in the first timed call)
    if spec.kind == "llm-score":
        return lambda batch: backend.label_batch(prompts(batch), space)
    from llm2edge.hub.label.openai_backend import match_answer

    def generate(batch: list[str]) -> list[str | None]:
        answers = backend.generate([backend.context(p) for p in prompts(batch)])
        return [match_answer(a, space) for a in answers]

    return generate


def build_runner(spec: SystemSpec) -> Callable[[list[str]], Any]:
    """Load the system of `spec` and return a function that classifies one batch of texts."""
    if spec.kind not in KINDS:
        raise BackendError(f"unknown system kind '{spec.kind}': use one of {', '.join(KINDS)}")
    if spec.kind == "noop":
        return lambda batch: None
    if spec.kind == "edge":
        from llm2edge.edge import Classifier

        clf = Classifier.load(spec.path or "", threads=spec.threads, providers=[spec.device])
        return lambda batch: clf.predict_proba(batch, batch_size=spec.batch)
    if spec.kind in ("torch", "ortmodel"):
        return _student_runner(spec)
    return _llm_runner(spec)


def worker_main(argv: Sequence[str]) -> int:
    """Worker process: load the system, say ready, then serve run/all/rss/quit requests on stdin."""
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
                [sys.executable, "-m", "llm2edge.pipeline.benchrun", self.spec.to_json(), str(texts_file)],
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


def plan_rounds(call_s: float, *, budget_s: float, min_rounds: int, max_rounds: int) -> int:
    """How many timed calls fit in `budget_s` given one call's seconds, clamped to [min, max]."""
    fit = int(budget_s / max(call_s, 1e-6))
    return max(min_rounds, min(max_rounds, fit))


def time_calls(worker: Worker, rounds: int, *, warmup: int = 2) -> list[float]:
    """Wall seconds of `rounds` round trips (after `warmup` untimed calls), as the parent sees them."""
    for _ in range(warmup):
        worker.run()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        worker.run()
        times.append(time.perf_counter() - t)
    return times


def speed_row(spec: SystemSpec, call_seconds: Sequence[float], *, load_s: float | None = None,
              rss_mb: float | None = None, note: str = "") -> SpeedRow:
    """A table row from per-call times: per-item latency = median call / texts per call."""
    per_item = statistics.median(call_seconds) / spec.per_call
    return SpeedRow(system=spec.name, kind=spec.kind, batch=spec.batch, per_item_ms=per_item * 1000,
                    items_per_s=1 / per_item if per_item > 0 else math.inf, rounds=len(call_seconds),
                    load_s=load_s, rss_mb=rss_mb, per_call=spec.per_call, note=note)


def fresh_peak_rss(spec: SystemSpec, texts: Sequence[str]) -> tuple[float, float]:
    """(peak RSS MiB, seconds) of a fresh process that loads `spec` and classifies `texts` once."""
    with Worker(spec, texts) as worker:
        seconds, _ = worker.run_all()
        return worker.peak_rss_mb(), (worker.load_s or 0.0) + seconds


def cuda_unavailable(kind: str) -> str | None:
    """None when systems of `kind` can run on CUDA here, else the reason why not."""
    if kind == "edge":
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "no CUDA: onnxruntime has no CUDAExecutionProvider (llm2edge[gpu] on a GPU machine)"
        return None
    if _has("torch"):
        return "torch is not installed"
    import torch

    return None if torch.cuda.is_available() else "no CUDA device visible to torch"


# --------------------------------------------------------------------------------------------- report


def fmt_ms(ms: float) -> str:
    """Milliseconds with 3 significant digits, thousands separated above 100."""
    return f"{ms:.3g}" if ms < 100 else f"{ms:,.0f}"


def ratio_text(row: SpeedRow, ref: SpeedRow | None) -> str:
    """'12.3×' (the reference is that many times faster per item), '1×' for the reference itself."""
    if ref is None or row.kind == "noop":
        return "—"
    if row.system == ref.system:
        return "1×"
    r = row.per_item_ms / ref.per_item_ms
    return f"{r:.3g}×" if r >= 1 else f"{r:.2g}× (faster)"


def speed_table(rows: Sequence[SpeedRow], *, reference: str = REFERENCE) -> str:
    """The markdown speed table: system, batch, ms/item, items/s, peak RSS, how much faster the reference."""
    ref = next((r for r in rows if r.system == reference), None)
    head = f"{reference} is N× faster" if ref else "ratio"
    lines = [f"| system | batch | texts/call | ms/item | items/s | peak RSS MiB | {head} |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rss = f"{r.rss_mb:,.0f}" if r.rss_mb else "—"
        lines.append(f"| {r.system} | {r.batch} | {r.per_call} | {fmt_ms(r.per_item_ms)} | "
                     f"{r.items_per_s:,.1f} | {rss} | {ratio_text(r, ref)} |")
    return "\n".join(lines)


def ratio_sentences(rows: Sequence[SpeedRow], *, reference: str = REFERENCE) -> list[str]:
    """'edge int8 b1 is 4.6× faster per item than torch eager b1' for every other row."""
    ref = next((r for r in rows if r.system == reference), None)
    if ref is None:
        return []
    out = []
    for r in rows:
        if r.system == ref.system or r.kind == "noop":
            continue
        x = r.per_item_ms / ref.per_item_ms
        word = "faster" if x >= 1 else "slower"
        x = x if x >= 1 else 1 / x
        out.append(f"{reference} is {x:.3g}× {word} per item than {r.system}")
    return out


def plot_speed(rows: Sequence[SpeedRow], path: str | Path, *, title: str = "Latency per item") -> Path | None:
    """A horizontal bar chart of ms/item (log scale) per system; None when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    shown = [r for r in rows if r.kind != "noop"]
    shown.sort(key=lambda r: r.per_item_ms)
    colors = {"edge": "#2a9d8f", "torch": "#e76f51", "ortmodel": "#f4a261"}
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(shown) + 1.4))
    ax.barh([r.system for r in shown], [r.per_item_ms for r in shown],
            color=[colors.get(r.kind, "#6c757d") for r in shown])
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds per item (log scale; lower is better)")
    ax.set_title(title)
    for i, r in enumerate(shown):
        ax.text(r.per_item_ms * 1.08, i, f"{fmt_ms(r.per_item_ms)} ms", va="center", fontsize=8)
    low = 10 ** math.floor(math.log10(min(r.per_item_ms for r in shown) * 0.9))
    ax.set_xlim(left=low, right=max(r.per_item_ms for r in shown) * 4)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


# ------------------------------------------------------------------------------------------- llm2edge bench


@dataclass(kw_only=True)
class BenchConfig:
    """Options of `llm2edge bench`."""

    bundle: str | Path
    output: str | Path = "bench-out"
    texts: str | Path | None = None  # data file; None: a small built-in mixed-length set
    text_col: str = "text"
    llm: str = "hf"  # hf | server | none
    model: str | None = None  # LLM id/folder/GGUF (default: the embedded SmolLM2)
    server_url: str | None = None  # an already running OpenAI-compatible server (llm=server)
    student: str | Path | None = None  # torch model folder (default: the manifest's source_model)
    task: str | None = None  # task for the LLM prompts (default: a plain task over the bundle's labels)
    threads: int = 1
    n_texts: int = 256
    batches: tuple[int, ...] = (1, 32)
    budget_s: float = 4.0  # timed seconds per system (within min/max rounds)
    seed: int = 0
    progress: bool = True


@dataclass(frozen=True)
class BenchResult:
    """What `run_bench` measured and wrote."""

    rows: list[SpeedRow]
    skipped: list[tuple[str, str]]  # (system, reason)
    markdown: Path
    json: Path
    plot: Path | None
    extra: dict[str, Any] = field(default_factory=dict)


def _say(config: BenchConfig, message: str) -> None:
    if config.progress:
        print(f"llm2edge bench: {message}", file=sys.stderr, flush=True)


def _has(*modules: str) -> str | None:
    """None if every module is importable, else the first missing one."""
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return m
        except (ImportError, ValueError):
            return m
    return None


def bench_systems(config: BenchConfig, info: Any) -> tuple[list[SystemSpec], list[tuple[str, str]]]:
    """The systems to run for a bundle (BundleInfo), and the ones skipped with the reason."""
    quant = "int8" if info.quantization == "int8" else "fp32"
    common = {"threads": config.threads, "labels": tuple(info.labels), "max_length": info.max_length}
    specs = [SystemSpec(name=f"edge {quant} b{b}", kind="edge", batch=b, path=str(info.path), **common)
             for b in config.batches]
    specs += [SystemSpec(name=f"edge {quant} b{b} stream", kind="edge", batch=b, chunk=STREAM_CHUNK,
                         path=str(info.path), **common)
              for b in config.batches if b > 1 and config.n_texts >= STREAM_CHUNK]
    skipped: list[tuple[str, str]] = []
    student = config.student or (info.source_model if info.source_model and Path(info.source_model).is_dir()
                                 else None)
    missing_hub = _has("torch", "transformers")
    if missing_hub:
        skipped.append(("torch eager", f"{missing_hub} is not installed (pip install 'llm2edge[hub]')"))
    elif student is None:
        skipped.append(("torch eager", "no student model folder: pass --student DIR (the `llm2edge train` "
                                       "output; the manifest's source_model is not a folder here)"))
    else:
        specs += [SystemSpec(name=f"torch eager b{b}", kind="torch", batch=b, path=str(student), **common)
                  for b in config.batches]
    missing_opt = missing_hub or _has("optimum.onnxruntime")
    if missing_opt:
        skipped.append(("optimum ORTModel",
                        f"{missing_opt} is not installed (pip install 'llm2edge[export]')"))
    else:
        specs.append(SystemSpec(name=f"optimum ORTModel {quant} b1", kind="ortmodel", batch=1,
                                path=str(info.path), **common))
    llm = {**common, "model": config.model, "task": config.task}
    if config.llm == "hf":
        if missing_hub:
            skipped.append(("LLM (hf)", f"{missing_hub} is not installed (pip install 'llm2edge[hub]')"))
        else:
            specs += [SystemSpec(name="LLM scoring b1", kind="llm-score", **llm),
                      SystemSpec(name="LLM generation b1", kind="llm-generate", **llm)]
    elif config.llm == "server":
        reason = None if config.server_url else server_available()
        if _has("openai"):
            reason = "the openai client is not installed (pip install 'llm2edge[hub]')"
        if reason:
            skipped.append(("LLM via server", reason))
        else:
            specs.append(SystemSpec(name="LLM via server b1", kind="llm-server", url=config.server_url,
                                    **{**llm, "model": config.model if config.server_url else MODEL_ALIAS}))
    elif config.llm != "none":
        raise BackendError(f"--llm must be hf, server or none, not '{config.llm}'")
    return specs, skipped


def measure(spec: SystemSpec, texts: Sequence[str], *, budget_s: float, log_dir: Path | None = None,
            warmup: int = 2, min_rounds: int = 10) -> SpeedRow:
    """Load one system in a worker, time it (warmup, then as many calls as fit the budget), read its RSS."""
    with Worker(spec, texts, log_dir=log_dir) as worker:
        for _ in range(warmup):
            worker.run()
        probe = worker.run()
        per_pass = worker.batches
        low = min(min_rounds, 2 * per_pass) if spec.per_call > 1 else min_rounds
        rounds = plan_rounds(probe, budget_s=budget_s, min_rounds=low, max_rounds=max(2 * per_pass, 5))
        times = time_calls(worker, rounds, warmup=0)
        return speed_row(spec, times, load_s=worker.load_s, rss_mb=worker.peak_rss_mb())


def run_bench(config: BenchConfig) -> BenchResult:
    """Measure the bundle against every available baseline; write speed.md, speed.json and speed.png."""
    from llm2edge.edge import read_bundle

    if config.threads < 1:
        raise BackendError(f"--threads must be at least 1, got {config.threads}")
    info = read_bundle(config.bundle)
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    texts = sample_texts(config.texts, n=config.n_texts, seed=config.seed, text_col=config.text_col)
    specs, skipped = bench_systems(config, info)
    rows: list[SpeedRow] = []
    with contextlib.ExitStack() as stack:
        if any(s.kind == "llm-server" and not s.url for s in specs):
            _say(config, "starting the llama.cpp server ...")
            url = stack.enter_context(llama_server(config.model, threads=config.threads,
                                                   log=out / "llama-server.log"))
            specs = [SystemSpec(**{**asdict(s), "url": url}) if s.kind == "llm-server" else s for s in specs]
        for i, spec in enumerate(specs, 1):
            _say(config, f"[{i}/{len(specs)}] {spec.name} ...")
            try:
                row = measure(spec, texts, budget_s=config.budget_s, log_dir=out / "logs")
            except BackendError as exc:
                skipped.append((spec.name, str(exc)))
                _say(config, f"  failed: {exc}")
                continue
            rows.append(row)
            _say(config, f"  {row.per_item_ms:.3g} ms/item over {row.rounds} calls "
                         f"(loaded in {row.load_s or 0:.1f} s)")
    reference = f"edge {'int8' if info.quantization == 'int8' else 'fp32'} b1"
    return write_report(rows, skipped, out, reference=reference, config=config, info=info)


def write_report(rows: Sequence[SpeedRow], skipped: Sequence[tuple[str, str]], out: Path, *, reference: str,
                 config: BenchConfig | None = None, info: Any = None) -> BenchResult:
    """Write speed.md, speed.json and speed.png into `out`."""
    import platform

    machine = {"python": platform.python_version(), "platform": platform.platform(),
               "cpus": os.cpu_count(), "threads": config.threads if config else None}
    with contextlib.suppress(OSError):
        machine["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    table = speed_table(rows, reference=reference)
    lines = ["# Runtime (per item)", "",
             f"Bundle: `{info.path}` ({info.quantization}, max_length {info.max_length})" if info else "",
             f"Threads per system: {machine['threads']}; load average at the end: "
             f"{machine.get('load_avg', '?')}; each system in its own process; "
             "per item = median call / texts per call.",
             "", table, ""]
    lines += [f"- {s}" for s in ratio_sentences(rows, reference=reference)]
    if skipped:
        lines += ["", "Skipped:"] + [f"- {name}: {why}" for name, why in skipped]
    md = out / "speed.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    js = out / "speed.json"
    js.write_text(json.dumps({"reference": reference, "machine": machine, "rows": [asdict(r) for r in rows],
                              "skipped": [{"system": n, "reason": w} for n, w in skipped]}, indent=2) + "\n",
                  encoding="utf-8")
    plot = plot_speed(rows, out / "speed.png") if rows else None
    if plot is None and rows:
        skipped = [*skipped, ("plot speed.png", "matplotlib is not installed (pip install 'llm2edge[hub]')")]
    return BenchResult(rows=list(rows), skipped=list(skipped), markdown=md, json=js, plot=plot,
                       extra={"reference": reference, "machine": machine})


if __name__ == "__main__":
    raise SystemExit(worker_main(sys.argv[1:]))
