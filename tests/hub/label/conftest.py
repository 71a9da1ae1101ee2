"""Fixtures for labeling tests: a real OpenAI-compatible server (llama.cpp) serving the embedded SmolLM2.

The server is `llama_cpp.server` from `llama-cpp-python[server]` (installed by `scripts/setup.sh
--with-server`). Without it the server tests skip with a reason; with LLM2EDGE_REQUIRE_SERVER=1 (set in
CI) they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import pytest

from llm2edge.errors import BackendError
from llm2edge.hub.label import server as label_server
from llm2edge.hub.label.server import free_port


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail when LLM2EDGE_REQUIRE_SERVER=1 says the server must be there."""
    if os.environ.get("LLM2EDGE_REQUIRE_SERVER") == "1":
        pytest.fail(f"LLM2EDGE_REQUIRE_SERVER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class LlamaServer:
    """A running llama.cpp server: `base_url` ends in /v1; `port` is its TCP port."""

    base_url: str
    port: int
    model: str
    log: Path


@contextlib.contextmanager
def run_llama_server(gguf: Path, log: Path, *extra: str) -> Iterator[LlamaServer]:
    """Run the product's llama_server (1 thread, free 127.0.0.1 port); a failed start fails with the log."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(label_server.llama_server(gguf, threads=1, log=log, extra_args=extra))
        except BackendError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            pytest.fail(f"{exc}\n{tail}", pytrace=False)
        port = urlsplit(url).port
        assert port is not None
        yield LlamaServer(base_url=url, port=port, model=label_server.MODEL_ALIAS, log=log)


def require_server() -> Path:
    """The GGUF to serve, after checking llama_cpp.server is importable (else skip, or fail in CI)."""
    reason = label_server.server_available()
    if reason:
        _unavailable(reason)
    from llm2edge.hub.models import default_llm_gguf

    try:
        return default_llm_gguf()
    except BackendError as exc:
        _unavailable(f"the embedded SmolLM2 GGUF is not available: {exc}")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A llama.cpp server serving the embedded SmolLM2 for the whole session (1 thread, 127.0.0.1)."""
    gguf = require_server()
    with run_llama_server(gguf, tmp_path_factory.mktemp("llama_server") / "server.log") as server:
        yield server


@pytest.fixture()
def auth_server(tmp_path: Path) -> Iterator[LlamaServer]:
    """A second llama.cpp server that demands the API key `sk-the-server-key`."""
    gguf = require_server()
    with run_llama_server(gguf, tmp_path / "auth.log", "--api_key", "sk-the-server-key") as server:
        yield server


@pytest.fixture()
def refused_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{free_port()}/v1"


@pytest.fixture(scope="session")
def fault_proxy_cls() -> type:
    """The FaultProxy class from faultproxy.py next to this file (tests run with --import-mode=importlib)."""
    path = Path(__file__).with_name("faultproxy.py")
    spec = importlib.util.spec_from_file_location("llm2edge_tests_faultproxy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.FaultProxy


@pytest.fixture(scope="module")
def backend() -> Iterator[Any]:
    """The real hf labeling backend (the embedded SmolLM2) on one torch thread, one per test module."""
    torch = pytest.importorskip("torch")
    from llm2edge.hub.label.hf_backend import HFBackend

    torch.set_num_threads(1)
    be = HFBackend(threads=1)
    yield be
    be.close()
