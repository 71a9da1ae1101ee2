"""llm2edge.pipeline.bench.run and .texts: the text sample and `llm2edge bench` itself (edge rows).

No timing is asserted here (speed is measured in bench/); these tests check the machinery on a tiny real
ONNX bundle (the `tiny` fixture in tests/pipeline/conftest.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm2edge.errors import ConfigError, DataError
from llm2edge.pipeline.bench.run import BenchConfig
from llm2edge.pipeline.bench.texts import DEFAULT_TEXTS, sample_texts


def test_sample_texts_is_fixed_and_sized(example_dir: Path) -> None:
    a = sample_texts(example_dir / "test.csv", n=50, seed=0)
    b = sample_texts(example_dir / "test.csv", n=50, seed=0)
    c = sample_texts(example_dir / "test.csv", n=50, seed=1)
    assert a == b and a != c and len(a) == 50 and len(set(a)) == 50
    short = sample_texts(None, n=20)
    assert len(short) == 20 and set(short) == set(DEFAULT_TEXTS)
    with pytest.raises(DataError):
        sample_texts(None, n=0)


def test_bench_imports_no_hub_or_torch() -> None:
    """The runner and the worker load neither torch nor the hub: the edge rows work on a base install."""
    code = ("import sys, llm2edge.pipeline.bench.run, llm2edge.pipeline.bench.worker; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'optimum') "
            "or m.startswith('llm2edge.hub')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_bench_command_edge_rows(tiny: Path, tmp_path: Path) -> None:
    """`llm2edge bench --llm none`: edge rows measured, torch rows skipped with the reason, files written."""
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "llm2edge", "bench", "--bundle", str(tiny), "--llm", "none",
                           "--output", str(out), "--n-texts", "64", "--budget", "0.2"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| edge fp32 b1 |" in proc.stdout and "| edge fp32 b32 |" in proc.stdout
    assert "skipped torch eager: no student model folder" in proc.stderr
    data = json.loads((out / "speed.json").read_text())
    assert data["reference"] == "edge fp32 b1"
    assert {r["system"] for r in data["rows"]} >= {"edge fp32 b1", "edge fp32 b32"}
    assert any(s["system"] == "torch eager" for s in data["skipped"])
    md = (out / "speed.md").read_text()
    assert "# Runtime (per item)" in md and "Skipped:" in md
    if importlib.util.find_spec("matplotlib"):
        assert (out / "speed.png").stat().st_size > 1000


def test_bench_rejects_bad_options(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="llm must be one of hf, server, none"):
        BenchConfig(bundle=tiny, output=tmp_path, llm="gpt", n_texts=8, progress=False)
    with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
        BenchConfig(bundle=tiny, output=tmp_path, threads=0, progress=False)
    with pytest.raises(ConfigError, match="budget_s must be positive"):
        BenchConfig(bundle=tiny, output=tmp_path, budget_s=0)
    assert not any(tmp_path.iterdir())  # nothing was written


def test_bench_on_base_install(tiny: Path, tmp_path: Path) -> None:
    """In the torch-free edge virtualenv (LLM2EDGE_EDGE_VENV) bench runs the edge rows and names the skips."""
    venv = os.environ.get("LLM2EDGE_EDGE_VENV")
    if not venv:
        pytest.skip("LLM2EDGE_EDGE_VENV (a base-only install, made by scripts/test.sh) is not set")
    exe = Path(venv) / "bin" / "llm2edge"
    out = tmp_path / "base"
    proc = subprocess.run([str(exe), "bench", "--bundle", str(tiny), "--output", str(out), "--n-texts", "64",
                           "--budget", "0.2"], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    md = (out / "speed.md").read_text()
    assert "| edge fp32 b1 |" in md
    assert "torch eager: torch is not installed" in md and "LLM (hf): torch is not installed" in md
    assert "matplotlib is not installed" in proc.stderr or (out / "speed.png").is_file()
