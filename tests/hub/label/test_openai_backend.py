"""The OpenAI-compatible backend against a real llama.cpp server, directly and through a fault proxy."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from llm2edge.errors import BackendError
from llm2edge.hub.label.answers import match_answer
from llm2edge.hub.label.backend import LabelSpace, Prompt
from llm2edge.hub.label.openai_backend import OpenAIBackend

pytestmark = pytest.mark.server

MRF = LabelSpace(names=("misinfo", "real"))


def mrf_rows(shared_data: Path, n: int) -> list[dict[str, str]]:
    """The first `n` rows of the mrf test split."""
    with open(shared_data / "mrf" / "test.csv", newline="", encoding="utf-8") as f:
        return [row for _, row in zip(range(n), csv.DictReader(f))]


def mrf_prompt(i: int, text: str) -> Prompt:
    """A zero-shot misinformation prompt in chat format (built by hand: no dependency on prompts.py)."""
    return Prompt(item_id=f"mrf-{i}", messages=(
        {"role": "system", "content": "You classify news headlines."},
        {"role": "user", "content": f"Headline: {text}\nIs this headline misinformation or real news? "
                                    "Answer with one word: misinfo or real."},
    ))


def backend(url: str, **kw: object) -> OpenAIBackend:
    """A backend for the test server (short timeouts: the model answers in well under a second)."""
    kw = {"model": "smollm2", "base_url": url, "concurrency": 4, "timeout": 30.0, **kw}
    return OpenAIBackend(**kw)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def mrf_direct(llama_server, shared_data: Path) -> tuple[list[Prompt], list]:
    """20 mrf prompts and their labels straight from the server (shared by the tests that compare)."""
    prompts = [mrf_prompt(i, r["text"]) for i, r in enumerate(mrf_rows(shared_data, 20))]
    return prompts, backend(llama_server.base_url).label_batch(prompts, MRF)


@pytest.fixture()
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A unique marker set as OPENAI_API_KEY, to prove it never leaks into outputs."""
    key = f"sk-llm2edge-marker-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    return key


def assert_distribution(probs: dict[str, float] | None, space: LabelSpace) -> None:
    """`probs` is a distribution over exactly the labels of `space`."""
    assert probs is not None and set(probs) == set(space.names)
    assert all(0.0 <= p <= 1.0 for p in probs.values())
    assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-9)


# -- real server ----------------------------------------------------------------------------------------
def test_logprobs_distribution_on_mrf(llama_server, mrf_direct, secret: str, capfd) -> None:
    prompts = mrf_direct[0][:8]
    be = backend(llama_server.base_url)
    out = be.label_batch(prompts, MRF)  # (the key is set now: it must not leak)
    for s, d in zip(out, mrf_direct[1]):  # temperature 0: the same answers (up to KV-reuse float noise)
        assert s.raw == d.raw and s.probs == pytest.approx(d.probs, abs=1e-4)
    prompts, out = mrf_direct
    assert [s.item_id for s in out] == [p.item_id for p in prompts]
    for s in out:
        assert s.error is None, s.error
        assert s.prob_source == "logprobs"
        assert_distribution(s.probs, MRF)
        assert s.logprobs is not None and set(s.logprobs) == set(MRF.names)
        assert match_answer(s.raw or "", MRF) in MRF.names  # the grammar kept the answer to a label
    assert len({round(s.probs["real"], 6) for s in out}) > 1  # the distribution depends on the item
    text = repr(out) + "".join(capfd.readouterr())
    assert secret not in text


def test_answer_mode_gives_probability_one(llama_server, shared_data: Path) -> None:
    rows = mrf_rows(shared_data, 6)
    out = backend(llama_server.base_url, mode="answer").label_batch(
        [mrf_prompt(i, r["text"]) for i, r in enumerate(rows)], MRF)
    for s in out:
        assert s.error is None and s.prob_source == "answer" and s.logprobs is None
        assert sorted(s.probs.values()) == [0.0, 1.0]
        assert s.probs[match_answer(s.raw or "", MRF)] == 1.0


def test_label_split_into_tokens(llama_server, shared_data: Path) -> None:
    """SmolLM2 writes `misinfo` as `mis`+`info`: the label's logprob adds its tokens along the path."""
    import openai

    rows = mrf_rows(shared_data, 4)
    prompts = [mrf_prompt(i, r["text"]) for i, r in enumerate(rows)]
    out = backend(llama_server.base_url).label_batch(prompts, MRF)
    split = [(p, s) for p, s in zip(prompts, out) if match_answer(s.raw or "", MRF) == "misinfo"]
    assert split, [s.raw for s in out]
    prompt, scored = split[0]
    assert scored.error is None and scored.prob_source == "logprobs"
    assert_distribution(scored.probs, MRF)
    # the same request by hand: the answer really is split, and the label's logprob is its path's sum
    # plus the first-position alternatives that begin the label (other cases, other tokenizations)
    client = openai.OpenAI(base_url=llama_server.base_url, api_key="sk-no-key")
    resp = client.chat.completions.create(
        model="smollm2", messages=list(prompt.messages), max_tokens=16, temperature=0.0, logprobs=True,
        top_logprobs=20, **OpenAIBackend._constraint_kwargs("grammar", MRF))
    content = resp.choices[0].logprobs.content
    assert len(content) >= 2 and "".join(t.token for t in content) == scored.raw
    first = content[0]
    others = [a.logprob for a in first.top_logprobs if a.token != first.token
              and a.token.strip() and "misinfo".startswith(a.token.strip().lower())]
    expected = math.log(math.exp(sum(t.logprob for t in content)) + sum(math.exp(lp) for lp in others))
    assert scored.logprobs["misinfo"] == pytest.approx(expected, abs=1e-4)
    assert sum(t.logprob for t in content) < first.logprob  # the later token's logprob was added


def test_cot_scores_the_label_after_answer(llama_server, shared_data: Path) -> None:
    rows = mrf_rows(shared_data, 2)
    out = backend(llama_server.base_url, cot_max_tokens=96).label_batch(
        [mrf_prompt(i, r["text"]) for i, r in enumerate(rows)], MRF, cot="Consider the source and tone.")
    for s in out:
        assert s.error is None, s.error
        assert s.prob_source in ("logprobs", "answer")
        assert_distribution(s.probs, MRF)
        assert s.raw and len(s.raw) > 10  # the reasoning is kept


# -- faults ---------------------------------------------------------------------------------------------
def test_fault_proxy_every_item_labeled_or_failed_once(mrf_direct, llama_server, secret: str,
                                                       fault_proxy_cls, capfd) -> None:
    prompts, direct_out = mrf_direct
    direct = {s.item_id: s for s in direct_out}
    timeout = 10.0  # well above a request's latency on a busy 2-core machine (1-2.5 s)
    with fault_proxy_cls(llama_server.port, fault_rate=0.3, seed=3, delay=timeout + 1) as proxy:
        be = backend(proxy.url + "/v1", concurrency=2, timeout=timeout, max_retries=1, retry_rounds=2,
                     retry_backoff=0.2)
        out = be.label_batch(prompts, MRF)
    counts = dict(proxy.counts)
    assert all(counts.get(f, 0) > 0 for f in ("429", "500", "delay", "drop")), counts
    assert [s.item_id for s in out] == [p.item_id for p in prompts]  # one result per item, in order
    ok = [s for s in out if s.error is None]
    assert len(ok) >= len(out) // 2, [s.error for s in out]
    for s in out:
        if s.error is None:  # a faulted request never leaks into a result: same as without the proxy
            assert s.prob_source == "logprobs"
            for label in MRF.names:
                assert s.probs[label] == pytest.approx(direct[s.item_id].probs[label], abs=1e-3)
        else:
            assert "\n" not in s.error and s.probs is None
    assert secret not in repr(out) + "".join(capfd.readouterr())


def test_server_down_raises_one_line_backend_error(refused_url: str, secret: str) -> None:
    url = refused_url
    be = OpenAIBackend(model="m", base_url=url, timeout=2.0, max_retries=1, retry_rounds=1, retry_backoff=0.1)
    with pytest.raises(BackendError) as err:
        be.label_batch([mrf_prompt(i, "Some headline") for i in range(3)], MRF)
    msg = str(err.value)
    assert url in msg and "\n" not in msg and "all 3 items failed" in msg
    assert secret not in msg


def test_wrong_key_is_refused_without_leaking_it(auth_server, secret: str, capfd) -> None:
    with pytest.raises(BackendError) as err:
        backend(auth_server.base_url, retry_rounds=0).label_batch([mrf_prompt(0, "Some headline")], MRF)
    msg = str(err.value)
    assert "OPENAI_API_KEY" in msg and auth_server.base_url in msg and "\n" not in msg
    assert secret not in msg + "".join(capfd.readouterr())


# -- the `llm2edge label` CLI end to end ----------------------------------------------------------------
def run_cli(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    """`llm2edge label ...` in a subprocess with OPENAI_API_KEY=`key`."""
    env = {**os.environ, "OPENAI_API_KEY": key, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "llm2edge", "label", *args], capture_output=True, text=True,
                          env=env, timeout=600)


def read_rows(path: Path) -> list[dict]:
    """The rows of a labels file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_cli_twice_through_fault_proxy(llama_server, shared_data: Path, fault_proxy_cls, tmp_path: Path,
                                       secret: str) -> None:
    """Two runs through the fault proxy: one row per item each time; the second retries only the failures."""
    n = 12
    data = shared_data / "mrf" / "test.csv"
    out = tmp_path / "labels.jsonl"
    common = ["--data", str(data), "--task", "misinfo", "--out", str(out), "--backend", "openai",
              "--model", "smollm2", "--limit", str(n), "--shots", "2", "--concurrency", "1",
              "--timeout", "12", "--no-progress"]
    # run 1: 30% faults (no stalls: each costs a whole timeout, test_fault_proxy_... covers them), then an
    # outage after 6 forwarded requests, so that some items fail after all retries
    with fault_proxy_cls(llama_server.port, fault_rate=0.3, seed=11, faults=("429", "500", "drop"),
                         outage_after=6) as proxy:
        first = run_cli(*common, "--base-url", proxy.url + "/v1", "--max-retries", "0", key=secret)
    rows1 = read_rows(out)
    assert len(rows1) == n and len({r["id"] for r in rows1}) == n
    failed1 = {r["id"] for r in rows1 if r["error"]}
    assert failed1 and len(failed1) < n, (dict(proxy.counts), [r["error"] for r in rows1])
    # a partly failed run exits 2 with the count and how to retry (its summary still on stdout)
    assert first.returncode == 2, (dict(proxy.counts), first.stderr[-2000:])
    assert f"{len(failed1)} of {n} items failed" in first.stderr and "rerun the same command" in first.stderr
    assert all("\n" not in r["error"] for r in rows1 if r["error"])
    # run 2: ordinary faults; finished items are skipped, failed ones retried
    with fault_proxy_cls(llama_server.port, fault_rate=0.3, seed=12, delay=13.0) as proxy2:
        second = run_cli(*common, "--base-url", proxy2.url + "/v1", "--max-retries", "1", key=secret)
    assert f"skipped {n - len(failed1)}" in second.stdout
    rows2 = read_rows(out)
    left = sum(1 for r in rows2 if r["error"])
    assert second.returncode == (2 if left else 0), (dict(proxy2.counts), second.stderr[-2000:])
    assert [r["id"] for r in rows2] == [r["id"] for r in rows1]  # exactly one row per item, same order
    before = {r["id"]: r for r in rows1}
    for r in rows2:
        if r["id"] not in failed1:
            assert r == before[r["id"]]  # finished work is never redone
    assert sum(proxy2.counts.values()) >= len(failed1) + 1  # (+1: the models list)
    assert sum(1 for r in rows2 if not r["error"]) > n - len(failed1)  # some failures were recovered
    for r in rows2:
        if not r["error"]:
            assert math.isclose(sum(r["probs"].values()), 1.0, abs_tol=1e-6)
    blob = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert secret not in blob + first.stdout + first.stderr + second.stdout + second.stderr


def test_cli_server_down_exits_2_with_one_line(shared_data: Path, refused_url: str, tmp_path: Path,
                                               secret: str) -> None:
    out = tmp_path / "labels.jsonl"
    res = run_cli("--data", str(shared_data / "mrf" / "test.csv"), "--task", "misinfo", "--out", str(out),
                  "--backend", "openai", "--model", "m", "--base-url", refused_url, "--limit", "3",
                  "--timeout", "2", "--max-retries", "0", "--no-progress", key=secret)
    assert res.returncode == 2, (res.stdout, res.stderr)
    errors = [line for line in res.stderr.splitlines() if line.startswith("llm2edge: error:")]
    assert len(errors) == 1 and refused_url in errors[0] and "Traceback" not in res.stderr
    blob = res.stdout + res.stderr + "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*")
                                             if p.is_file())
    assert secret not in blob
