"""The API key never reaches labels.jsonl's `raw` field, even from a server that echoes it (issue 14.6).

A real HTTP server on 127.0.0.1 plays an OpenAI-compatible endpoint that puts the request's Authorization
header into its answer; the label run stores the answer as `raw`, masked like error strings already are.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm2edge.hub.label.backend import LabelSpace, Prompt
from llm2edge.hub.label.openai_backend import OpenAIBackend


class _Echo(BaseHTTPRequestHandler):
    """Answers every chat completion with a label followed by the Authorization header it received."""

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # /v1/models
        self._send({"object": "list", "data": [{"id": "echo", "object": "model", "owned_by": "echo"}]})

    def do_POST(self) -> None:  # /v1/chat/completions
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        content = f"misinfo\nDebug: you sent {self.headers.get('Authorization')}"
        self._send({"id": "c1", "object": "chat.completion", "created": 0, "model": "echo",
                    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                 "message": {"role": "assistant", "content": content}}]})


@pytest.fixture()
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def test_raw_answer_is_stored_without_the_key(echo_url, monkeypatch):
    key = "sk-llm2edge-echo-7f3a9c2b1d"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    backend = OpenAIBackend(model="echo", base_url=echo_url, mode="answer", concurrency=1, timeout=10.0)
    prompt = Prompt(item_id="a", messages=({"role": "user", "content": "misinfo or real?"},))
    (scored,) = backend.label_batch([prompt], LabelSpace(names=("misinfo", "real")))
    assert scored.error is None and scored.probs == {"misinfo": 1.0, "real": 0.0}
    assert key not in (scored.raw or "")
    assert scored.raw == "misinfo\nDebug: you sent Bearer ***"  # the answer kept, several lines too
