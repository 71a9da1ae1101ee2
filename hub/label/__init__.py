"""LLM labeling with label probabilities (in-process Hugging Face models or OpenAI-compatible servers).

Needs the `hub` extra: importing this package without it raises MissingExtraError with the pip command.
torch, transformers and openai are imported only when a backend loads its model or client.

- `config`: LabelConfig, the documented settings of one labeling run.
- `runner`: `label_file` (resumable, sharded under `accelerate launch`) and the backend factory.
- `importer`: `import_labels` (labels made elsewhere, from a CSV/JSONL/Parquet label column and optional
  probability columns, as labels.jsonl).
- `task`: task files (TOML/YAML) and the tasks shipped in `llm2edge.hub.tasks`.
- `prompts`: the prompt for one item (instruction, labels, few-shot examples, chain of thought).
- `backend`, `hf_backend`, `openai_backend`: the Backend protocol and its two implementations.
- `contextual`, `pricing`, `server`, `store`: contextual calibration, API cost estimates, the llama.cpp
  server launcher, and labels.jsonl (append-only rows, item keys, margins).
- `votes`: self-consistency (`--samples K`: vote shares of K sampled answers, for teachers without
  logprobs); `dryrun`: what `--dry-run` counts (items, tokens, cost).
- `multilabel`, `openai_sets`, `import_sets`: multi-label tasks (a set per text): the hf backend's yes/no
  prompt per label, the openai backend's strictly parsed lists, and imported sets and per-label columns.
"""

from __future__ import annotations

from llm2edge.extras import require

require("hub")

from llm2edge.hub.label.backend import Backend, LabelSpace, Prompt, Scored  # noqa: E402
from llm2edge.hub.label.config import LabelConfig  # noqa: E402
from llm2edge.hub.label.hf_backend import HFBackend  # noqa: E402
from llm2edge.hub.label.importer import ImportConfig, ImportSummary, import_labels  # noqa: E402
from llm2edge.hub.label.openai_backend import OpenAIBackend  # noqa: E402
from llm2edge.hub.label.prompts import PromptBuilder  # noqa: E402
from llm2edge.hub.label.runner import LabelSummary, label_file, make_backend  # noqa: E402
from llm2edge.hub.label.server import llama_server, server_available  # noqa: E402
from llm2edge.hub.label.store import read_labels  # noqa: E402
from llm2edge.hub.label.task import Example, LabelDef, Task, load_task, shipped_tasks, task_from_dict  # noqa: E402

__all__ = [
    "Backend",
    "Example",
    "HFBackend",
    "ImportConfig",
    "ImportSummary",
    "LabelConfig",
    "LabelDef",
    "LabelSpace",
    "LabelSummary",
    "OpenAIBackend",
    "Prompt",
    "PromptBuilder",
    "Scored",
    "Task",
    "import_labels",
    "label_file",
    "llama_server",
    "load_task",
    "make_backend",
    "read_labels",
    "server_available",
    "shipped_tasks",
    "task_from_dict",
]
