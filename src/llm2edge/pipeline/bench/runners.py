"""Loading each kind of system into a function that classifies one batch: edge, torch, ORTModel, LLM.

Runs inside a worker process (see `worker`). The edge row is `Classifier.load`, and optimum's ORTModel row
takes its session options from the edge (`llm2edge.edge.session.session_options`), so both run the bundle
with exactly the recipe the edge ships. Heavy libraries (onnxruntime, torch, transformers, optimum, the
hub's labeling backends) are imported only for the kind that needs them.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from typing import Any

from llm2edge.errors import BackendError
from llm2edge.pipeline.bench.spec import KINDS, SystemSpec

#: A loaded system: classifies one batch of texts (the result is ignored; only the time counts).
Runner = Callable[[list[str]], Any]


def missing_module(*modules: str) -> str | None:
    """None if every module is importable, else the first missing one (nothing is imported)."""
    for m in modules:
        try:
            if importlib.util.find_spec(m) is None:
                return m
        except (ImportError, ValueError):
            return m
    return None


def cuda_unavailable(kind: str) -> str | None:
    """None when systems of `kind` can run on CUDA here, else the reason why not."""
    if kind in ("edge", "static"):
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return "no CUDA: onnxruntime has no CUDAExecutionProvider (llm2edge[gpu] on a GPU machine)"
        return None
    if missing_module("torch"):
        return "torch is not installed"
    import torch

    return None if torch.cuda.is_available() else "no CUDA device visible to torch"


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


def ortmodel(spec: SystemSpec) -> Any:
    """optimum's ORTModelForSequenceClassification on the bundle, with the edge's session options."""
    from optimum.onnxruntime import ORTModelForSequenceClassification

    from llm2edge.edge.session import session_options

    provider = "CUDAExecutionProvider" if spec.device == "cuda" else "CPUExecutionProvider"
    return ORTModelForSequenceClassification.from_pretrained(
        spec.path, session_options=session_options(spec.threads), provider=provider)


def _student_runner(spec: SystemSpec) -> Runner:
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
        tokenizer = AutoTokenizer.from_pretrained(spec.path)
        pipe = pipeline("text-classification", model=ortmodel(spec), tokenizer=tokenizer,
                        device=device if spec.device == "cuda" else None)
    kwargs = {"truncation": True, "max_length": spec.max_length, "batch_size": spec.batch, "top_k": None}
    return lambda batch: pipe(batch, **kwargs)


def _llm_runner(spec: SystemSpec) -> Runner:
    """The labeling LLM: in-process constrained scoring or generation, or an OpenAI-compatible server."""
    from llm2edge.hub.label.prompts import PromptBuilder

    task = _bench_task(spec)
    builder = PromptBuilder.create(task, shots=0)
    space = task.space

    def prompts(batch: list[str]) -> list[Any]:
        return [builder.render(f"b{i}", text) for i, text in enumerate(batch)]

    if spec.kind == "llm-server":
        from llm2edge.hub.label.openai_backend import OpenAIBackend
        from llm2edge.hub.label.server import MODEL_ALIAS

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


def build_runner(spec: SystemSpec) -> Runner:
    """Load the system of `spec` and return a function that classifies one batch of texts."""
    if spec.kind not in KINDS:
        raise BackendError(f"unknown system kind '{spec.kind}': use one of {', '.join(KINDS)}")
    if spec.kind == "noop":
        return lambda batch: None
    if spec.kind in ("edge", "static"):
        from llm2edge.edge import Classifier

        clf = Classifier.load(spec.path or "", threads=spec.threads, providers=[spec.device])
        return lambda batch: clf.predict_proba(batch, batch_size=spec.batch)
    if spec.kind in ("torch", "ortmodel"):
        return _student_runner(spec)
    return _llm_runner(spec)
