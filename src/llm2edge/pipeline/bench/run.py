"""`llm2edge bench`: the systems to measure for a bundle, each timed in its own worker, then the report.

`run_bench` measures the bundle with the edge runtime against every baseline that is installed (torch eager,
optimum's ORTModel, the labeling LLM in-process or behind a llama.cpp server) and names the ones it skips.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from llm2edge.checks import at_least, check_threads, one_of, positive
from llm2edge.console import say
from llm2edge.defaults import BENCH_BUDGET_S, BENCH_LLM, BENCH_N_TEXTS, BENCH_OUTPUT, PROGRESS, SEED, TEXT_COL
from llm2edge.edge.bundle import BundleInfo, read_bundle
from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import BackendError, ConfigError
from llm2edge.pipeline.bench.report import BenchResult, write_report
from llm2edge.pipeline.bench.runners import missing_module
from llm2edge.pipeline.bench.spec import SpeedRow, SystemSpec
from llm2edge.pipeline.bench.texts import sample_texts
from llm2edge.pipeline.bench.timing import measure

#: Texts per call of the "stream" rows: a chunk the edge sorts by length and splits into batches, as
#: `llm2edge predict` does with a file.
STREAM_CHUNK = 256


#: Accepted values of BenchConfig.llm.
LLM_CHOICES = ("hf", "server", "none")


@dataclass(kw_only=True)
class BenchConfig:
    """Options of `llm2edge bench` (checked when built)."""

    #: Bundle folder made by `llm2edge export`.
    bundle: str | Path
    #: Folder for speed.md, speed.json, speed.png and the workers' logs.
    output: str | Path = BENCH_OUTPUT
    #: Texts to time (data file); None: a small built-in mixed-length set.
    texts: str | Path | None = None
    #: Column holding the text in `texts`.
    text_col: str = TEXT_COL
    #: LLM rows: "hf" (in-process scoring and generation), "server" (llama.cpp) or "none".
    llm: str = BENCH_LLM
    #: LLM id, folder or GGUF (default: the embedded SmolLM2); the served name with server_url.
    model: str | None = None
    #: An already running OpenAI-compatible server (llm="server"); None: start llama.cpp locally.
    server_url: str | None = None
    #: A static-student bundle (`train --student static`, then export) timed beside the bundle ("static"
    #: rows at the same batch sizes); None: no static rows.
    static: str | Path | None = None
    #: Torch model folder for the torch eager rows (default: the folder named as the manifest's
    #: source_model next to the bundle, BundleInfo.source_folder).
    student: str | Path | None = None
    #: Task for the LLM prompts (default: a plain task over the bundle's labels).
    task: str | None = None
    #: Threads of every system, the same for all; None: `resolve_threads` (the CPUs this process may use).
    threads: int | None = None
    #: Texts sampled from `texts`.
    n_texts: int = BENCH_N_TEXTS
    #: Batch sizes of the edge and torch rows.
    batches: tuple[int, ...] = (1, 32)
    #: Timed seconds per system (within the min/max rounds).
    budget_s: float = BENCH_BUDGET_S
    #: Seed of the text sample.
    seed: int = SEED
    #: Progress lines on stderr.
    progress: bool = PROGRESS

    def __post_init__(self) -> None:
        one_of("llm", self.llm, LLM_CHOICES)
        check_threads(self.threads)
        at_least("n_texts", self.n_texts)
        positive("budget_s", self.budget_s)
        if not self.batches:
            raise ConfigError("batches must name at least one batch size")
        for batch in self.batches:
            at_least("batch size", batch)


def _say(config: BenchConfig, message: str) -> None:
    """A progress line on stderr (when config.progress)."""
    if config.progress:
        say(f"llm2edge bench: {message}")


def bench_systems(config: BenchConfig, info: BundleInfo) -> tuple[list[SystemSpec], list[tuple[str, str]]]:
    """The systems to run for a bundle, and the ones skipped with the reason."""
    quant = "int8" if info.quantization == "int8" else "fp32"
    common = {"threads": resolve_threads(config.threads), "labels": tuple(info.labels),
              "max_length": info.max_length}
    specs = [SystemSpec(name=f"edge {quant} b{b}", kind="edge", batch=b, path=str(info.path), **common)
             for b in config.batches]
    specs += [SystemSpec(name=f"edge {quant} b{b} stream", kind="edge", batch=b, chunk=STREAM_CHUNK,
                         path=str(info.path), **common)
              for b in config.batches if b > 1 and config.n_texts >= STREAM_CHUNK]
    if config.static is not None:
        static = read_bundle(config.static)
        if static.student != "static":
            raise ConfigError(f"{config.static}: --static needs a static-student bundle (its manifest says "
                              f"student: {static.student})")
        specs += [SystemSpec(name=f"static b{b}", kind="static", batch=b, path=str(static.path),
                             **{**common, "max_length": static.max_length}) for b in config.batches]
    skipped: list[tuple[str, str]] = []
    student = config.student or info.source_folder
    missing_hub = missing_module("torch", "transformers")
    if missing_hub:
        skipped.append(("torch eager", f"{missing_hub} is not installed (pip install 'llm2edge[hub]')"))
    elif student is None:
        skipped.append(("torch eager", "no student model folder: pass --student DIR (the `llm2edge train` "
                                       "output; the manifest's source_model is not beside the bundle)"))
    else:
        specs += [SystemSpec(name=f"torch eager b{b}", kind="torch", batch=b, path=str(student), **common)
                  for b in config.batches]
    missing_opt = missing_hub or missing_module("optimum.onnxruntime")
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
        from llm2edge.hub.label.server import MODEL_ALIAS, server_available

        reason = None if config.server_url else server_available()
        if missing_module("openai"):
            reason = "the openai client is not installed (pip install 'llm2edge[hub]')"
        if reason:
            skipped.append(("LLM via server", reason))
        else:
            specs.append(SystemSpec(name="LLM via server b1", kind="llm-server", url=config.server_url,
                                    **{**llm, "model": config.model if config.server_url else MODEL_ALIAS}))
    return specs, skipped


def run_bench(config: BenchConfig) -> BenchResult:
    """Measure the bundle against every available baseline; write speed.md, speed.json and speed.png."""
    config = replace(config, threads=resolve_threads(config.threads))  # one count for every system
    info = read_bundle(config.bundle)
    out = Path(config.output)
    out.mkdir(parents=True, exist_ok=True)
    texts = sample_texts(config.texts, n=config.n_texts, seed=config.seed, text_col=config.text_col)
    specs, skipped = bench_systems(config, info)
    rows: list[SpeedRow] = []
    with contextlib.ExitStack() as stack:
        if any(s.kind == "llm-server" and not s.url for s in specs):
            from llm2edge.hub.label.server import llama_server

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
    return write_report(rows, skipped, out, reference=reference, threads=config.threads, info=info)
