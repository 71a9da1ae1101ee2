"""The quick experiment end to end with the real embedded LLM labeler and the real student (slow)."""

from __future__ import annotations

import csv
import json

import pytest

pytestmark = pytest.mark.slow


def test_quick_experiment_end_to_end(repo, shared_data, tmp_path, cli, monkeypatch, capsys):
    pytest.importorskip("torch").set_num_threads(1)
    monkeypatch.setenv("LLM2EDGE_SHARED_DATA", str(shared_data))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "quick"
    assert cli("experiment", "--config", repo / "experiments" / "quick.toml", "--out", out) == 0
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["dataset"], r["intervention"]) for r in rows} == {
        (d, i) for d in ("mrf", "semeval2016_stance") for i in ("naive", "experts_confidence")}
    for row in rows:
        for key in ("llm_acc", "llm_wf1", "edge_acc", "edge_wf1"):
            assert 0.0 <= float(row[key]) <= 1.0
        assert int(row["n_test"]) == 80
        assert int(row["n_experts"]) == (12 if row["intervention"] == "experts_confidence" else 0)
    # the LLM labeled every item of both splits once, with probabilities that sum to 1
    for ds in ("mrf", "semeval2016_stance"):
        for split, n in (("train", 120), ("test", 80)):
            labels = [json.loads(x) for x in (out / "labels" / ds / "smollm2-0shot-cal" / f"{split}.jsonl")
                      .read_text().splitlines()]
            assert len(labels) == n and len({r["id"] for r in labels}) == n
            assert all(abs(sum(r["probs"].values()) - 1) < 1e-6 for r in labels if not r.get("error"))
    md = (out / "results.md").read_text()
    assert "| dataset | LLM labels | naive | experts_confidence |" in md and "| mrf |" in md
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    print(md)
    # a rerun calls neither the LLM nor the trainer again: everything comes from the caches
    before = {p: p.read_bytes() for p in (out / "labels").rglob("*.jsonl")}
    capsys.readouterr()
    assert cli("experiment", "--config", repo / "experiments" / "quick.toml", "--out", out) == 0
    err = capsys.readouterr().err
    assert "4 runs (4 cached)" in err and err.count(": 0 items newly labeled") == 2
    assert {p: p.read_bytes() for p in (out / "labels").rglob("*.jsonl")} == before
