"""bench/: per-item latency of the edge runtime against torch eager, optimum's ORTModel and the LLM labeler.

How it measures (see bench/RESULTS.md for why): every system runs in its own worker process
(`llm2edge.pipeline.bench.worker.Worker`: one runtime per process, the same thread count for all,
LLM2EDGE_BENCH_THREADS, default 1); pytest-benchmark times the pipe round trip of each call
(`noop` shows the pipe's own cost). Each student system is timed over whole passes of the same texts, in
LLM2EDGE_BENCH_ROUNDS rounds (default 3) that take turns, a fresh process each: its row is the median round
(`merge_rounds`). Texts: a fixed sample (seed 0) of the shipped example's test split,
mixed lengths. The bundle is built once by the real pipeline (train --freeze-encoder on the example's train
split, export int8 and fp32) and cached under .bench-cache/<hash of the source code>, or taken from
LLM2EDGE_BENCH_BUNDLE (int8 bundle), LLM2EDGE_BENCH_BUNDLE_FP32, LLM2EDGE_BENCH_MODEL (torch model dir) and
LLM2EDGE_BENCH_BUNDLE_STATIC (a static-student bundle: the "static" rows of the student ladder).

At the end the session prints a table of all systems with ratios and writes bench/out/summary.{md,json,png}.
Environment: LLM2EDGE_BENCH_THREADS (1), LLM2EDGE_BENCH_BUDGET (timed seconds per system, 3),
LLM2EDGE_BENCH_TEXTS (a data file instead of the example), LLM2EDGE_BENCH_OUT (bench/out).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from llm2edge.pipeline.bench.report import REFERENCE, plot_speed, ratio_sentences, speed_table
from llm2edge.pipeline.bench.spec import SpeedRow, SystemSpec
from llm2edge.pipeline.bench.texts import sample_texts
from llm2edge.pipeline.bench.timing import merge_rounds, speed_row, warm_and_plan
from llm2edge.pipeline.bench.worker import Worker

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "reddit_humor"
THREADS = int(os.environ.get("LLM2EDGE_BENCH_THREADS", "1"))
BUDGET_S = float(os.environ.get("LLM2EDGE_BENCH_BUDGET", "3"))
OUT = Path(os.environ.get("LLM2EDGE_BENCH_OUT", REPO / "bench" / "out"))
CACHE = REPO / ".bench-cache"
MAX_LENGTH = 64
N_TEXTS = 256

#: Rows measured in this session (read by the terminal summary) and fresh-process memory numbers.
RESULTS: list[SpeedRow] = []
MEMORY: dict[str, dict[str, float]] = {}
#: bench/test_startup.py's result: predict vs the floor (bench/startup.py).
STARTUP: dict = {}
SKIPPED: list[tuple[str, str]] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ci: the fast subset that bench/ci.sh runs and bench/gates.py gates")
    config.addinivalue_line("markers", "gpu: needs CUDA (onnxruntime-gpu / torch CUDA); skips without it")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@dataclass(frozen=True)
class BenchModels:
    """The bundles and the torch model every student row uses."""

    int8: Path
    fp32: Path | None
    model: Path | None
    labels: tuple[str, ...]
    max_length: int
    #: The static-embedding student trained on the same labels (`train --student static`, exported).
    static: Path | None = None


def _source_key() -> str:
    """Hash of the code and data that make the bench bundle (a change rebuilds it)."""
    files = [*sorted((REPO / "hub" / "train").glob("*.py")), *sorted((REPO / "export").glob("*.py")),
             REPO / "edge" / "bundle.py", REPO / "hub" / "models.py", EXAMPLE / "train.csv", Path(__file__)]
    digest = hashlib.sha256(f"threads={THREADS};max_length={MAX_LENGTH}".encode())
    for f in files:
        if f.is_file():
            digest.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def _build(root: Path) -> None:
    """Train (frozen encoder, seconds) on the example's train split; export int8 and fp32 bundles."""
    from llm2edge.export import ExportConfig, export_bundle
    from llm2edge.hub.train import TrainConfig, train

    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    train(TrainConfig(data=EXAMPLE / "train.csv", out=tmp / "model", freeze_encoder=True,
                      max_length=MAX_LENGTH, threads=THREADS, seed=0))
    export_bundle(ExportConfig(model=tmp / "model", out=tmp / "int8", quantize="int8", min_agreement=0.0,
                               threads=THREADS))
    export_bundle(ExportConfig(model=tmp / "model", out=tmp / "fp32", quantize="none", threads=THREADS))
    train(TrainConfig(data=EXAMPLE / "train.csv", out=tmp / "static-model", student="static",
                      max_length=MAX_LENGTH, threads=THREADS, seed=0))
    export_bundle(ExportConfig(model=tmp / "static-model", out=tmp / "static", threads=THREADS))
    shutil.rmtree(root, ignore_errors=True)
    tmp.replace(root)


@pytest.fixture(scope="session")
def bench_models() -> BenchModels:
    """From LLM2EDGE_BENCH_BUNDLE/_FP32/_MODEL, else built once and cached under .bench-cache/."""
    from llm2edge.edge import read_bundle

    given = os.environ.get("LLM2EDGE_BENCH_BUNDLE")
    if given:
        info = read_bundle(given)
        fp32 = os.environ.get("LLM2EDGE_BENCH_BUNDLE_FP32")
        model = os.environ.get("LLM2EDGE_BENCH_MODEL") or info.source_folder
        static = os.environ.get("LLM2EDGE_BENCH_BUNDLE_STATIC")
        return BenchModels(Path(given), Path(fp32) if fp32 else None, Path(model) if model else None,
                           tuple(info.labels), info.max_length, Path(static) if static else None)
    root = CACHE / _source_key()
    if not (root / "static" / "manifest.json").is_file():
        _build(root)
    info = read_bundle(root / "int8")
    return BenchModels(root / "int8", root / "fp32", root / "model", tuple(info.labels), info.max_length,
                       root / "static")


@pytest.fixture(scope="session")
def bench_texts() -> list[str]:
    """The fixed, mixed-length text sample every system classifies (same order for all)."""
    path = os.environ.get("LLM2EDGE_BENCH_TEXTS") or EXAMPLE / "test.csv"
    return sample_texts(path, n=N_TEXTS, seed=0)


@pytest.fixture(scope="session")
def llm_server_url() -> Iterator[str]:
    """A llama.cpp OpenAI-compatible server with the embedded SmolLM2 (skips when llama_cpp is missing)."""
    from llm2edge.hub.label.server import llama_server, server_available

    reason = server_available()
    if reason:
        SKIPPED.append(("LLM via server b1", reason))
        pytest.skip(reason)
    OUT.mkdir(parents=True, exist_ok=True)
    with llama_server(threads=THREADS, log=OUT / "llama-server.log") as url:
        yield url


@pytest.fixture(scope="session")
def memory() -> dict[str, dict[str, float]]:
    """Fresh-process memory results by system (peak RSS MiB, seconds), for the summary."""
    return MEMORY


@pytest.fixture(scope="session")
def startup() -> dict:
    """Start-up vs the floor (filled by bench/test_startup.py), for the summary."""
    return STARTUP


def _folder_mb(path: str | None) -> float | None:
    """Size of a model folder (a bundle or a trained model) in MB, or None when the system has none."""
    if not path or not Path(path).is_dir():
        return None
    return round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6, 2)


@pytest.fixture
def run_system(benchmark, bench_texts: list[str]) -> Callable[..., SpeedRow]:  # noqa: ANN001
    """run_system(spec): time `spec` in its own worker with pytest-benchmark; records and returns the row."""

    def run(spec: SystemSpec, *, budget_s: float = BUDGET_S, warmup: int = 2) -> SpeedRow:
        OUT.mkdir(parents=True, exist_ok=True)
        with Worker(spec, bench_texts, log_dir=OUT / "logs") as worker:
            probe, rounds = warm_and_plan(worker, spec, budget_s=budget_s, warmup=warmup, min_rounds=10,
                                          batch_min_rounds=5)
            benchmark.extra_info.update({"system": spec.name, "kind": spec.kind, "batch": spec.batch,
                                         "per_call": spec.per_call, "threads": spec.threads,
                                         "device": spec.device, "load_s": round(worker.load_s or 0, 3),
                                         "size_mb": _folder_mb(spec.path)})
            inside: list[float] = []  # the worker's own seconds per call (no pipe, no wake-up)
            benchmark.pedantic(lambda: inside.append(worker.run()), rounds=rounds, iterations=1,
                               warmup_rounds=0)
            rss = worker.peak_rss_mb()
        benchmark.extra_info["rss_mb"] = round(rss, 1)
        if inside:
            benchmark.extra_info["in_worker_ms_per_item"] = statistics.median(inside) * 1000 / spec.per_call
        stats = getattr(benchmark, "stats", None)
        data = list(stats.stats.data) if stats is not None else [probe]
        row = speed_row(spec, data, load_s=worker.load_s, rss_mb=rss)
        benchmark.extra_info["per_item_ms"] = row.per_item_ms
        RESULTS.append(row)
        return row

    return run


def _summary(reference: str = REFERENCE) -> tuple[str, dict]:
    """The session's markdown summary and its JSON twin."""
    rows = sorted(merge_rounds(RESULTS), key=lambda r: r.per_item_ms)
    rounds = max(Counter(r.system for r in RESULTS).values(), default=1)  # bench/test_speed.py's ROUNDS
    ref = next((r for r in rows if r.system == reference), None)
    load = [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None
    lines = ["# llm2edge bench summary", "",
             f"threads per system: {THREADS}; load average at the end: {load}; texts: {N_TEXTS} sampled "
             "(seed 0) from the example's test split; per item = median call / texts per call, whole passes "
             f"over the texts, the median of {rounds} rounds in turn.", "",
             speed_table(rows, reference=reference), ""]
    lines += [f"- {s}" for s in ratio_sentences(rows, reference=reference)]
    if MEMORY:
        lines += ["", "| fresh process: load + classify 100 texts | peak RSS MiB | wall s |",
                  "|---|---:|---:|"]
        lines += [f"| {name} | {m['rss_mb']:.0f} | {m['seconds']:.2f} |" for name, m in MEMORY.items()]
        edge = MEMORY.get("edge int8")
        torch_ = MEMORY.get("torch eager")
        if edge and torch_:
            lines.append(f"\n- peak RSS: torch eager / edge int8 = {torch_['rss_mb'] / edge['rss_mb']:.2f}×")
    if STARTUP:
        f, p = STARTUP["floor"], STARTUP["predict"]
        lines += ["", f"| process start -> first label, {STARTUP['runs']} runs | CPU s | peak RSS MiB |",
                  "|---|---:|---:|", f"| floor (bench/floor.py) | {f['cpu_s']:.3f} | {f['rss_mb']:.1f} |",
                  f"| llm2edge predict (checksums verified) | {p['cpu_s']:.3f} | {p['rss_mb']:.1f} |",
                  f"| predict / floor | {STARTUP['cpu_ratio']:.2f}x | {STARTUP['rss_ratio']:.2f}x |"]
    if SKIPPED:
        lines += ["", "Skipped:"] + [f"- {n}: {why}" for n, why in SKIPPED]
    data = {"threads": THREADS, "load_avg": load, "reference": reference if ref else None,
            "rows": [asdict(r) for r in rows], "memory": MEMORY, "startup": STARTUP,
            "skipped": [{"system": n, "reason": w} for n, w in SKIPPED]}
    return "\n".join(lines) + "\n", data


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember why a benchmark was skipped (for the summary)."""
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        name = report.nodeid.split("[")[-1].rstrip("]") if "[" in report.nodeid else report.nodeid
        SKIPPED.append((name, reason.removeprefix("Skipped: ")))


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # noqa: ANN001
    """Print the table with ratios and write bench/out/summary.md, summary.json and summary.png."""
    if not RESULTS and not MEMORY and not STARTUP:
        return
    text, data = _summary()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "summary.md").write_text(text, encoding="utf-8")
    (OUT / "summary.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if RESULTS:
        plot_speed(merge_rounds(RESULTS), OUT / "summary.png", title="Latency per item (bench/)")
    terminalreporter.write_sep("=", "llm2edge bench summary")
    terminalreporter.write_line(text)
    terminalreporter.write_line(f"wrote {OUT / 'summary.md'}, {OUT / 'summary.json'}")
