"""Experiment grid: config parsing, the training rows of each intervention, the result tables and plot."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from llm2edge.errors import ConfigError
from llm2edge.hub.curate.rows import load_labels
from llm2edge.pipeline.experiment.config import load_config
from llm2edge.pipeline.experiment.report import COLUMNS, results_markdown, results_plot, write_csv
from llm2edge.pipeline.experiment.runner import training_rows
from llm2edge.pipeline.experiment.sources import prepare_split, student_text
from llm2edge.pipeline.experiment.specs import parse_intervention


def test_shipped_configs_parse(repo, shared_data):
    full = load_config(repo / "experiments" / "four_datasets.toml")
    assert [d.name for d in full.datasets] == ["ibc", "semeval2016_stance", "mrf", "reddit_humor"]
    stance = full.datasets[1]
    assert stance.task == "stance" and stance.fields == ("target",)
    assert all(d.train_limit <= 600 for d in full.datasets) and full.students[0].max_length <= 64
    quick = load_config(repo / "experiments" / "four_datasets.toml", quick=True)
    assert len(quick.datasets) == 2 and len(quick.interventions) == 2
    assert quick.students[0].freeze_encoder and quick.students[0].max_length == 32
    ci = load_config(repo / "experiments" / "quick.toml")
    assert sum(d.train_limit + d.test_limit for d in ci.datasets) <= 400 and len(ci.interventions) == 2


def test_bad_configs(tmp_path, shared_data):
    base = f'data_root = "{shared_data}"\n[[datasets]]\nname = "mrf"\ntask = "misinfo"\n'
    cases = {
        'interventions = ["naive", "magic"]\n': "unknown intervention step 'magic'",
        'interventions = ["naive+soft"]\n': "'naive' cannot be combined",
        'colour = "red"\n': "unknown key(s) colour",
        '[student]\nname = "s"\nepochz = 3\n': "unknown key(s) epochz",
        '[curate]\naction = "flag"\n': "action must be 'drop'",
        '[student]\nname = "s"\nmax_length = 1\n': "student: max_length must be an integer from 2 to",
        'threads = 0\n': "threads must be an integer >= 1",
        '[student]\nname = "s"\nweight_decay = -1\n': "student: weight_decay must be at least 0, got -1",
        '[student]\nname = "s"\nseed = 3\n': "student: unknown key(s) seed",
    }
    for extra, needle in cases.items():
        p = tmp_path / "exp.toml"
        p.write_text(extra + base if not extra.startswith("[") else base + extra)
        with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            load_config(p)
    p.write_text(base.replace('"mrf"', '"nope"'))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(p)
    p.write_text(base)
    with pytest.raises(ConfigError, match=r"\[quick\]"):
        load_config(p, quick=True)
    assert parse_intervention("experts_confidence+soft") == ("experts_confidence", "soft")


def test_a_student_takes_any_train_setting(tmp_path, shared_data):
    """Issue 25: a student table holds TrainConfig overrides, checked by TrainConfig: a train parameter the
    experiment code never names (weight_decay, warmup_ratio) reaches the run's TrainConfig and enters the
    run's key only when it differs from train's default; the grid's own defaults stay (epochs 2, lr 5e-5)."""
    from llm2edge.hub.train.config import TrainConfig
    from llm2edge.pipeline.experiment.specs import KEY_TRAIN_FIELDS, student_key

    base = (f'data_root = "{shared_data}"\n[[datasets]]\nname = "mrf"\ntask = "misinfo"\n'
            '[student]\nname = "s"\n')
    p = tmp_path / "exp.toml"
    p.write_text(base + "weight_decay = 0.0\nwarmup_ratio = 0.1\nmax_length = 32\n")
    (student,) = load_config(p).students
    assert (student.weight_decay, student.max_length, student.epochs, student.lr) == (0.0, 32, 2, 5e-5)
    run = TrainConfig(data="train.jsonl", out="model", **student.train_kwargs())
    assert (run.weight_decay, run.warmup_ratio, run.epochs, run.lr, run.max_length) == (0.0, 0.1, 2, 5e-5, 32)
    key = student_key(student)
    assert key["weight_decay"] == 0.0 and "warmup_ratio" not in key  # 0.1 is train's default
    p.write_text(base)
    (plain,) = load_config(p).students
    assert set(student_key(plain)) == {"name", "student", "threads", *KEY_TRAIN_FIELDS}


def test_a_config_extends_another(repo, tmp_path, shared_data):
    """`extends` reads the other file first and applies this one over it: the shipped balanced variant is
    recorded_teachers.toml with one curation field changed, its [quick] table included."""
    from dataclasses import replace

    base = load_config(repo / "experiments" / "recorded_teachers.toml")
    variant = load_config(repo / "experiments" / "recorded_teachers_balanced.toml")
    assert variant == replace(base, name=variant.name, source=variant.source,
                              curate=replace(base.curate, oof_class_weight="balanced"))
    assert load_config(repo / "experiments" / "recorded_teachers_balanced.toml", quick=True).folds == 3
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="loops back"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('extends = "missing.toml"\n')
    with pytest.raises(ConfigError, match="missing.toml: no such experiment config"):
        load_config(tmp_path / "c.toml")


def test_prepare_split_is_seeded_and_reused(repo, shared_data, tmp_path):
    cfg = load_config(repo / "experiments" / "quick.toml")
    ds = cfg.datasets[0]
    path = prepare_split(ds, "train", tmp_path, seed=0)
    first = path.read_text()
    mtime = path.stat().st_mtime_ns
    assert prepare_split(ds, "train", tmp_path, seed=0).stat().st_mtime_ns == mtime  # reused as is
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == ds.train_limit and set(rows[0]) == {"id", "text", "label"}
    assert prepare_split(ds, "train", tmp_path / "b", seed=1).read_text() != first


def test_training_rows_per_intervention(repo, shared_data, tmp_path, stance_labels):
    path, rows, flipped, labels = stance_labels
    cfg = load_config(repo / "experiments" / "four_datasets.toml")
    ds = cfg.datasets[1]
    assert student_text(rows[0], ds) == f"{rows[0]['fields']['target']}: {rows[0]['text']}"
    data = load_labels(path, labels)
    from llm2edge.records import read_records

    true = {r.id: r.label for r in read_records(shared_data / "semeval2016_stance" / "train.csv",
                                                label_col="label", fields=("target",))}
    gold = {r["id"]: true[r["id"]] for r in rows}
    assert sum(gold[r["id"]] != r["label"] for r in rows) == flipped.sum()
    student = cfg.students[0]
    naive, st = training_rows(("naive",), data, gold, cfg, ds, student, tmp_path)
    assert len(naive) == len(rows) and st == {"n_experts": 0, "n_dropped": 0}
    conf, st = training_rows(("experts_confidence",), data, gold, cfg, ds, student, tmp_path)
    assert st["n_experts"] == 20 and sum(r["source"] == "expert" for r in conf) == 20
    assert all(r["label"] == gold[r["id"]] for r in conf if r["source"] == "expert")
    rand, st = training_rows(("experts_random",), data, gold, cfg, ds, student, tmp_path)
    fixed = lambda rs: sum(r["label"] == gold[r["id"]] for r in rs)  # noqa: E731
    # least-confident experts fix more wrong labels than random experts on LLM-like confidences
    assert fixed(conf) > fixed(rand) >= fixed(naive)
    soft, _ = training_rows(("experts_confidence", "soft"), data, gold, cfg, ds, student, tmp_path)
    assert all(abs(sum(r["probs"].values()) - 1) < 1e-9 for r in soft)
    # cleanlab with the LLM's own probabilities (fast; crossval is tested in test_confident.py)
    from dataclasses import replace

    cfg_llm = replace(cfg, curate=replace(cfg.curate, probs="llm"))
    cl, st = training_rows(("experts_confidence", "cleanlab"), data, gold, cfg_llm, ds, student, tmp_path)
    assert len(cl) == len(rows) - st["n_dropped"]
    assert sum(r["source"] == "expert" for r in cl) == 20  # expert rows are never dropped


def _fake_rows():
    rows = []
    for ds, llm in (("mrf", 0.7), ("ibc", 0.5)):
        for i, name in enumerate(("naive", "experts_confidence")):
            rows.append({"dataset": ds, "labeler": "l", "student": "s", "intervention": name, "n_train": 100,
                         "n_experts": 10 * i, "n_dropped": 0, "n_test": 50, "llm_acc": llm, "llm_wf1": llm,
                         "llm_train_acc": llm, "edge_acc": llm - 0.05 + 0.1 * i, "edge_wf1": llm,
                         "evaluated_with": "torch", "seconds": 1.0})
    return rows


def test_results_table_and_plot(tmp_path):
    rows = _fake_rows()
    write_csv(tmp_path / "results.csv", rows)
    with (tmp_path / "results.csv").open(encoding="utf-8", newline="") as handle:
        back = list(csv.DictReader(handle))
    assert list(back[0]) == list(COLUMNS) and len(back) == 4 and back[1]["edge_acc"] == "0.7500"
    md = results_markdown(rows, ["naive", "experts_confidence"], title="t")
    assert "| dataset | LLM labels | naive | experts_confidence |" in md
    assert "| mrf | 70.0 | 65.0 | **75.0** |" in md and "| ibc | 50.0 | 45.0 | **55.0** |" in md
    assert "`naive`: the student beats the LLM labels in 0 of 2 (accuracy)" in md
    assert "`experts_confidence`: the student beats the LLM labels in 2 of 2 (accuracy)" in md
    png = results_plot(tmp_path / "results.png", rows, ["naive", "experts_confidence"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert np.isfinite([r["edge_acc"] for r in rows]).all()
