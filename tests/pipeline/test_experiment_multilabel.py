"""Multi-label data sets in the experiment grid: gold label sets, the refused steps, experts, cleanlab and
soft targets on label sets, and a real end-to-end run (SmolLM2 labels GoEmotions emotion sets, a frozen
MiniLM student trained multi-label)."""

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
from tests.helpers import write_csv

LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
#: Every multi-label curation step in one intervention (experts by out-of-fold support, cleanlab, soft).
CURATED = "experts_crossval+cleanlab+soft"


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
    ("folds = 3\n", "folds = 3 is not supported"),
    ('interventions = ["experts_confidence"]\n[curate]\nby = "margin"\n',
     "a label set has no log-prob margin"),
    ('interventions = ["experts_confidence+cleanlab"]\n[curate]\nby = "margin"\n',
     "a label set has no log-prob margin"),
])
def test_unsupported_interventions_are_refused_when_loading(tmp_path, shared_data, extra, needle):
    where = r"data set 'goemotions_ekman' \(multi-label task 'emotions'\)"
    with pytest.raises(ConfigError, match=where) as exc:
        load_config(_config(tmp_path, shared_data, extra))
    assert needle in str(exc.value)


def _noisy_split(n: int = 90, flipped: int = 12):
    """A multi-label split whose label sets follow 3 features (label j iff feature j > 0); the LLM's sets
    are gold except `flipped` rows whose first label is flipped; every LLM probability says 0.9/0.1."""
    import numpy as np

    from llm2edge.hub.curate.rows import LabeledRows
    from llm2edge.pipeline.experiment.sources import Split

    rng = np.random.default_rng(7)
    features = rng.normal(size=(n, 3)) * 2.0
    names = LABELS[:3]
    rows, gold = [], {}
    for i, x in enumerate(features):
        given = [x[j] > 0 for j in range(3)]
        gold[f"r{i}"] = ";".join(names[j] for j in range(3) if given[j])
        if i < flipped:
            given[0] = not given[0]
        rows.append({"id": f"r{i}", "text": f"t{i}", "label": [names[j] for j in range(3) if given[j]],
                     "probs": {names[j]: 0.9 if given[j] else 0.1 for j in range(3)}})
    train = LabeledRows("labels.jsonl", rows, names, multi_label=True)
    return Split("test", train, gold, [], [], []), features, {f"r{i}" for i in range(flipped)}


def test_crossval_experts_cleanlab_and_soft_targets_on_label_sets(tmp_path, shared_data):
    """The multi-label grid's curation steps on rows whose wrong sets only out-of-fold models can see."""
    from dataclasses import replace

    from llm2edge.pipeline.experiment.multilabel import needs_features, training_rows
    from llm2edge.pipeline.experiment.specs import CurateSpec

    split, features, wrong = _noisy_split()
    names = LABELS[:3]
    base = load_config(_config(tmp_path, shared_data, 'interventions = ["experts_crossval+cleanlab+soft"]\n'))
    config = replace(base, curate=CurateSpec(expert_fraction=0.15, stratify=False, probs="crossval",
                                             soft_from="crossval", soft_smoothing=0.1))
    memo: dict = {}
    # experts by out-of-fold support: the LLM's 0.9/0.1 probabilities say nothing, the features do
    rows, stats = training_rows(("experts_crossval",), split, names, config, features, memo)
    experts = {r["id"] for r in rows if r["source"] == "expert"}
    assert stats["n_experts"] == len(experts) == 14 and len(wrong & experts) >= 8  # chance: 1.9
    assert stats["err_rows"] == 90 and stats["err_errors"] == 12
    assert stats["err_errors_sampled"] == len(wrong & experts)
    for r in rows:
        expected = split.gold_train[r["id"]] if r["id"] in experts else None
        if expected is not None:
            assert ";".join(r["label"]) == expected
    # the same rows' out-of-fold probabilities are computed once per split
    assert len(memo) == 1
    # random experts draw as many rows whatever the features; their error counts come from the same rows
    rows_r, stats_r = training_rows(("experts_random",), split, names, config, None, memo)
    assert stats_r["n_experts"] == 14 and stats_r["err_errors"] == 12
    # cleanlab on out-of-fold probabilities drops mostly the wrong sets
    kept, stats_c = training_rows(("cleanlab",), split, names, config, features, memo)
    dropped = {r["id"] for r in split.train.rows} - {r["id"] for r in kept}
    assert stats_c["n_dropped"] == len(dropped) > 0 and len(dropped & wrong) >= 0.6 * len(dropped)
    # experts first, then cleanlab: an expert row is never dropped; then per-label soft targets
    both, stats_b = training_rows(("experts_crossval", "cleanlab", "soft"), split, names, config, features,
                                  memo)
    ids = {r["id"] for r in both}
    assert experts <= ids and len(both) == 90 - stats_b["n_dropped"] and stats_b["n_experts"] == 14
    for r in both:
        assert set(r["probs"]) == set(names) and all(0.0 <= v <= 1.0 for v in r["probs"].values())
        if r["source"] == "expert":
            assert r["probs"] == pytest.approx({n: 0.95 if n in r["label"] else 0.05 for n in names})
        else:
            assert r["soft_from"] == "crossval"
    assert needs_features(("experts_crossval",), config) and not needs_features(("experts_random",), config)


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
    grid = (f'interventions = ["naive", "experts_confidence", "{CURATED}", "naive+pool"]\n'
            '[curate]\nprobs = "crossval"\nsoft_from = "mix"\n[pool]\nratio = 2.0\n')
    with (shared_data / "goemotions_ekman" / "train.csv").open(encoding="utf-8", newline="") as handle:
        pool = [{"text": r["text"]} for _, r in zip(range(300), csv.DictReader(handle))]
    pool_csv = write_csv(tmp_path / "pool.csv", pool, ["text"])  # may hold labeled rows: dropped, counted
    dataset = f'unlabeled = "{pool_csv}"\nunlabeled_drop_labeled = true\n'
    assert cli("experiment", "--config", _config(tmp_path, shared_data, grid, dataset), "--out", out) == 0
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["intervention"] for r in rows] == ["naive", "experts_confidence", CURATED, "naive+pool"]
    assert [r["n_experts"] for r in rows] == ["0", "4", "4", "0"]  # 10% of the 40 train rows: gold sets
    # the pool: labeled per label from the run's own 40 rows, 2 pool rows per labeled row at most
    pooled = json.loads((out / "runs" / "goemotions_ekman" / "smol" / "minilm-frozen" / "naive+pool" /
                         "result.json").read_text())["row"]
    assert 0 < pooled["n_pool"] <= 80 and pooled["n_train"] == 40 + pooled["n_pool"]
    pool_rows = [json.loads(x) for x in (out / "runs" / "goemotions_ekman" / "smol" / "minilm-frozen" /
                                         "naive+pool" / "train.jsonl").read_text().splitlines()]
    pool_rows = [r for r in pool_rows if r["source"] == "pool"]
    assert len(pool_rows) == pooled["n_pool"]
    for r in pool_rows:
        assert r["label"] == [n for n in LABELS if r["probs"][n] >= 0.5] and set(r["probs"]) == set(LABELS)
    assert rows[0]["llm_micro_f1"] == rows[1]["llm_micro_f1"] == rows[2]["llm_micro_f1"]  # the same teacher
    curated = rows[2]
    assert int(curated["n_train"]) == 40 - int(curated["n_dropped"])
    run = out / "runs" / "goemotions_ekman" / "smol" / "minilm-frozen" / "naive"
    counts = json.loads((run.parent / CURATED / "result.json").read_text())["row"]
    assert counts["err_rows"] == 40 and counts["err_sampled"] == 4 and 0 <= counts["err_errors_sampled"] <= 4
    # the LLM's wrong sets inside the expert sample and overall, as results.csv rates
    assert float(curated["expert_err"]) == pytest.approx(counts["err_errors_sampled"] / 4, abs=1e-4)
    assert float(curated["overall_err"]) == pytest.approx(counts["err_errors"] / 40, abs=1e-4)
    soft_rows = [json.loads(x) for x in (run.parent / CURATED / "train.jsonl").read_text().splitlines()]
    assert len(soft_rows) == int(curated["n_train"]) and sum(r["source"] == "expert" for r in soft_rows) == 4
    for r in soft_rows:  # per-label soft targets: the mean of the LLM's and the out-of-fold probabilities
        assert set(r["probs"]) == set(LABELS) and all(0.0 <= v <= 1.0 for v in r["probs"].values())
    row = rows[0]
    assert row["multi_label"] == "True" and row["n_test"] == "30" and row["evaluated_with"].startswith("edge")
    assert row["llm_acc"] == "" and row["edge_acc"] == ""  # no single-label accuracy for label sets
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
    assert f"| goemotions_ekman | smol | minilm-frozen | {CURATED} |" in md
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
