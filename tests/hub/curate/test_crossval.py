"""Confidence without probabilities: `sample-experts --by crossval` and `soft-labels --from crossval|mix` on
real recorded gpt-3.5-turbo answers (bare labels), and what an expert sample is worth when gold is known
(`merge-experts --simulate-from`: the LLM's error rate inside the sample vs overall vs a random sample)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

from llm2edge.errors import ConfigError, DataError
from llm2edge.hub.curate.experts import select_experts
from llm2edge.hub.curate.gold import sample_error_rates
from llm2edge.hub.curate.oof import CrossvalConfig, label_support, oof_probs
from llm2edge.hub.curate.rows import load_labels
from llm2edge.hub.curate.soft import build_soft_labels
from llm2edge.records import read_jsonl

RECORDED = Path(os.environ.get("LLM2EDGE_RECORDED_TEACHER",
                               Path(__file__).resolve().parents[3].parent / "shared" / "recorded_teacher"))
EMOTIONS = "anger,fear,joy,love,sadness,surprise"


@pytest.fixture(scope="module")
def chatgpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """gpt-3.5-turbo's recorded emotion_dair answers imported as labels (bare answers), and the recorded
    file (its gold_label column is the gold)."""
    src = RECORDED / "emotion_dair__chatgpt.csv"
    if not src.is_file():
        pytest.skip(f"recorded teacher answers not found at {RECORDED}")
    from llm2edge.hub.label.importer import ImportConfig, import_labels

    out = tmp_path_factory.mktemp("chatgpt") / "labels.jsonl"
    import_labels(ImportConfig(data=src, out=out, labels=EMOTIONS, label_col="llm_label",
                               model_name="gpt-3.5-turbo"))
    return out, src


@pytest.fixture(scope="module")
def features(chatgpt: tuple[Path, Path]) -> np.ndarray:
    """Frozen MiniLM embeddings of the imported rows (computed once for the module)."""
    from llm2edge.hub.curate.embed import embed_rows

    return embed_rows(load_labels(chatgpt[0]).rows, threads=1)


def test_crossval_sample_finds_more_llm_errors_than_random(chatgpt, tmp_path, cli, capsys):
    labels, src = chatgpt
    rows = load_labels(labels).rows
    assert {r["prob_source"] for r in rows} == {"answer"}  # bare answers: one-hot, no confidence
    picks, rates = {}, {}
    for name, args in (("crossval", ["--by", "crossval", "--threads", "1"]),
                       ("random", ["--strategy", "random"])):
        folder = tmp_path / name
        assert cli("sample-experts", "--labels", labels, "--out", folder, "--fraction", "0.1", *args) == 0
        picks[name] = json.loads((folder / "sample.json").read_text())["ids"]
        merged = tmp_path / f"{name}.jsonl"
        assert cli("merge-experts", "--labels", labels, "--reviewed", folder, "--simulate-from", src,
                   "--gold-label-col", "gold_label", "--out", merged) == 0
        line = "".join(capsys.readouterr())  # (say: stderr)
        report = json.loads((tmp_path / f"{name}.report.json").read_text())
        rates[name] = r = report["error_rates"]
        assert r["rows"] == 498 and r["sampled"] == 50 and r["errors"] == 268  # summary.csv: acc 0.4618
        assert r["ratio"] == pytest.approx(r["rate_sampled"] / r["rate_overall"], abs=1e-3)
        assert r["rate_sampled"] == pytest.approx(r["errors_sampled"] / 50)
        assert f"LLM error rate {r['rate_sampled']:.3f} in the expert sample vs 0.538 overall" in line
        assert "seeded random sample of 50" in line and f"report: {tmp_path / name}.report.json" in line
        # the merged rows: the experts' (gold) labels, and the LLM's errors among them as counted
        experts = [row for row in read_jsonl(merged) if row["source"] == "expert"]
        assert sum(row["llm_label"] != row["label"] for row in experts) == r["errors_sampled"]
    assert len(picks["crossval"]) == len(picks["random"]) == 50
    assert len(set(picks["crossval"]) & set(picks["random"])) < 25  # other items than chance picks
    assert rates["crossval"]["ratio"] > 1.2 and rates["crossval"]["p_value"] < 0.01
    assert rates["crossval"]["rate_sampled"] > rates["random"]["rate_sampled"]
    # the LLM's own confidence cannot rank bare answers: said, not silently a random sample
    assert cli("sample-experts", "--labels", labels, "--out", tmp_path / "conf") == 0
    assert "warning: every row has the same confidence score" in capsys.readouterr().err


def test_crossval_review_files_rank_by_label_support(chatgpt, features, tmp_path):
    from llm2edge.hub.curate.experts import SampleConfig, sample_experts

    labels, _ = chatgpt
    data = load_labels(labels)
    out = tmp_path / "review"
    sample_experts(SampleConfig(labels=labels, out=out, by="crossval", stratify=True,
                                crossval=CrossvalConfig(threads=1, progress=False)))
    with (out / "review.csv").open(encoding="utf-8", newline="") as handle:
        review = list(csv.DictReader(handle))
    assert list(review[0]) == ["id", "text", "llm_label", "crossval", "expert_label"]
    scores = [float(r["crossval"]) for r in review]
    assert scores == sorted(scores) and len(review) == 50  # least supported first
    support = label_support(data.rows, data.labels, oof_probs(data.rows, data.labels, features=features))
    by_id = {row["id"]: float(s) for row, s in zip(data.rows, support)}
    assert scores == pytest.approx([by_id[r["id"]] for r in review], abs=1e-4)
    assert {r["llm_label"] for r in review} == set(data.labels)  # --stratify: every LLM label has a share
    tasks = json.loads((out / "label_studio.json").read_text())
    assert [t["predictions"][0]["score"] for t in tasks] == pytest.approx(scores, abs=1e-6)
    meta = json.loads((out / "sample.json").read_text())
    assert meta["by"] == "crossval" and meta["folds"] == 5
    # support is relative to the label's typical row: its mean over each label's rows is 1
    y = np.array([data.labels.index(r["label"]) for r in data.rows])
    assert all(support[y == j].mean() == pytest.approx(1.0) for j in np.unique(y))
    with pytest.raises(ConfigError, match="by crossval ranks by out-of-fold scores"):
        select_experts(data.rows, data.labels, by="crossval")


def test_soft_labels_from_crossval_and_mix(chatgpt, features, tmp_path, cli, capsys):
    labels, _ = chatgpt
    data = load_labels(labels)
    oof = oof_probs(data.rows, data.labels, features=features)
    assert cli("soft-labels", "--labels", labels, "--out", tmp_path / "mix.jsonl", "--from", "mix",
               "--threads", "1") == 0
    assert "from mix probabilities" in "".join(capsys.readouterr())
    mixed = read_jsonl(tmp_path / "mix.jsonl")
    crossval = build_soft_labels(data.rows, 0.0, data.labels, source="crossval", oof=oof)
    llm = build_soft_labels(data.rows, 0.0, data.labels)
    for m, c, one, o in zip(mixed, crossval, llm, oof):
        assert one["probs"][one["label"]] == 1.0  # a bare answer: one-hot
        assert [c["probs"][n] for n in data.labels] == pytest.approx(list(o))
        assert [m["probs"][n] for n in data.labels] == pytest.approx(
            [(one["probs"][n] + c["probs"][n]) / 2 for n in data.labels], abs=1e-5)
        assert m["probs"][m["label"]] >= 0.5 and m["soft_from"] == "mix" and c["soft_from"] == "crossval"
        assert sum(m["probs"].values()) == pytest.approx(1.0)
    # crossval soft targets are not the LLM's: they disagree with its label on part of the rows
    disagree = sum(max(c["probs"], key=c["probs"].get) != c["label"] for c in crossval)
    assert 0 < disagree < len(crossval)
    # expert rows stay one-hot whatever the source
    expert = dict(data.rows[0], source="expert")
    (soft,) = build_soft_labels([expert], 0.1, data.labels, source="crossval", oof=oof[:1])
    assert soft["probs"][expert["label"]] == pytest.approx(0.9 + 0.1 / 6) and "soft_from" not in soft
    with pytest.raises(ConfigError, match="need the label set and one out-of-fold distribution per row"):
        build_soft_labels(data.rows, 0.0, data.labels, source="crossval")
    assert cli("soft-labels", "--labels", labels, "--out", tmp_path / "x.jsonl", "--from", "votes") == 2
    assert "source must be one of llm, crossval, mix" in capsys.readouterr().err


def test_sample_error_rates_by_hand():
    llm = ["a", "a", "a", "a", "b", "b", "b", "b", "a", "b"]
    gold = ["a", "b", "a", "b", "b", "b", "a", "b", "a", None]  # errors at 1, 3, 6; row 9 has no gold
    r = sample_error_rates(llm, gold, [1, 3, 6, 9], seed=4)
    assert (r.rows, r.sampled, r.errors, r.errors_sampled) == (9, 3, 3, 3)
    assert r.rate_overall == pytest.approx(1 / 3) and r.rate_sampled == 1.0 and r.ratio == pytest.approx(3.0)
    assert r.p_value == pytest.approx(1 / 84)  # all 3 errors in a sample of 3 of 9: 1 / C(9, 3)
    assert r.rate_random in (0.0, 1 / 3, 2 / 3, 1.0) and r == sample_error_rates(llm, gold, [1, 3, 6], seed=4)
    none_wrong = sample_error_rates(["a", "b"], ["a", "b"], [0])
    assert none_wrong.ratio is None and "n/a" in none_wrong.text()
    with pytest.raises(DataError, match="no gold label"):
        sample_error_rates(["a"], [None], [0])
