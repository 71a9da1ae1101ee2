"""`llm2edge bench --static B`: a static-student bundle timed beside the bundle, each in its own worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llm2edge.errors import ConfigError
from llm2edge.pipeline.bench.run import BenchConfig, bench_systems


@pytest.fixture(scope="module")
def static_bundle(tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static bundle (random [vocab, 3] table, the MiniLM tokenizer without [CLS]/[SEP])."""
    from llm2edge.edge.bundle import read_bundle, write_manifest
    from llm2edge.export.static import build_static_onnx

    info = read_bundle(tiny)
    folder = tmp_path_factory.mktemp("static") / "bundle"
    folder.mkdir()
    spec = json.loads((tiny / "tokenizer.json").read_text(encoding="utf-8"))
    spec.update(post_processor=None, padding=None, truncation=None)
    (folder / "tokenizer.json").write_text(json.dumps(spec), encoding="utf-8")
    (folder / "config.json").write_text((tiny / "config.json").read_text(encoding="utf-8"), encoding="utf-8")
    table = np.random.default_rng(0).normal(size=(len(spec["model"]["vocab"]), 3)).astype(np.float32)
    build_static_onnx(table, np.zeros(3, dtype=np.float32), folder / "model.onnx")
    write_manifest(folder, labels=info.labels, max_length=64, source_model="test", quantization="none",
                   student="static")
    return folder


def test_static_rows_join_the_bundles_rows(tiny: Path, static_bundle: Path, tmp_path: Path) -> None:
    from llm2edge.edge.bundle import read_bundle

    config = BenchConfig(bundle=tiny, static=static_bundle, output=tmp_path, llm="none", threads=1,
                         progress=False)
    specs, _ = bench_systems(config, read_bundle(tiny))
    static = [s for s in specs if s.kind == "static"]
    assert [s.name for s in static] == ["static b1", "static b32"]
    assert {s.path for s in static} == {str(static_bundle)} and static[0].max_length == 64
    with pytest.raises(ConfigError, match="static-student bundle"):
        bench_systems(BenchConfig(bundle=tiny, static=tiny, output=tmp_path, llm="none", progress=False),
                      read_bundle(tiny))


def test_bench_command_times_the_static_bundle(tiny: Path, static_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "llm2edge", "bench", "--bundle", str(tiny), "--static",
                           str(static_bundle), "--llm", "none", "--output", str(out), "--n-texts", "40",
                           "--budget", "0.2", "--threads", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| static b1 |" in proc.stdout and "| static b32 |" in proc.stdout
    rows = {r["system"]: r for r in json.loads((out / "speed.json").read_text())["rows"]}
    assert rows["static b1"]["kind"] == "static" and rows["static b1"]["per_item_ms"] > 0
    assert "per item than static b1" in proc.stdout
