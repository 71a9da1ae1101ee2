"""What a benchmark worker runs (SystemSpec, one of KINDS) and what one measured system gives (SpeedRow)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from llm2edge.defaults import MAX_LENGTH

#: What a worker can run ("static": a static-embedding student's bundle, run by the edge runtime too).
KINDS = ("noop", "edge", "static", "torch", "ortmodel", "llm-score", "llm-generate", "llm-server")


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
    max_length: int = MAX_LENGTH  # student truncation (torch, ortmodel), as in the bundle
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
