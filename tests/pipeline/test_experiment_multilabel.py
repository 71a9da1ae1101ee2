"""Multi-label data sets in the experiment grid: gold label sets, the refused interventions, and a real
end-to-end run (SmolLM2 labels GoEmotions emotion sets, a frozen MiniLM student trained multi-label)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from llm2edge.errors import ConfigError, DataError
from llm2edge.labelsets import multilabel_report, parse_label_set
from llm2edge.pipeline.experiment.config import load_config
from llm2edge.pipeline.experiment.multilabel import METRICS
from llm2edge.pipeline.experiment.sources import prepare_split

LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")


def _config(tmp_path, data, extra: str = "", dataset: str = "") -> str:
    """A small goemotions_ekman grid as TOML text (tests append to it)."""
    path = tmp_path / "ml.toml"
    path.write_text(f'''name = "ml"
data_root = "{data}"
train_limit = 40
test_limit = 30
evaluate = "edge"
{extra}
[labeler]
name = "smol"
backend = "hf"
batch_size = 8
threads = 1

[student]
name = "minilm-frozen"
threads = 1
freeze_encoder = true
head_epochs = 20
max_length = 32
batch_size = 16

[[datasets]]
name = "goemotions_ekman"
task = "emotions"
label_col = "labels"
{dataset}''')
    return path


@pytest.mark.parametrize("extra, needle", [
    ('interventions = ["naive", "cleanlab"]\n', "intervention 'cleanlab' is not supported"),
    ('interventions = ["experts_confidence+soft"]\n', "intervention 'experts_confidence+soft'"),
    ("folds = 3\n", "folds = 3 is not supported"),
    ('interventions = ["experts_crossval"]\n', "intervention 'experts_crossval' is not supported"),
    ('interventions = ["experts_confidence"]\n[curate]\nby = "margin"\n',
     "a label set has no log-prob margin"),
])
def test_unsupported_interventions_are_refused_when_loading(tmp_path, shared_data, extra, needle):
    where = r"data set 'goemotions_ekman' \(multi-label task 'emotions'\)"
    with pytest.raises(ConfigError, match=where) as exc:
        load_config(_config(tmp_path, shared_data, extra))
    assert needle in str(exc.value)


def test_a_head_student_is_refused_and_multi_label_is_not_a_student_setting(tmp_path, shared_data):
    path = _config(tmp_path, shared_data)
    path.write_text(path.read_text().replace('name = "minilm-frozen"', 'name = "h"\nstudent = "head"'))
    with pytest.raises(ConfigError, match="student 'h' is a 'head' student"):
        load_config(path)
    # multi_label is the data set's (its task), set by the runner: not a student setting
    path.write_text(path.read_text().replace('student = "head"', "multi_label = true"))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) multi_label"):
        load_config(path)


def test_gold_sets_are_parsed_in_task_order_and_bad_ones_named(tmp_path, shared_data):
    good = tmp_path / "good"
    good.mkdir()
    (good / "train.csv").write_text("text,labels\nwow what,surprise;joy\nugh,anger\n")
    (good / "test.csv").write_text("text,labels\nfine,neutral\n")
    spec = load_config(_config(tmp_path, tmp_path, dataset='train = "good/train.csv"\n'
                               'test = "good/test.csv"\n')).datasets[0]
    with prepare_split(spec, "train", tmp_path / "out", seed=0).open(encoding="utf-8", newline="") as handle:
        assert sorted(r["label"] for r in csv.DictReader(handle)) == ["anger", "joy;surprise"]
    (good / "train.csv").write_text("text,labels\nok,joy\nhm,joy;happy\n")
    with pytest.raises(DataError, match=r"train\.csv:3: unknown label 'happy' in 'joy;happy'"):
        prepare_split(spec, "train", tmp_path / "out2", seed=0)


@pytest.mark.slow
def test_goemotions_grid_end_to_end(tmp_path, shared_data, cli, monkeypatch, capsys):
    """SmolLM2 labels emotion sets, the student learns them multi-label, both are scored as sets."""
    pytest.importorskip("torch").set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "out"
    grid = 'interventions = ["naive", "experts_confidence"]\n'
    assert cli("experiment", "--config", _config(tmp_path, shared_data, grid), "--out", out) == 0
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["intervention"] for r in rows] == ["naive", "experts_confidence"]
    assert [r["n_experts"] for r in rows] == ["0", "4"]  # 10% of the 40 train rows get their gold sets
    assert rows[0]["llm_micro_f1"] == rows[1]["llm_micro_f1"]  # the same teacher on the same test rows
    row = rows[0]
    assert row["multi_label"] == "True" and row["n_test"] == "30" and row["evaluated_with"].startswith("edge")
    assert row["llm_acc"] == "" and row["edge_acc"] == ""  # no single-label accuracy for label sets
    run = out / "runs" / "goemotions_ekman" / "smol" / "minilm-frozen" / "naive"
    result = json.loads((run / "result.json").read_text())["row"]
    with (run / "predictions.csv").open(encoding="utf-8", newline="") as handle:
        preds = list(csv.DictReader(handle))
    assert len(preds) == 30

    def sets(col):
        return [parse_label_set(p[col], LABELS, where=col, allow_empty=True) for p in preds]

    gold = sets("gold")
    with (out / "data" / "goemotions_ekman" / "test.csv").open(encoding="utf-8", newline="") as handle:
        assert [parse_label_set(r["label"], LABELS, where="data") for r in csv.DictReader(handle)] == gold
    for who, col in (("llm", "teacher"), ("edge", "student")):
        report = multilabel_report(gold, sets(col), LABELS)
        for metric in METRICS:
            value = result[f"{who}_{metric}"]
            assert 0.0 <= value <= 1.0 and value == pytest.approx(getattr(report, metric))
            assert float(row[f"{who}_{metric}"]) == pytest.approx(value, abs=1e-4)
    # the teacher's sets are the LLM's labels.jsonl lists (multi-label, per-label probabilities)
    jsonl = out / "labels" / "goemotions_ekman" / "smol" / "test.jsonl"
    labeled = {r["id"]: r for r in map(json.loads, jsonl.read_text().splitlines())}
    for p, t in zip(preds, sets("teacher")):
        assert tuple(labeled[p["id"]]["label"]) == t and set(labeled[p["id"]]["probs"]) == set(LABELS)
    train_rows = [json.loads(x) for x in (run / "train.jsonl").read_text().splitlines()]
    assert len(train_rows) == 40 and all(isinstance(r["label"], list) for r in train_rows)
    md = (out / "results.md").read_text()
    assert "## Multi-label data sets" in md and "| goemotions_ekman | smol | minilm-frozen | naive |" in md
    assert "| goemotions_ekman | smol | minilm-frozen | experts_confidence |" in md
    # the expert rows carry their gold sets, the others the LLM's
    experts_jsonl = run.parent / "experts_confidence" / "train.jsonl"
    experts = [json.loads(x) for x in experts_jsonl.read_text().splitlines()]
    gold_train = {}
    with (out / "data" / "goemotions_ekman" / "train.csv").open(encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle):
            gold_train[r["id"]] = list(parse_label_set(r["label"], LABELS, where="data"))
    by_id = {r["id"]: r for r in train_rows}
    assert sum(r["source"] == "expert" for r in experts) == 4
    for r in experts:
        assert r["label"] == (gold_train[r["id"]] if r["source"] == "expert" else by_id[r["id"]]["label"])
    assert "LLM micro f1 | LLM macro f1 | LLM subset accuracy | LLM hamming loss" in md
    with capsys.disabled():  # the measured table, for the record
        print(md)
    # evaluate = "torch": the trained model's own sets at its tuned thresholds; train's --eval report (torch_)
    # scores the same model at the same thresholds, so the two agree (the LLM labels come from the cache)
    torch_out = tmp_path / "torch"
    shutil.copytree(out / "labels", torch_out / "labels")
    path = _config(tmp_path, shared_data, 'interventions = ["naive"]\n')
    path.write_text(path.read_text().replace('evaluate = "edge"', 'evaluate = "torch"'))
    capsys.readouterr()
    assert cli("experiment", "--config", path, "--out", torch_out) == 0
    assert ": 0 items newly labeled" in capsys.readouterr().err
    again = json.loads((torch_out / run.relative_to(out) / "result.json").read_text())["row"]
    assert again["evaluated_with"] == "torch"
    for metric in METRICS:
        assert again[f"edge_{metric}"] == pytest.approx(again[f"torch_{metric}"])
        assert again[f"llm_{metric}"] == result[f"llm_{metric}"]


def test_shipped_multilabel_example_parses(repo, shared_data, monkeypatch):
    monkeypatch.setenv("LLM2EDGE_SHARED_DATA", str(shared_data))
    config = load_config(repo / "experiments" / "goemotions_quick.toml")
    (dataset,) = config.datasets
    assert dataset.task == "emotions" and dataset.label_col == "labels"
    assert config.interventions == ("naive", "experts_confidence")
    assert config.students[0].freeze_encoder and config.students[0].max_length == 32
