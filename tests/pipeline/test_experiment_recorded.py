"""`llm2edge experiment` with recorded teachers (../shared/recorded_teacher: real gpt-3.5 / FLAN answers
next to gold) and k-fold cross-validation over the labeled rows."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from llm2edge.errors import ConfigError
from llm2edge.metrics import classification_report
from llm2edge.pipeline.experiment.config import load_config
from llm2edge.pipeline.experiment.report import results_markdown
from llm2edge.pipeline.experiment.runner import pool_folds, run_experiment
from llm2edge.pipeline.experiment.sources import NO_LABEL, check_recorded, load_source, recorded_file
from llm2edge.records import stable_id

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "experiments" / "recorded_teachers.toml"


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_shipped_config_names_every_pair(recorded):
    config = load_config(CONFIG)
    pairs = {(d.name, x.model) for d in config.datasets for x in config.labelers}
    summary = {(r["dataset"], r["model"]) for r in _csv(recorded / "summary.csv")}
    assert pairs == summary and len(pairs) == 32
    assert config.folds == 5 and config.curate.soft_from == "crossval"
    assert config.curate.expert_fraction == 0.1
    assert config.interventions == ("naive", "cleanlab", "experts_random", "experts_crossval", "soft",
                                    "experts_crossval+soft")
    assert [s.student for s in config.students] == ["head", "transformer"]
    check_recorded(config)  # every recorded file is there
    for d in config.datasets:  # the label sets are the recorded gold labels
        gold = {r["gold_label"] for r in _csv(recorded_file(d, config.labelers[0]))}
        assert set(d.labels) == gold, d.name
    quick = load_config(CONFIG, quick=True)
    assert (len(quick.datasets), len(quick.labelers), len(quick.students)) == (2, 2, 1)
    assert quick.folds == 3 and all(d.limit == 150 for d in quick.datasets)
    only = load_config(CONFIG, only={"datasets": ["tempowic"], "students": ["minilm"]})
    assert [d.name for d in only.datasets] == ["tempowic"] and [s.name for s in only.students] == ["minilm"]
    with pytest.raises(ConfigError, match="only_labelers names unknown name"):
        load_config(CONFIG, only={"labelers": ["gpt-9"]})


def test_k_folds_score_every_recorded_row_once(recorded, tmp_path):
    config = load_config(CONFIG)
    dataset = next(d for d in config.datasets if d.name == "cmv_persuasion")
    chatgpt, flan = config.labelers[0], config.labelers[2]
    source = load_source(dataset, chatgpt, list(dataset.labels), config, tmp_path)
    raw = _csv(recorded / "cmv_persuasion__chatgpt.csv")
    ids = [stable_id(n, r["text"]) for n, r in enumerate(raw)]
    assert [s.name for s in source.splits] == [f"fold-{k}" for k in range(1, 6)]
    tested = [r["id"] for s in source.splits for r in s.test]
    assert sorted(tested) == sorted(ids)  # every row scored exactly once
    by_id = {i: r for i, r in zip(ids, raw)}
    for split in source.splits:
        test = {r["id"] for r in split.test}
        assert {r["id"] for r in split.train.rows} == set(ids) - test  # trained on the other folds
        assert split.gold_test == [by_id[r["id"]]["gold_label"] for r in split.test]
        assert split.teacher_test == [by_id[r["id"]]["llm_label"] for r in split.test]
        assert all(split.gold_train[i] == by_id[i]["gold_label"] for i in split.gold_train)
        assert all(r["prob_source"] == "answer" for r in split.train.rows)
    # the teacher pooled over the folds is the recorded accuracy of summary.csv
    pooled = np.sum([s.teacher_report(dataset.labels).confusion for s in source.splits], axis=0)
    acc = np.trace(pooled) / pooled.sum()
    summary = next(r for r in _csv(recorded / "summary.csv")
                   if r["dataset"] == "cmv_persuasion" and r["model"] == "chatgpt")
    assert acc == pytest.approx(float(summary["acc"]), abs=1e-4)
    # another teacher of the same data set gets the same folds
    other = load_source(dataset, flan, list(dataset.labels), config, tmp_path)
    assert [[r["id"] for r in s.test] for s in other.splits] == [[r["id"] for r in s.test]
                                                                 for s in source.splits]


def test_without_folds_the_recorded_csv_split_is_the_split(recorded, tmp_path):
    from dataclasses import replace

    config = replace(load_config(CONFIG), folds=0)
    dataset = next(d for d in config.datasets if d.name == "tempowic")
    (split,) = load_source(dataset, config.labelers[1], list(dataset.labels), config, tmp_path).splits
    raw = _csv(recorded / "tempowic__text-davinci-003.csv")
    assert len(split.test) == sum(r["csv_split"] == "test" for r in raw) == 67
    assert len(split.train.rows) == sum(r["csv_split"] == "train" for r in raw) == 277


def test_pooled_folds_are_the_report_of_all_rows():
    labels = ["a", "b"]
    gold = [["a", "a", "b"], ["b", "b", "a", "a"]]
    pred = [["a", "b", "b"], ["b", "a", "a", "b"]]
    runs = []
    for g, p in zip(gold, pred):
        rep = classification_report(g, p, labels).to_dict()
        llm = classification_report(g, ["a"] * len(g), [*labels, NO_LABEL]).to_dict()
        runs.append({"dataset": "d", "labeler": "l", "intervention": "naive", "student": "s",
                     "evaluated_with": "torch", "n_train": 10, "n_experts": 1, "n_dropped": 0,
                     "n_test": len(g), "llm_train_acc": 0.5, "seconds": 1.0, "collapsed": False,
                     "llm_confusion": llm["confusion"],
                     "torch_confusion": rep["confusion"], "edge_confusion": rep["confusion"],
                     "err_rows": 10, "err_sampled": 2, "err_errors": 4, "err_errors_sampled": 2,
                     "err_errors_random": 1})
    row = pool_folds(runs, labels)
    whole = classification_report(sum(gold, []), sum(pred, []), labels)
    assert row["edge_acc"] == pytest.approx(whole.accuracy)
    assert row["edge_wf1"] == pytest.approx(whole.weighted_f1)
    assert row["llm_acc"] == pytest.approx(4 / 7) and row["n_test"] == 7 and row["folds"] == 2
    assert (row["err_sampled"], row["err_errors_sampled"], row["err_rows"]) == (4, 4, 20)
    assert (row["teacher_collapsed"], row["collapsed_alone"]) == (2, 0)  # the teacher answered "a" throughout


def test_quick_recorded_grid_runs_and_caches(recorded, tmp_path, capsys):
    pytest.importorskip("torch").set_num_threads(1)
    out = tmp_path / "rt"
    result = run_experiment(CONFIG, out, quick=True, threads=1)
    assert result.n_runs == 36 and result.n_cached == 0
    rows = list(csv.DictReader((out / "results.csv").open(encoding="utf-8", newline="")))
    assert {(r["dataset"], r["labeler"], r["intervention"]) for r in rows} == {
        (d, t, i) for d in ("conv_go_awry", "emotion_dair") for t in ("chatgpt", "flan-ul2")
        for i in ("naive", "experts_crossval", "soft")}
    for row in rows:
        assert int(row["n_test"]) == 150 and row["folds"] == "3" and row["evaluated_with"] == "numpy-head"
        assert 0 <= float(row["edge_acc"]) <= 1 and 0 <= float(row["llm_acc"]) <= 1
        experts = row["intervention"] == "experts_crossval"
        assert (row["err_ratio"] != "") == experts and (int(row["n_experts"]) > 0) == experts
    # the teacher's pooled accuracy is its accuracy on the 150 sampled rows (a seeded sample of the file)
    raw = _csv(recorded / "conv_go_awry__chatgpt.csv")
    keep = random.Random("0:conv_go_awry:limit").sample(range(len(raw)), 150)
    naive = next(r for r in rows if r["dataset"] == "conv_go_awry" and r["labeler"] == "chatgpt"
                 and r["intervention"] == "naive")
    expected = np.mean([raw[i]["llm_label"] == raw[i]["gold_label"] for i in keep])
    assert float(naive["llm_acc"]) == pytest.approx(expected, abs=1e-4)
    imported = (out / "labels" / "conv_go_awry" / "chatgpt" / "recorded.jsonl").read_text().splitlines()
    assert len(imported) == len(raw) and json.loads(imported[0])["prob_source"] == "answer"
    md = (out / "results.md").read_text()
    assert "| data set | teacher | student | teacher's labels | naive | experts_crossval | soft |" in md
    assert "| naive |" in md and "`experts_crossval`: median ratio" in md
    assert (out / "results.png").read_bytes()[:4] == b"\x89PNG"
    again = run_experiment(CONFIG, out, quick=True, threads=1)  # everything from the caches
    assert (again.n_runs, again.n_cached) == (36, 36)


def test_a_static_student_runs_in_the_grid(recorded, tmp_path):
    """`student = "static"` trains through `train --student static` on every fold (evaluated in torch)."""
    from dataclasses import replace

    from llm2edge.pipeline.experiment.runner import run_config
    from llm2edge.pipeline.experiment.specs import StudentSpec

    base = load_config(CONFIG, only={"datasets": ["tempowic"], "labelers": ["chatgpt"],
                                     "interventions": ["naive"]})
    config = replace(base, folds=2, datasets=(replace(base.datasets[0], limit=80),), students=(
        StudentSpec(name="static", student="static", dims=32, head_epochs=20, max_length=32, threads=1),))
    result = run_config(config, tmp_path / "rt")
    (row,) = result.rows
    assert row["student"] == "static" and row["n_test"] == 80 and row["folds"] == 2
    assert row["evaluated_with"] == "torch" and 0 <= row["edge_acc"] <= 1
    meta = json.loads((tmp_path / "rt" / "runs" / "tempowic" / "chatgpt" / "static" / "naive" / "fold-1" /
                       "result.json").read_text())
    assert meta["row"]["split"] == "fold-1" and meta["row"]["n_train"] == 40


@pytest.mark.parametrize(("only", "message"), [
    ("colours=red", "only must be one of datasets, labelers, students, interventions, got 'colours'"),
    ("datasets", "--only 'datasets': use KEY=a,b"),
    ("interventions=naive+magic", "unknown intervention step 'magic'"),
])
def test_bad_only_is_one_line(recorded, tmp_path, cli, capsys, only, message):
    assert cli("experiment", "--config", CONFIG, "--out", tmp_path / "x", "--only", only) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and not (tmp_path / "x").exists()


def test_sharded_run_gives_the_unsharded_table(recorded, tmp_path):
    """experiments/run_sharded.py: one process per pair, runs merged, then the aggregating pass finds every
    run cached; its table equals one process's run of the same grid."""
    import subprocess
    import sys

    only = {"datasets": ["conv_go_awry"], "interventions": ["naive", "soft"]}
    flags = [x for k, v in only.items() for x in ("--only", f"{k}={','.join(v)}")]
    script = REPO / "experiments" / "run_sharded.py"
    done = subprocess.run([sys.executable, str(script), "--config", str(CONFIG), "--out",
                           str(tmp_path / "sharded"), "--quick", "--jobs", "2", *flags],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "12 finished runs copied" in done.stdout  # 2 labelers x 2 interventions x 3 folds
    assert "12 runs (12 cached)" in done.stderr
    assert sorted(p.name for p in (tmp_path / "sharded" / "shards").glob("*.log")) == [
        "conv_go_awry__chatgpt.log", "conv_go_awry__flan-ul2.log"]
    # The shard folders lost (only the merged result.json + run_key.txt kept, as an archive keeps them):
    # the next run seeds the shards from OUT/runs and redoes nothing.
    shutil.rmtree(tmp_path / "sharded" / "shards")
    again = subprocess.run([sys.executable, str(script), "--config", str(CONFIG), "--out",
                            str(tmp_path / "sharded"), "--quick", "--jobs", "2", *flags],
                           capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert again.stdout.count("6 finished runs seeded") == 2
    logs = "".join(p.read_text() for p in (tmp_path / "sharded" / "shards").glob("*.log"))
    assert logs.count("6 runs (6 cached)") == 2
    run_experiment(CONFIG, tmp_path / "one", quick=True, only=only)
    drop = {"seconds", "label_seconds"}
    sharded, one = _csv(tmp_path / "sharded" / "results.csv"), _csv(tmp_path / "one" / "results.csv")
    assert [{k: v for k, v in r.items() if k not in drop} for r in sharded] == [
        {k: v for k, v in r.items() if k not in drop} for r in one]
    assert len(one) == 4


def test_collapse_counts_say_whose_collapse_it_is():
    """A student that copies a one-sided teacher is counted under `teacher_collapsed`; one that is one-sided
    where its teacher is not is `collapsed_alone`; the markdown summary states both."""
    from llm2edge.pipeline.experiment.runner import collapse_counts

    labels = ["a", "b"]
    gold = ["a"] * 10 + ["b"] * 10
    one_sided, mixed = ["a"] * 20, ["a", "b"] * 10
    runs = []
    for teacher, student in ((one_sided, one_sided), (mixed, one_sided), (mixed, mixed)):
        runs.append({"llm_confusion": classification_report(gold, teacher, [*labels, NO_LABEL]).to_dict()
                     ["confusion"], "edge_confusion": classification_report(gold, student, labels).to_dict()
                     ["confusion"]})
    assert collapse_counts(runs, labels) == {"teacher_collapsed": 1, "collapsed_alone": 1}
    rows = [{"dataset": "d", "labeler": "l", "intervention": "naive", "student": "s", "folds": "3",
             "collapsed": "2", "teacher_collapsed": "1", "collapsed_alone": "1", "edge_acc": "0.5",
             "edge_wf1": "0.4", "llm_acc": "0.5", "llm_wf1": "0.4", "n_test": "60", "n_train": "50",
             "n_experts": "0", "n_dropped": "0"}]
    md = results_markdown(rows, ["naive"], title="t")
    assert "2 of 3 runs" in md and "that one-sided on the test rows in 1 runs" in md
    assert "did not in 1 (`teacher_collapsed`" in md


def test_committed_runs_keep_their_keys(recorded, shared_data, tmp_path, monkeypatch):
    """The committed fine-tuned cleanlab runs are reused, not redone, by the code as it is now and wherever
    the data lie (they were made on another machine: here the data set is read from a copy elsewhere); a
    curation field added later (`oof_class_weight`) stays out of the key at its old value, and a non-default
    value gives new keys."""
    from dataclasses import replace

    from llm2edge.pipeline.experiment.runner import run_key

    elsewhere = tmp_path / "elsewhere" / "data"
    shutil.copytree(shared_data / "tempowic", elsewhere / "tempowic")
    monkeypatch.setenv("LLM2EDGE_SHARED_DATA", str(elsewhere))
    config = load_config(CONFIG, only={"datasets": ["tempowic"], "labelers": ["flan-ul2"],
                                       "students": ["minilm"]})
    dataset, labeler, student = config.datasets[0], config.labelers[0], config.students[0]
    assert dataset.train.is_relative_to(elsewhere)
    source = load_source(dataset, labeler, list(dataset.labels), config, tmp_path)
    archive = (REPO / "experiments/results/recorded_teachers_finetuned_gpu/runs"
               / "tempowic/flan-ul2/minilm/cleanlab")
    balanced = replace(config, curate=replace(config.curate, oof_class_weight="balanced"))
    for split in source.splits:
        committed = (archive / split.name / "run_key.txt").read_text().strip()
        assert run_key(split, "cleanlab", dataset, labeler.name, student, config) == committed
        assert json.loads((archive / split.name / "result.json").read_text())["key"] == committed
        assert run_key(split, "cleanlab", dataset, labeler.name, student, balanced) != committed


def test_a_recorded_files_extra_columns_are_the_items_fields(recorded, tmp_path):
    """Issue 24: a stance file's `target` column could not be used by student_template ("uses 'target',
    which the item lacks"): a recorded labeler carries the file's extra columns as each item's fields."""
    from dataclasses import replace

    from llm2edge.pipeline.experiment.sources import student_text

    rows = _csv(recorded / "tempowic__chatgpt.csv")[:40]
    folder = tmp_path / "rec"
    folder.mkdir()
    with (folder / "tempowic__chatgpt.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "target"])
        writer.writeheader()
        writer.writerows({**r, "target": f"word{i % 3}"} for i, r in enumerate(rows))
    base = load_config(CONFIG, only={"datasets": ["tempowic"], "labelers": ["chatgpt"]})
    dataset = replace(base.datasets[0], recorded=folder, student_template="{target}: {text}")
    source = load_source(dataset, base.labelers[0], list(dataset.labels), replace(base, folds=2), tmp_path)
    fold = source.splits[0]
    by_text = {r["text"]: i for i, r in enumerate(rows)}
    for row in fold.test:
        assert row["fields"] == {"target": f"word{by_text[row['text']] % 3}"}
        assert student_text(row, dataset) == f"{row['fields']['target']}: {row['text']}"
    assert all(r["fields"].keys() == {"target"} for r in fold.train.rows)
