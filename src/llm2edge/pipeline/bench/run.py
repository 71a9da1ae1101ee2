"""`llm2edge bench`: the systems to measure for a bundle, each timed in its own worker, then the report.

`run_bench` measures the bundle with the edge runtime against every baseline that is installed (torch eager,
optimum's ORTModel, the labeling LLM in-process or behind a llama.cpp server) and names the ones it skips.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from llm2edge.checks import at_least, positive
from llm2edge.console import say
from llm2edge.defaults import BENCH_BUDGET_S, BENCH_LLM, BENCH_N_TEXTS, BENCH_OUTPUT, PROGRESS, SEED, TEXT_COL
from llm2edge.edge.bundle import BundleInfo, read_bundle
from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import BackendError, ConfigError
from llm2edge.params import check_fields, param, threads_param
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

    bundle: Path | str = param(flags=("--bundle", "-b"), help="Bundle folder made by `llm2edge export`.")
    #: Also the workers' logs.
    output: Path | str = param(BENCH_OUTPUT, flags=("--output", "-o"), help="Folder for speed.md/json/png.")
    texts: Path | str | None = param(None, help="Texts to time (csv, jsonl, parquet, txt); default: a small "
                                                "built-in mixed-length set.")
    text_col: str = param(TEXT_COL, help="Column holding the text.")
    llm: str = param(BENCH_LLM, choices=LLM_CHOICES,
                     help="LLM rows: hf (in-process scoring and generation), server (llama.cpp, "
                          "OpenAI-compatible) or none.")
    #: The served name with server_url.
    model: str | None = param(None, flags=("--model", "-m"),
                              help="LLM id, folder or GGUF (default: the embedded SmolLM2).")
    server_url: str | None = param(None, help="Use this running OpenAI-compatible server for --llm server "
                                              "(default: start llama.cpp locally).")
    #: Default: the folder named as the manifest's source_model next to the bundle (BundleInfo.source_folder).
    student: Path | str | None = param(None, help="The torch model folder (`llm2edge train` output) for the "
                                                  "torch eager rows.")
    #: "static" rows at the same batch sizes.
    static: Path | str | None = param(None, help="A static-student bundle (`train --student static`, "
                                                 "exported) timed beside --bundle.")
    task: str | None = param(None, help="Task name or file for the LLM prompts (default: a plain task over "
                                        "the bundle's labels).")
    threads: int | None = threads_param("Threads of every system, the same for all")
    n_texts: int = param(BENCH_N_TEXTS, low=1, cli_min=1, help="Texts sampled from --texts.")
    batches: tuple[int, ...] = param((1, 32), cli=False, help="Batch sizes of the edge and torch rows.")
    #: Within the min/max rounds.
    budget_s: float = param(BENCH_BUDGET_S, check=positive, flags=("--budget",),
                            help="Seconds of timed calls per system.")
    seed: int = param(SEED, cli=False, help="Seed of the text sample.")
    progress: bool = param(PROGRESS, cli=False, help="Progress lines on stderr.")

    def __post_init__(self) -> None:
        check_fields(self)
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
