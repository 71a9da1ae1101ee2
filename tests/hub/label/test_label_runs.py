"""`llm2edge label` runs that must not look like success, against a real HTTP server on 127.0.0.1.

The server speaks the two OpenAI routes the backend uses (/v1/models, /v1/chat/completions). It answers
HTTP 500 to every item whose text contains FAIL (or to all of them), names the label "funny" for the
others, or holds each request open for a while (`delay`). That is what a broken or slow OpenAI-compatible
server does; the llama.cpp server tests (test_openai_backend.py) cover real completions.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("openai")

from llm2edge.hub.label.store import read_labels  # noqa: E402
from llm2edge.outputs import OutputLock, lock_path  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false", "OPENAI_API_KEY": "sk-test-key-not-used"}
TEXTS = ["a cat walks into a bar", "FAIL this one", "why did the chicken", "FAIL that one too"]


@contextlib.contextmanager
def openai_server(*, fail_all: bool = False, delay: float = 0.0, echo_key: bool = False) -> Iterator[str]:
    """A small OpenAI-compatible HTTP server on 127.0.0.1; yields its base URL (…/v1). With `echo_key` its
    answers repeat the request's Authorization header (as a careless debugging proxy might)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # /v1/models
            self._send(200, {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "test"}]})

        def do_POST(self) -> None:  # /v1/chat/completions
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            said = " ".join(str(m.get("content", "")) for m in body["messages"])
            if delay:
                time.sleep(delay)
            if fail_all or "FAIL" in said:
                self._send(500, {"error": {"message": "the model crashed", "type": "server_error"}})
                return
            content = f"funny\nDebug: you sent {self.headers.get('Authorization')}" if echo_key else "funny"
            self._send(200, {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
                             "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                          "message": {"role": "assistant", "content": content}}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def _data(tmp_path: Path, texts: list[str]) -> Path:
    path = tmp_path / "items.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([t] for t in texts)
    return path


def _args(data: Path, out: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "llm2edge", "label", "--data", str(data), "--task", "humor", "--out",
            str(out), "--backend", "openai", "--model", "m", "--base-url", url, "--max-retries", "0",
            "--timeout", "30", "--no-progress", *extra]


def _run(args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=timeout)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("llm2edge: error:")]


def test_a_run_where_every_request_failed_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    with openai_server(fail_all=True) as url:
        res = _run(_args(_data(tmp_path, TEXTS), out, url))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "labeled 0, failed 4" in res.stdout
    (line,) = _error_lines(res.stderr)
    assert f"{out}: nothing labeled, all 4 items failed" in line and "HTTP 500" in line
    assert "rerun the same command" in line and "Traceback" not in res.stderr
    assert [r["error"] is not None for r in read_labels(out)] == [True] * 4  # kept, to be retried


def test_a_partly_failed_run_exits_2_with_the_count_and_a_retry_skips_the_finished(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    data = _data(tmp_path, TEXTS)
    with openai_server() as url:
        res = _run(_args(data, out, url))
        assert res.returncode == 2, (res.stdout, res.stderr)
        assert "labeled 2, failed 2" in res.stdout
        (line,) = _error_lines(res.stderr)
        assert f"{out}: 2 of 4 items failed" in line and "rerun the same command" in line
        assert [r["label"] for r in read_labels(out)] == ["funny", None, "funny", None]
        again = _run(_args(data, out, url))  # the retry: the two finished items are skipped
    assert again.returncode == 2 and "labeled 0, failed 2, skipped 2" in again.stdout
    assert f"{out}: 2 of 4 items failed" in _error_lines(again.stderr)[0]


def test_second_run_on_the_same_output_fails_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    data = _data(tmp_path, TEXTS[:1])
    with openai_server(delay=20.0) as url:  # the first run waits on the server, holding its lock
        first = subprocess.Popen(_args(data, out, url), env=ENV, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        try:
            lock = lock_path(out)
            deadline = time.monotonic() + 120
            while not (lock.is_file() and lock.read_text().strip() == str(first.pid)):
                assert first.poll() is None, first.stderr.read() if first.stderr else ""
                assert time.monotonic() < deadline, "the first run never took its lock"
                time.sleep(0.05)
            t0 = time.monotonic()
            second = _run(_args(data, out, url), timeout=60)
            assert time.monotonic() - t0 < 30  # refused at once, before any request
            assert second.returncode == 2, (second.stdout, second.stderr)
            (line,) = _error_lines(second.stderr)
            assert f"{out}: another label run (pid {first.pid}) is writing this file" in line
            assert first.poll() is None  # the holder is unharmed
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=60)
    with OutputLock(out):  # kill -9 left the lock file but not the lock
        pass


def test_dry_run_takes_no_lock(tmp_path: Path) -> None:
    out = tmp_path / "labels.jsonl"
    with OutputLock(out):
        res = _run(_args(_data(tmp_path, TEXTS), out, "http://127.0.0.1:9/v1", "--dry-run"))
    assert res.returncode == 0, res.stderr
    assert "items: 4 (4 to label" in res.stdout


def test_threads_zero_is_a_config_error(tmp_path: Path) -> None:
    from llm2edge.errors import ConfigError
    from llm2edge.hub.label.config import LabelConfig

    with pytest.raises(ConfigError, match="threads"):
        LabelConfig(data=tmp_path / "d.csv", task="humor", out=tmp_path / "l.jsonl", threads=0)
    res = _run(_args(_data(tmp_path, TEXTS), tmp_path / "l.jsonl", "http://127.0.0.1:9/v1", "--threads", "0",
                     "--dry-run"))
    assert res.returncode == 2 and "--threads" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "l.jsonl").exists()


def test_raw_answer_is_stored_without_the_key(monkeypatch):
    """labels.jsonl's `raw` (the server's answer) is masked like error strings, even when the server echoes
    the API key (issue 14.6)."""
    from llm2edge.hub.label.backend import LabelSpace, Prompt
    from llm2edge.hub.label.openai_backend import OpenAIBackend

    key = "sk-llm2edge-echo-7f3a9c2b1d"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    prompt = Prompt(item_id="a", messages=({"role": "user", "content": "funny or not?"},))
    with openai_server(echo_key=True) as url:
        backend = OpenAIBackend(model="m", base_url=url, mode="answer", concurrency=1, timeout=10.0)
        (scored,) = backend.label_batch([prompt], LabelSpace(names=("funny", "not_funny")))
    assert scored.error is None and scored.probs == {"funny": 1.0, "not_funny": 0.0}
    assert key not in (scored.raw or "")
    assert scored.raw == "funny\nDebug: you sent Bearer ***"  # the answer kept, several lines too


def test_ctrl_c_is_one_line_with_what_is_labeled_and_exit_130(tmp_path: Path) -> None:
    """Issue 24: Ctrl-C on any command is one line and exit 130; label says how far it got."""
    out = tmp_path / "labels.jsonl"
    data = _data(tmp_path, [f"joke number {i}" for i in range(40)])
    with openai_server(delay=0.2) as url:
        proc = subprocess.Popen(_args(data, out, url, "--batch-size", "1", "--concurrency", "1"), env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while not (out.is_file() and out.read_bytes().count(b"\n") >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done = len(read_labels(out))
    assert err.splitlines() == [f"llm2edge: interrupted: {done} of 40 items labeled in {out}; rerun the same "
                                "command to continue (finished items are skipped)"]
    assert 2 <= done < 40 and not lock_path(out).exists()
