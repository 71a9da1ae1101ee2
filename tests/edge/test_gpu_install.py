"""The README's GPU install scheme, for real: onnxruntime-gpu replaces the CPU wheel in a fresh venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output when `check` and it exits non-zero."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def test_gpu_extra_swap_gives_cuda_build_and_no_silent_fallback(tiny_bundle, tmp_path: Path) -> None:
    """`llm2edge[gpu]` + the README swap: the module is the GPU build, CPU still works, CUDA fails loudly."""
    venv = tmp_path / "gpu-venv"
    _run(sys.executable, "-m", "venv", str(venv))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "-q"]
    # README "GPU", verbatim in spirit: the extra, then the GPU wheel instead of the CPU one.
    _run(*pip, "install", f"{REPO}[gpu]")
    _run(*pip, "uninstall", "-y", "onnxruntime")
    _run(*pip, "install", "--force-reinstall", "--no-deps", "onnxruntime-gpu")
    py = str(venv / "bin" / "python")
    providers = _run(py, "-c", "import onnxruntime as o; print(o.get_available_providers())").stdout
    assert "CUDAExecutionProvider" in providers

    cli = str(venv / "bin" / "llm2edge")
    ok = _run(cli, "predict", "--bundle", str(tiny_bundle.path), "--provider", "cpu", "a joke about cats")
    assert '"label"' in ok.stdout
    has_gpu = Path("/dev/nvidia0").exists()
    cuda = _run(cli, "predict", "--bundle", str(tiny_bundle.path), "--provider", "cuda", "x", check=False)
    if has_gpu:
        assert cuda.returncode == 0, cuda.stderr
    else:  # no GPU here: a one-line error, exit 2, never a silent CPU run
        assert cuda.returncode == 2, cuda.stderr
        errors = [line for line in cuda.stderr.splitlines() if line.startswith("llm2edge: error:")]
        assert len(errors) == 1 and "CUDAExecutionProvider" in errors[0], cuda.stderr
