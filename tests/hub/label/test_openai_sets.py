"""Multi-label items on the real llama.cpp server (embedded SmolLM2): the list is asked for and parsed
strictly (unknown or repeated names are errors of that row, counted per row), `--samples K` gives per-label
vote shares, and the CLI reports the failed rows and retries only them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm2edge.hub.label.multilabel import answer_set
from llm2edge.hub.label.openai_backend import OpenAIBackend
from llm2edge.hub.label.prompts import PromptBuilder
from llm2edge.hub.label.task import load_task
from llm2edge.records import read_jsonl, read_records

pytestmark = pytest.mark.server
TASK = load_task("emotions")


@pytest.fixture(scope="module")
def goemotions(shared_data: Path) -> list:
    return read_records(shared_data / "goemotions_ekman" / "test.csv", label_col="labels")[:8]


def _backend(url: str, **kw: object) -> OpenAIBackend:
    return OpenAIBackend(model="smollm2", base_url=url, concurrency=2, timeout=60.0, **kw)  # type: ignore[arg-type]


def test_the_list_is_parsed_strictly_row_by_row(llama_server, goemotions: list) -> None:
    builder = PromptBuilder.create(TASK, shots=3)
    prompts = [builder.render(r.id, r.text) for r in goemotions]
    assert "separated by ';'" in prompts[0].messages[0]["content"]
    assert prompts[0].messages[2]["content"] == "anger;surprise"  # a shot's answer is its set, joined
    be = _backend(llama_server.base_url)
    out = be.label_batch(prompts, TASK.space)
    good = [s for s in out if s.error is None]
    bad = [s for s in out if s.error is not None]
    assert good, [s.error for s in out]  # SmolLM2 is near chance, but some answers are valid lists
    for s in good:
        assert s.prob_source == "answer" and list(s.probs) == list(TASK.label_names)
        chosen = answer_set(s.raw, TASK.space)
        assert chosen and s.probs == {n: float(n in chosen) for n in TASK.label_names}
    for s in bad:  # the row's error names what was wrong with its answer
        assert s.error.startswith("answer: ") and any(
            m in s.error for m in ("unknown label", "given twice", "empty label list", "empty name")), s.error
    assert be.stats["failed"] == len(bad) and be.stats["answer"] == len(good)
    assert be.stats["requests"] == len(prompts)  # a greedy answer is not asked again: it would repeat itself


def test_samples_give_smoothed_vote_shares_per_label(llama_server, goemotions: list) -> None:
    builder = PromptBuilder.create(TASK, shots=3)
    prompts = [builder.render(r.id, r.text) for r in goemotions[:3]]
    out = _backend(llama_server.base_url, samples=3).label_batch(prompts, TASK.space)
    for s in out:
        assert s.error is None, s.error
        assert s.prob_source == "votes" and s.samples == 3 and 1 <= len(s.answers) <= 3
        sets = [a.split(";") for a in s.answers]
        for name in TASK.label_names:
            votes = sum(name in x for x in sets)
            assert s.probs[name] == pytest.approx((votes + 0.5) / (len(sets) + 1.0))
    assert any(abs(sum(s.probs.values()) - 1.0) > 0.01 for s in out)  # per label, not a distribution


def test_cli_counts_failed_rows_and_retries_only_them(llama_server, goemotions: list, tmp_path: Path, cli,
                                                      capsys) -> None:
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"text": r.text}) + "\n" for r in goemotions), encoding="utf-8")
    out = tmp_path / "labels.jsonl"
    args = ("label", "--data", data, "--task", "emotions", "--out", out, "--backend", "openai", "--model",
            "smollm2", "--base-url", llama_server.base_url, "--shots", "3", "--no-progress")
    code = cli(*args)
    rows = read_jsonl(out)
    failed = [r for r in rows if r["error"]]
    done = [r for r in rows if not r["error"]]
    captured = capsys.readouterr()
    assert len(rows) == len(goemotions) and done
    for r in done:
        assert isinstance(r["label"], list) and r["label"] == [n for n in TASK.label_names if n in r["label"]]
        assert r["confidence"] == 1.0 and r["prob_source"] == "answer"
    if failed:
        assert code == 2 and captured.err.count("\n") == 1
        assert f"{len(failed)} of {len(goemotions)} items failed (first error: answer: " in captured.err
        assert all(r["label"] is None for r in failed)
        assert cli(*args) == 2  # the rerun asks only the failed rows again
        assert f"skipped {len(done)} (already done)" in capsys.readouterr().out
    else:
        assert code == 0
