"""Prompt rendering: system turn with label descriptions, K balanced shots, the item; the prompt hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm2edge.errors import TaskError
from llm2edge.hub.label.prompts import ANSWER_CUE, CONTENT_FREE, PromptBuilder, examples_from_file, plain_text
from llm2edge.hub.label.task import load_task


def test_zero_shot_messages() -> None:
    task = load_task("misinfo")
    p = PromptBuilder.create(task).render("a", "Vaccines cause 5G")
    assert [m["role"] for m in p.messages] == ["system", "user"]
    system = p.messages[0]["content"]
    assert task.instruction in system
    for lab in task.labels:
        assert f"- {lab.forms[0]}: {lab.description}" in system
    assert p.messages[1]["content"] == "Text: Vaccines cause 5G"
    assert p.item_id == "a"


def test_shots_are_balanced_over_labels_and_use_fields() -> None:
    task = load_task("stance")
    b = PromptBuilder.create(task, shots=3)
    p = b.render("x", "I {love} {target} this", {"target": "Atheism"})
    roles = [m["role"] for m in p.messages]
    assert roles == ["system"] + ["user", "assistant"] * 3 + ["user"]
    answers = [m["content"] for m in p.messages if m["role"] == "assistant"]
    assert sorted(answers) == sorted(b.answer(n) for n in task.label_names)  # one shot per label
    # the template fills the fields; braces in the text are left alone
    assert p.messages[-1]["content"] == "Target: Atheism\nTweet: I {love} {target} this"


def test_too_many_shots_is_an_error() -> None:
    with pytest.raises(TaskError, match="--shots 50"):
        PromptBuilder.create(load_task("humor"), shots=50)


def test_missing_field_is_an_error() -> None:
    with pytest.raises(TaskError, match="target"):
        PromptBuilder.create(load_task("stance")).render("x", "text", {})


def test_prompt_hash_tracks_what_the_model_sees() -> None:
    task = load_task("humor")
    base = PromptBuilder.create(task).prompt_hash
    assert base == PromptBuilder.create(task).prompt_hash
    assert base != PromptBuilder.create(task, shots=2).prompt_hash
    assert base != PromptBuilder.create(task, cot=True).prompt_hash
    other_shots = PromptBuilder.create(task, shots=2, examples=list(reversed(task.examples)))
    assert other_shots.shots != PromptBuilder.create(task, shots=2).shots
    assert other_shots.prompt_hash != PromptBuilder.create(task, shots=2).prompt_hash


def test_cot_adds_the_instruction_and_answer_cue() -> None:
    task = load_task("ideology")
    b = PromptBuilder.create(task, shots=1, cot=True)
    p = b.render("x", "Taxes are theft .")
    assert task.cot in p.messages[0]["content"]
    assert p.messages[2]["content"] == f"{ANSWER_CUE} Liberal"


def test_content_free_prompts_keep_fields() -> None:
    b = PromptBuilder.create(load_task("stance"))
    prompts = b.content_free({"target": "Hillary Clinton"})
    assert len(prompts) == len(CONTENT_FREE)
    for p, text in zip(prompts, CONTENT_FREE):
        assert p.messages[-1]["content"] == f"Target: Hillary Clinton\nTweet: {text}"


def test_plain_text_rendering() -> None:
    b = PromptBuilder.create(load_task("humor"), shots=2)
    text = plain_text(b.render("x", "A joke_____punchline").messages)
    assert text.startswith(load_task("humor").instruction)
    assert text.count(f"{ANSWER_CUE} ") == 2 and text.endswith(f"Text: A joke_____punchline\n{ANSWER_CUE}")


def test_examples_from_file(tmp_path: Path, example_dir: Path) -> None:
    task = load_task("humor")
    ex = examples_from_file(example_dir / "train.csv", task)
    assert len(ex) > 100 and {e.label for e in ex} == set(task.label_names)
    b = PromptBuilder.create(task, shots=4, examples=ex)
    assert len(b.shots) == 4 and b.prompt_hash != PromptBuilder.create(task, shots=4).prompt_hash
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,funny\nworld,hilarious\n", encoding="utf-8")
    with pytest.raises(TaskError, match=r"bad.csv:3: unknown label 'hilarious'"):
        examples_from_file(bad, task)
