"""`LabelConfig`: every option of a labeling run (`llm2edge label`, `label_file`), with its default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llm2edge.checks import positive
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
from llm2edge.hub.label.task_choice import TaskChoice
from llm2edge.params import check_fields, param, threads_param

#: The labeling backends: in-process Hugging Face scoring, or an OpenAI-compatible server.
BACKENDS = ("hf", "openai")
#: The output formats (JSONL always; "csv" adds a CSV copy).
OUT_FORMATS = ("jsonl", "csv")


@dataclass(kw_only=True)
class LabelConfig(TaskChoice):
    """Everything a labeling run needs (setfit-style, checked when built). The labels: a task, or
    `labels` (`--labels a,b,c [--multi-label]`: a task with a generic instruction)."""

    data: Path | str = param(help="Items to label: CSV, JSONL, Parquet or TXT.")
    out: Path | str = param(help="Labels file (.jsonl, append-only, resumable).")
    backend: str = param(LABEL_BACKEND, choices=BACKENDS,
                         help="hf (in-process) or openai (any OpenAI-compatible server).")
    model: str | None = param(None, help="hf: HF id, folder or .gguf (default: embedded SmolLM2); openai: "
                                         "model name.")
    base_url: str | None = param(None, help="OpenAI-compatible server URL (default: OpenAI).")
    shots: int = param(SHOTS, low=0, help="Few-shot examples in the prompt.")
    examples: Path | str | None = param(None, help="Labeled file to take the shots from (default: the task's "
                                                   "examples).")
    #: Chain of thought.
    cot: bool = param(False, help="Reason first, then score the labels.")
    calibrate: bool = param(False, help="Contextual calibration (content-free).")
    #: None: all.
    limit: int | None = param(None, low=1, help="Label only the first N items.")
    batch_size: int = param(LABEL_BATCH_SIZE, low=1, help="Items per backend call.")
    text_col: str = param(TEXT_COL, help="Column with the text.")
    id_col: str | None = param(None, help="Column with unique ids (default: row number + text hash).")
    fmt: str = param(LABEL_FORMAT, choices=OUT_FORMATS, name="format", flags=("--format",),
                     help="jsonl, or csv to also write a CSV with p_<label> columns.")
    dry_run: bool = param(False, help="Print items, tokens, cost; label nothing.")
    concurrency: int = param(LABEL_CONCURRENCY, low=1, help="openai: requests in flight.")
    timeout: float = param(LABEL_TIMEOUT_S, check=positive, help="openai: seconds per request.")
    max_retries: int = param(LABEL_MAX_RETRIES, low=0, help="openai: client retries per request.")
    retry_failed: int = param(LABEL_RETRY_FAILED, low=0, cli=False,
                              help="Extra passes over items that failed in this run.")
    threads: int | None = threads_param("Torch threads of the hf backend")
    dtype: str = param(LABEL_DTYPE, help="hf: auto, float32, bfloat16 or float16.")
    device: str | None = param(None, help="hf: cpu, cuda, cuda:1... (default: device_map=auto on GPUs, else "
                                          "cpu).")
    max_new_tokens: int = param(MAX_NEW_TOKENS, low=1, help="hf --cot: longest reasoning.")
    progress: bool = param(PROGRESS, flags=("--progress/--no-progress",),
                           help="Show a progress bar on stderr.")
    #: Self-consistency (llm2edge.hub.label.votes): the smoothed vote shares.
    samples: int = param(LABEL_SAMPLES, low=1,
                         help="Answers per item: K > 1 samples K answers and stores their vote shares as "
                              "probs (prob_source votes), for teachers without logprobs.")
    #: An error with samples = 1.
    temperature: float | None = param(None, check=positive,
                                      help=f"Sampling temperature of --samples (default "
                                           f"{LABEL_SAMPLE_TEMPERATURE}).")
    #: With the item key.
    seed: int = param(SEED, help="Seed of the --samples draws (reruns draw the same answers).")

    def __post_init__(self) -> None:
        """ConfigError on options that cannot work, before any file or model is opened."""
        check_fields(self)
        self.check_task_choice()
        if self.temperature is not None and self.samples == 1:
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
