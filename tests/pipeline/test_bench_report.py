"""llm2edge.pipeline.bench.timing and .report: rows from call times, the table, ratios, and bench/gates.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from llm2edge.pipeline.bench.report import fmt_ms, ratio_sentences, speed_table, write_report
from llm2edge.pipeline.bench.spec import SpeedRow, SystemSpec
from llm2edge.pipeline.bench.timing import merge_rounds, plan_passes, plan_rounds, speed_row

REPO = Path(__file__).resolve().parents[2]


def test_speed_row_uses_median_call_over_texts_per_call() -> None:
    spec = SystemSpec(name="edge int8 b32", kind="edge", batch=32)
    row = speed_row(spec, [0.064, 0.032, 1.0])  # median 0.064 s for 32 texts
    assert row.per_item_ms == pytest.approx(2.0) and row.items_per_s == pytest.approx(500.0)
    assert row.rounds == 3 and row.per_call == 32


def test_plan_passes_times_whole_passes_so_every_system_sees_the_same_texts() -> None:
    # batch 1 over 256 texts: one whole pass for a fast and a slow student alike (not 200 vs 80 texts)
    assert plan_passes(0.01, 256, budget_s=2.0, min_rounds=10, max_rounds=512) == 256
    assert plan_passes(0.025, 256, budget_s=2.0, min_rounds=10, max_rounds=512) == 256
    # a fast system does as many whole passes as fit, up to max_rounds
    assert plan_passes(0.001, 256, budget_s=2.0, min_rounds=10, max_rounds=512) == 512
    # batch 32 (8 calls per pass) and one 256-text chunk per call (a pass is one call, min 2 calls)
    assert plan_passes(0.4, 8, budget_s=2.0, min_rounds=5, max_rounds=16) == 8
    assert plan_passes(3.0, 1, budget_s=2.0, min_rounds=2, max_rounds=5) == 2
    # an LLM at batch 1: a pass would take a minute, so the budget's prefix as before
    assert plan_passes(0.25, 256, budget_s=4.0, min_rounds=10, max_rounds=512) == 16
    # torch eager b1 with a slow first call (60 ms: a 15 s pass) still times the whole pass
    assert plan_passes(0.06, 256, budget_s=2.0, min_rounds=10, max_rounds=512) == 256


def test_merge_rounds_gives_one_row_per_system_at_its_median_round() -> None:
    def row(system: str, ms: float, rss: float) -> SpeedRow:
        return SpeedRow(system=system, kind="edge", batch=1, per_item_ms=ms, items_per_s=1000 / ms,
                        rounds=256, load_s=0.2, rss_mb=rss)

    # three rounds in turn; the second int8 process was 30% slower for its whole life
    rows = [row("int8", 8.0, 110), row("torch", 30.0, 600), row("int8", 10.4, 112), row("torch", 24.0, 610),
            row("int8", 8.2, 111), row("torch", 27.0, 605)]
    merged = {r.system: r for r in merge_rounds(rows)}
    assert list(merged) == ["int8", "torch"]
    assert merged["int8"].per_item_ms == 8.2 and merged["torch"].per_item_ms == 27.0
    assert merged["int8"].rounds == 768 and merged["int8"].rss_mb == 112
    assert merged["int8"].items_per_s == pytest.approx(1000 / 8.2)


def test_plan_rounds_fits_the_budget_within_bounds() -> None:
    assert plan_rounds(0.01, budget_s=1.0, min_rounds=10, max_rounds=500) == 100
    assert plan_rounds(0.5, budget_s=1.0, min_rounds=10, max_rounds=500) == 10
    assert plan_rounds(0.0, budget_s=1.0, min_rounds=10, max_rounds=500) == 500


def _row(name: str, ms: float, kind: str = "edge") -> SpeedRow:
    return SpeedRow(system=name, kind=kind, batch=1, per_item_ms=ms, items_per_s=1000 / ms, rounds=10)


def test_table_and_ratio_sentences() -> None:
    rows = [_row("edge int8 b1", 2.0), _row("torch eager b1", 10.0, "torch"), _row("edge int8 b32", 1.0)]
    table = speed_table(rows)
    assert "edge int8 b1 is N× faster" in table
    assert "| torch eager b1 | 1 | 1 | 10 | 100.0 | — | 5× |" in table
    assert "0.5× (faster)" in table
    sentences = ratio_sentences(rows)
    assert "edge int8 b1 is 5× faster per item than torch eager b1" in sentences
    assert "edge int8 b1 is 2× slower per item than edge int8 b32" in sentences
    assert ratio_sentences([_row("torch eager b1", 3.0)]) == []  # no reference: no ratios
    assert (fmt_ms(2.5), fmt_ms(1234.4)) == ("2.5", "1,234")


def test_write_report_files(tmp_path: Path) -> None:
    rows = [_row("edge fp32 b1", 2.0), _row("torch eager b1", 9.0, "torch")]
    result = write_report(rows, [("LLM (hf)", "why not")], tmp_path, reference="edge fp32 b1", threads=3)
    data = json.loads(result.json.read_text(encoding="utf-8"))
    assert data["reference"] == "edge fp32 b1" and data["machine"]["threads"] == 3
    assert [r["system"] for r in data["rows"]] == ["edge fp32 b1", "torch eager b1"]
    md = result.markdown.read_text(encoding="utf-8")
    assert "Threads per system: 3" in md and "- LLM (hf): why not" in md
    assert "edge fp32 b1 is 4.5× faster per item than torch eager b1" in md
    if importlib.util.find_spec("matplotlib"):
        assert result.plot is not None and result.plot.stat().st_size > 1000


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
                                             "edge fp32 b1": (6.0, 1), "torch eager b1": (15.0, 1),
                                             "edge int8 b32 stream 2 threads": (1.5, 256),
                                             "static b1": (0.1, 1)})
    assert gates.per_item_ms(good)["edge int8 b32 stream"] == pytest.approx(2.5)
    assert gates.main([str(good)]) == 0
    bad = _ci_json(tmp_path / "bad.json", {"edge int8 b1": (3.0, 1), "edge int8 b32 stream": (4.5, 256),
                                           "edge fp32 b1": (2.0, 1)})
    assert gates.main([str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 5  # one per violated gate: batching, int8, torch, static and 2 threads missing
    assert any("torch eager b1 not measured" in line for line in err)
    assert gates.main([str(tmp_path / "missing.json")]) == 2


def test_gates_take_the_median_round_of_a_system(tmp_path: Path) -> None:
    gates = _gates()
    path = tmp_path / "rounds.json"
    rounds = [("edge int8 b1", 8.0), ("torch eager b1", 30.0), ("edge int8 b1", 10.4),
              ("torch eager b1", 24.0), ("edge int8 b1", 8.2), ("torch eager b1", 27.0)]
    path.write_text(json.dumps({"benchmarks": [{"stats": {"median": ms / 1000},
                                                "extra_info": {"system": name, "per_call": 1}}
                                               for name, ms in rounds]}), encoding="utf-8")
    assert gates.per_item_ms(path) == pytest.approx({"edge int8 b1": 8.2, "torch eager b1": 27.0})


def test_int8_gates_ask_less_of_a_cpu_without_int8_dot_product(tmp_path: Path) -> None:
    gates = _gates()
    avx2 = tmp_path / "avx2"
    avx2.write_text("processor : 0\nflags : fpu sse4_2 avx avx2 fma\n", encoding="utf-8")
    vnni = tmp_path / "vnni"
    vnni.write_text("processor : 0\nflags : fpu avx2 avx512f avx512_vnni\n", encoding="utf-8")
    assert not gates.has_int8_dot(avx2) and gates.has_int8_dot(vnni)
    times = {"edge int8 b1": 10.0, "torch eager b1": 25.0, "edge fp32 b1": 14.0,
             "edge int8 b32 stream": 10.0, "edge int8 b32 stream 2 threads": 6.0, "static b1": 0.5}
    _, failed = gates.check(times, int8_dot=True)
    assert [line.split("'")[1] for line in failed] == ["edge beats torch", "int8 pays"]
    report, failed = gates.check(times, int8_dot=False)
    assert failed == [] and "bound >= 1.90x, CPU without int8 dot product" in "\n".join(report)
    times["edge fp32 b1"] = 11.0  # int8 barely pays (1.10x): fails on any CPU
    assert [line.split("'")[1] for line in gates.check(times, int8_dot=False)[1]] == ["int8 pays"]


def test_startup_gates_read_bench_startup_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gates = _gates()
    ci = _ci_json(tmp_path / "ci.json", {"edge int8 b1": (3.0, 1), "edge int8 b32 stream": (2.5, 256),
                                         "edge fp32 b1": (6.0, 1), "torch eager b1": (15.0, 1),
                                         "edge int8 b32 stream 2 threads": (1.5, 256), "static b1": (0.1, 1)})

    def startup(cpu: float, rss: float) -> str:
        path = tmp_path / f"startup-{cpu}-{rss}.json"
        path.write_text(json.dumps({"floor": {"cpu_s": 0.2, "rss_mb": 100.0},
                                    "predict": {"cpu_s": 0.2 * cpu, "rss_mb": 100.0 * rss},
                                    "cpu_ratio": cpu, "rss_ratio": rss}), encoding="utf-8")
        return str(path)

    assert gates.main([str(ci), startup(1.2, 1.04)]) == 0
    capsys.readouterr()
    assert gates.main([str(ci), startup(1.6, 1.3)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "start-up CPU" in err[0] and "start-up memory" in err[1]


def test_ladder_table_and_plot_from_a_bench_json(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("_bench_ladder", REPO / "bench" / "ladder.py")
    ladder = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ladder
    spec.loader.exec_module(ladder)
    path = _ci_json(tmp_path / "full.json", {"static b1": (0.1, 1), "static b32": (0.05, 32),
                                              "edge int8 b1": (2.5, 1), "edge int8 b32": (2.4, 32)})
    data = json.loads(path.read_text(encoding="utf-8"))
    data["benchmarks"][0]["extra_info"].update(load_s=0.4, size_mb=0.24)  # static b1: size and cold start
    path.write_text(json.dumps(data), encoding="utf-8")
    assert ladder.main([str(path), "--accuracy", "static=0.75,MiniLM int8=0.82", "--data", "MRF",
                        "--out", str(tmp_path / "ladder")]) == 0
    table = (tmp_path / "ladder.md").read_text(encoding="utf-8").splitlines()
    assert table[2].startswith("| static | 0.1 | 25× | 20,000 (b32) | 0.24 | 0.40 |")
    assert table[2].endswith("| 0.750 |")
    assert table[3].startswith("| MiniLM int8 | 2.5 | 1× | 417 (b32) | — | — |")
    assert len(table) == 4  # rungs not in the run are left out
    assert (tmp_path / "ladder.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        ladder.main([str(path), "--accuracy", "mystery=0.5"])
