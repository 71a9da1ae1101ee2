"""`LabelConfig`: every option of a labeling run (`llm2edge label`, `label_file`), with its default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm2edge.checks import at_least, check_threads, one_of, optional_at_least, positive
from llm2edge.defaults import (
    LABEL_BACKEND,
    LABEL_BATCH_SIZE,
    LABEL_CONCURRENCY,
    LABEL_DTYPE,
    LABEL_FORMAT,
    LABEL_MAX_RETRIES,
    LABEL_RETRY_FAILED,
    LABEL_SAMPLE_TEMPERATURE,
    LABEL_SAMPLES,
    LABEL_TIMEOUT_S,
    MAX_NEW_TOKENS,
    PROGRESS,
    SEED,
    SHOTS,
    TEXT_COL,
)
from llm2edge.errors import ConfigError

#: The labeling backends: in-process Hugging Face scoring, or an OpenAI-compatible server.
BACKENDS = ("hf", "openai")
#: The output formats (JSONL always; "csv" adds a CSV copy).
OUT_FORMATS = ("jsonl", "csv")


@dataclass(kw_only=True)
class LabelConfig:
    """Everything a labeling run needs (setfit-style, checked when built)."""

    #: Items to label: CSV, JSONL, Parquet or TXT.
    data: str | Path
    #: Shipped task name (stance, misinfo, ideology, humor) or a .toml/.yaml task file.
    task: str | Path
    #: Labels file to write (.jsonl, append-only, resumable).
    out: str | Path
    #: "hf" (in-process Hugging Face model) or "openai" (any OpenAI-compatible server).
    backend: str = LABEL_BACKEND
    #: hf: id, folder or GGUF (default: the embedded SmolLM2); openai: the model name.
    model: str | None = None
    #: OpenAI-compatible server URL (default: OpenAI's).
    base_url: str | None = None
    #: Few-shot examples in each prompt.
    shots: int = SHOTS
    #: Labeled file to take the shots from (default: the task's examples).
    examples: str | Path | None = None
    #: Reason first (chain of thought), then score the labels.
    cot: bool = False
    #: Contextual calibration (content-free prompts).
    calibrate: bool = False
    #: Label only the first N items; None: all.
    limit: int | None = None
    #: Items per backend call.
    batch_size: int = LABEL_BATCH_SIZE
    #: Column holding the text.
    text_col: str = TEXT_COL
    #: Column holding unique ids (None: row number + text hash).
    id_col: str | None = None
    #: "jsonl", or "csv" to also write a CSV copy with p_<label> columns.
    fmt: str = LABEL_FORMAT
    #: Count items, tokens and cost; label nothing.
    dry_run: bool = False
    #: openai: requests in flight.
    concurrency: int = LABEL_CONCURRENCY
    #: openai: seconds per request.
    timeout: float = LABEL_TIMEOUT_S
    #: openai: client retries per request.
    max_retries: int = LABEL_MAX_RETRIES
    #: Extra passes over items that failed in this run.
    retry_failed: int = LABEL_RETRY_FAILED
    #: Torch threads of the hf backend; None: `resolve_threads` (the CPUs this process may use, 1 per
    #: process under accelerate launch).
    threads: int | None = None
    #: hf: torch dtype (auto, float32, bfloat16, float16).
    dtype: str = LABEL_DTYPE
    #: hf: cpu, cuda, cuda:1... (None: device_map=auto on GPUs, else cpu).
    device: str | None = None
    #: hf with cot: the longest reasoning, in tokens.
    max_new_tokens: int = MAX_NEW_TOKENS
    #: Show a progress bar on stderr.
    progress: bool = PROGRESS
    #: Answers per item (self-consistency, llm2edge.hub.label.votes): K > 1 samples K answers and stores
    #: their smoothed vote shares as `probs` (`prob_source: votes`); 1 labels each item once.
    samples: int = LABEL_SAMPLES
    #: Sampling temperature of samples > 1 (None: LABEL_SAMPLE_TEMPERATURE); an error with samples = 1.
    temperature: float | None = None
    #: Seed of the sampled answers (with the item key: reruns draw the same answers).
    seed: int = SEED

    def __post_init__(self) -> None:
        """ConfigError on options that cannot work, before any file or model is opened."""
        one_of("backend", self.backend, BACKENDS)
        one_of("format", self.fmt, OUT_FORMATS)
        for name in ("batch_size", "concurrency", "max_new_tokens"):
            at_least(name, getattr(self, name))
        for name in ("shots", "max_retries", "retry_failed"):
            at_least(name, getattr(self, name), 0)
        optional_at_least("limit", self.limit)
        positive("timeout", self.timeout)
        check_threads(self.threads)
        at_least("samples", self.samples)
        if self.temperature is not None:
            positive("temperature", self.temperature)
            if self.samples == 1:
                raise ConfigError("--temperature applies to sampled answers: give --samples K (K > 1) too")
        if self.samples > 1 and (self.cot or self.calibrate):
            raise ConfigError(f"--samples {self.samples} votes on sampled one-label answers: it does not "
                              f"combine with --{'cot' if self.cot else 'calibrate'}")
        out = Path(self.out)
        if out.suffix.lower() not in (".jsonl", ".ndjson"):
            raise ConfigError(f"{out}: the labels file must end in .jsonl (use --format csv for a CSV copy)")

    @property
    def sample_temperature(self) -> float:
        """The temperature sampled answers are drawn at."""
        return LABEL_SAMPLE_TEMPERATURE if self.temperature is None else float(self.temperature)
