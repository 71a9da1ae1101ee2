"""A local OpenAI-compatible server: llama.cpp (`python -m llama_cpp.server`) serving a GGUF on loopback.

Used by `llm2edge bench --llm server` (llm2edge.pipeline.bench), the bench/ suite and the labeling tests.
The server comes from `llama-cpp-python[server]` (`scripts/setup.sh --with-server`); `server_available()`
says why it cannot start here. Only the standard library is imported at the top.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from llm2edge.errors import BackendError

#: The name the served model answers to (`model=` in OpenAI requests).
MODEL_ALIAS = "smollm2"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that was free a moment ago (nothing listens on it after return)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_available() -> str | None:
    """None when llama_cpp.server can be started here, else the reason why not."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama_cpp is not installed (scripts/setup.sh --with-server installs llama-cpp-python[server])"
    try:
        import llama_cpp.server  # noqa: F401  (the [server] extra: fastapi, uvicorn, ...)
    except ImportError as exc:
        return f"llama_cpp.server cannot be imported ({exc}): install llama-cpp-python[server]"
    return None


def _log_tail(log: Path, lines: int = 1) -> str:
    """The last `lines` non-empty lines of the server log, joined into one line."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    return " ".join(line.strip() for line in text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def llama_server(model: str | Path | None = None, *, host: str = "127.0.0.1", port: int | None = None,
                 threads: int = 1, n_ctx: int = 2048, log: str | Path | None = None,
                 extra_args: Sequence[str] = (), ready_timeout: float = 120.0) -> Iterator[str]:
    """Serve a GGUF (default: the embedded SmolLM2) until the block ends; yields the base URL ending in /v1.

    Waits until GET /v1/models answers (any HTTP status, e.g. 401 with --api_key, counts as up). The output
    goes to `log` (a temporary file when None). Raises BackendError when the server exits early or is not
    ready after `ready_timeout` seconds. The server is terminated (killed after 15 s) on the way out.
    """
    reason = server_available()
    if reason:
        raise BackendError(reason)
    if model is None:
        from llm2edge.hub.models import default_llm_gguf

        model = default_llm_gguf()
    port = port or free_port(host)
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
           "--host", host, "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
           "--n_threads_batch", str(threads), "--chat_format", "chatml", "--verbose", "False", *extra_args]
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = str(threads)
    log_path = Path(log) if log else Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://{host}:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise BackendError(f"llama.cpp server exited with {proc.returncode} (log: {log_path}): "
                                   f"{_log_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{base}/v1/models", timeout=2):
                    break
            except urllib.error.HTTPError:  # it answers (401 with --api_key): up
                break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise BackendError(f"llama.cpp server not ready after {ready_timeout:.0f} s "
                                   f"(log: {log_path})")
            time.sleep(0.2)
        yield f"{base}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
