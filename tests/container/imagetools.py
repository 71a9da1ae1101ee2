"""Helpers for the container tests (paths, subprocess runs, podman queries), shared by conftest and tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "scripts" / "container"
EDGE_TAG = os.environ.get("LLM2EDGE_EDGE_TAG", "localhost/llm2edge-edge:test")
HUB_TAG = os.environ.get("LLM2EDGE_HUB_TAG", "localhost/llm2edge-hub:test-cpu")


def required() -> bool:
    """True when CI said the container tests must run (LLM2EDGE_REQUIRE_CONTAINER=1)."""
    return os.environ.get("LLM2EDGE_REQUIRE_CONTAINER", "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    """Skip with the reason, or fail when the container tests are required."""
    if required():
        pytest.fail(f"LLM2EDGE_REQUIRE_CONTAINER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def run(cmd: list[str], *, timeout: float, input: str | None = None, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; on failure raise with the tail of its stderr."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd[:4])}... exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def image_size(tag: str) -> int:
    """The image's size in bytes as podman reports it (all layers, uncompressed)."""
    return int(run(["podman", "image", "inspect", "--format", "{{.Size}}", tag], timeout=60).stdout.strip())


def run_image(tag: str, *args: str, volumes: tuple[str, ...] = (), cpus: str | None = None,
              entrypoint: str | None = None, input: str | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the image (podman run, else chroot into its mounted files) and return the finished process."""
    cmd = [sys.executable, str(SCRIPTS / "run_image.py")]
    for v in volumes:
        cmd += ["-v", v]
    if cpus:
        cmd += ["--cpus", cpus]
    if entrypoint:
        cmd += ["--entrypoint", entrypoint]
    return run([*cmd, tag, *args], timeout=timeout, input=input)
