"""`LabelConfig`: every option of a labeling run (`llm2edge label`, `label_file`), with its default."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The labeling backends: in-process Hugging Face scoring, or an OpenAI-compatible server.
BACKENDS = ("hf", "openai")
#: The output formats (JSONL always; "csv" adds a CSV copy).
OUT_FORMATS = ("jsonl", "csv")


@dataclass(kw_only=True)
class LabelConfig:
    """Everything `llm2edge label` needs (see the CLI for what each option means)."""

    data: str | Path
    task: str | Path
    out: str | Path
    backend: str = "hf"
    model: str | None = None  # hf: id, folder or GGUF (default: embedded SmolLM2); openai: model name
    base_url: str | None = None
    shots: int = 0
    examples: str | Path | None = None  # labeled file to take the shots from (default: the task's examples)
    cot: bool = False
    calibrate: bool = False
    limit: int | None = None
    batch_size: int = 16
    text_col: str = "text"
    id_col: str | None = None
    fmt: str = "jsonl"
    dry_run: bool = False
    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 2
    retry_failed: int = 1  # extra passes over items that failed in this run
    threads: int | None = None
    dtype: str = "auto"
    device: str | None = None
    max_new_tokens: int = 128
    progress: bool = True
