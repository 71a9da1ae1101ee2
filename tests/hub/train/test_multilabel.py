"""Multi-label training for real (issue 23): the packaged MiniLM on tiny GoEmotions (Ekman) slices.

The fine-tuned student (sigmoid + BCE) from a labels.jsonl of lists, the frozen-encoder head (one-vs-rest)
from a `;` CSV with --multi-label, the static student; config.json's problem_type and label_thresholds,
thresholds tuned on the held-back slice, metrics.json's multi-label report, the collapse guard on sets,
and bad input (one line, exit 2)."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm2edge.hub.models import default_student  # noqa: E402
from llm2edge.hub.train import TrainConfig, train  # noqa: E402
from llm2edge.hub.train.batches import POS_WEIGHT_CAP, pos_weights  # noqa: E402
from llm2edge.hub.train.guard import check_collapse, fallback_reason  # noqa: E402
from llm2edge.hub.train.multilabel import set_name, set_report, sigmoid  # noqa: E402
from llm2edge.labelsets import (  # noqa: E402
    PROBLEM_TYPE,
    decide,
    multilabel_report,
    parse_label_set,
    thresholds_array,
    tune_thresholds,
)
from tests.helpers import write_csv, write_jsonl  # noqa: E402

EKMAN = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
#: 1 epoch, exactly (no --min-steps raise), the last epoch kept.
FAST = ["--epochs", "1", "--min-steps", "0", "--best-by", "last", "--max-length", "32", "--batch-size", "16",
        "--threads", "1", "--seed", "5"]


def _rows(shared_data: Path, split: str) -> list[dict[str, str]]:
    with (shared_data / "goemotions_ekman" / f"{split}.csv").open(newline="", encoding="utf-8") as handle:
        return [{"text": r["text"], "label": r["labels"]} for r in csv.DictReader(handle)]


def _labels_jsonl(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """labels.jsonl rows in the multi-label contract: `label` a list, independent `probs`, `confidence`."""
    out = []
    for i, r in enumerate(rows):
        chosen = r["label"].split(";")
        probs = {name: 0.9 if name in chosen else 0.1 for name in EKMAN}
        out.append({"id": str(i), "text": r["text"], "label": chosen, "probs": probs, "confidence": 0.9})
    return out


@pytest.fixture(scope="module")
def ekman(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """80 shuffled training rows (as a `;` CSV and as a labels.jsonl of lists), 40 test rows, and a
    joy-vs-anger subset (single-label rows of either, train 120 / test 80)."""
    d = tmp_path_factory.mktemp("ekman")
    train_rows, test_rows = _rows(shared_data, "train"), _rows(shared_data, "test")
    random.Random(0).shuffle(train_rows)
    random.Random(1).shuffle(test_rows)
    two = [r for r in train_rows if r["label"] in ("joy", "anger")]
    two_test = [r for r in test_rows if r["label"] in ("joy", "anger")]
    pick = [r for r in two if r["label"] == "joy"][:60] + [r for r in two if r["label"] == "anger"][:60]
    pick_test = ([r for r in two_test if r["label"] == "joy"][:40]
                 + [r for r in two_test if r["label"] == "anger"][:40])
    random.Random(2).shuffle(pick)
    return {"csv": write_csv(d / "train.csv", train_rows[:80]),
            "jsonl": write_jsonl(d / "labels.jsonl", _labels_jsonl(train_rows[:80])),
            "test": write_csv(d / "test.csv", test_rows[:40]),
            "two": write_csv(d / "two.csv", pick), "two_test": write_csv(d / "two_test.csv", pick_test)}


def _config(folder: Path) -> dict[str, object]:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))


def _probs(folder: Path, texts: list[str]) -> np.ndarray:
    """The saved model's sigmoid probabilities, loaded back through transformers."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    with torch.inference_mode():
        enc = tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")
        return sigmoid(model(**enc).logits.numpy())


def test_fine_tuned_student_from_a_labels_jsonl_of_lists(ekman, tmp_path, cli) -> None:
    out = tmp_path / "model"
    assert cli("train", "-d", ekman["jsonl"], "--eval", ekman["test"], "-o", out, *FAST,
               "--best-by", "macro_f1") == 0
    config = _config(out)
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    assert labels == EKMAN  # every name of the probs, in sorted order
    assert config["problem_type"] == PROBLEM_TYPE
    assert set(config["label_thresholds"]) == set(EKMAN)
    assert all(0 < t < 1 for t in config["label_thresholds"].values())
    with (out / "validation.csv").open(newline="", encoding="utf-8") as handle:
        val = list(csv.DictReader(handle))
    assert len(val) == 8 and all(parse_label_set(r["label"], EKMAN, where="v") for r in val)
    meta = json.loads((out / "train_meta.json").read_text(encoding="utf-8"))
    assert meta["multi_label"] is True and meta["label_thresholds"] == config["label_thresholds"]
    assert meta["best_by"] == "macro_f1" and len(meta["validation_macro_f1_per_epoch"]) == 1
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["multi_label"] is True and metrics["n"] == 40
    assert {"micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "per_label"} <= set(metrics)
    # independent sigmoid outputs: each in (0, 1), rows not summing to 1 as a softmax's would
    texts = [r["text"] for r in val]
    p = _probs(out, texts)
    assert p.shape == (8, 7) and ((p > 0) & (p < 1)).all()
    assert np.abs(p.sum(axis=1) - 1).max() > 0.1


def test_head_student_from_a_csv_of_sets_reproduces_its_metrics(ekman, tmp_path, cli) -> None:
    out = tmp_path / "head"
    assert cli("train", "-d", ekman["csv"], "--eval", ekman["test"], "-o", out, "--multi-label",
               "--freeze-encoder", *FAST) == 0
    config = _config(out)
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    with ekman["test"].open(newline="", encoding="utf-8") as handle:
        test = list(csv.DictReader(handle))
    probs = _probs(out, [r["text"] for r in test])
    decisions = decide(probs, thresholds_array(config["label_thresholds"], labels))
    gold = [parse_label_set(r["label"], labels, where="t") for r in test]
    again = multilabel_report(gold, decisions.astype(np.uint8), labels)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["thresholds"] == config["label_thresholds"]
    assert again.micro_f1 == pytest.approx(metrics["micro_f1"])
    assert again.macro_f1 == pytest.approx(metrics["macro_f1"])


def _head(data: Path, out: Path, **extra: object):
    return train(TrainConfig(data=data, out=out, multi_label=True, freeze_encoder=True, max_length=32,
                             batch_size=16, threads=1, progress=False, seed=5, **extra))


def test_head_student_beats_chance_on_joy_vs_anger(ekman, tmp_path) -> None:
    # 108 training rows: the head needs a higher rate than the default 1e-3 to move in 100 epochs
    result = _head(ekman["two"], tmp_path / "m", eval_data=ekman["two_test"], head_lr=1e-2)
    labels = result.labels
    assert labels == ["anger", "joy"]
    with ekman["two_test"].open(newline="", encoding="utf-8") as handle:
        gold = [parse_label_set(r["label"], labels, where="t") for r in csv.DictReader(handle)]
    # chance: sets drawn with each label's training frequency (0.5 each), and "every label" for all rows
    rng = np.random.default_rng(0)
    drawn = [multilabel_report(gold, (rng.random((len(gold), 2)) < 0.5).astype(np.uint8), labels).macro_f1
             for _ in range(20)]
    every = multilabel_report(gold, np.ones((len(gold), 2), dtype=np.uint8), labels)
    metrics = result.metrics
    assert metrics["macro_f1"] > max(drawn) and metrics["macro_f1"] > every.macro_f1
    assert metrics["subset_accuracy"] > 0.6


def test_thresholds_are_tuned_on_the_held_back_slice_deterministically(ekman, tmp_path) -> None:
    a = _head(ekman["csv"], tmp_path / "a", val_fraction=0.4)
    b = _head(ekman["csv"], tmp_path / "b", val_fraction=0.4)
    ta, tb = _config(a.out)["label_thresholds"], _config(b.out)["label_thresholds"]
    assert ta == tb
    with (a.out / "validation.csv").open(newline="", encoding="utf-8") as handle:
        val = list(csv.DictReader(handle))
    labels = a.labels
    probs = _probs(a.out, [r["text"] for r in val])
    gold = np.array([[name in r["label"].split(";") for name in labels] for r in val], dtype=np.uint8)
    assert gold[:, labels.index("joy")].sum() >= 5  # at least one label is tuned, not left at 0.5
    tuned = dict(zip(labels, tune_thresholds(probs, gold).tolist()))
    assert tuned == pytest.approx(ta, abs=1e-9)


def test_static_student_is_one_vs_rest(ekman, tmp_path) -> None:
    try:
        default_student()
    except Exception as exc:  # BackendError when the model package is absent
        pytest.skip(str(exc))
    result = train(TrainConfig(data=ekman["two"], out=tmp_path / "s", eval_data=ekman["two_test"],
                               multi_label=True, student="static", dims=32, head_epochs=20, max_length=32,
                               threads=1, progress=False, seed=3))
    config = _config(result.out)
    assert config["problem_type"] == PROBLEM_TYPE and set(config["label_thresholds"]) == {"anger", "joy"}
    assert result.metrics["multi_label"] is True and result.metrics["n"] == 80
    assert result.metrics["micro_f1"] > 0.5


def test_soft_targets_are_the_per_label_probabilities(ekman, tmp_path) -> None:
    from llm2edge.hub.train.batches import set_targets
    from llm2edge.hub.train.label_sets import read_label_sets

    examples, labels = read_label_sets(ekman["jsonl"], text_col="text", label_col="label", soft=True)
    soft, hard = set_targets(examples, labels, True), set_targets(examples, labels, False)
    assert soft.shape == (80, 7) and torch.allclose(soft, hard * 0.8 + 0.1)  # 0.9 in the set, 0.1 outside
    result = _head(ekman["jsonl"], tmp_path / "soft", soft_labels=True)
    assert _config(result.out)["problem_type"] == PROBLEM_TYPE
    assert json.loads((result.out / "train_meta.json").read_text(encoding="utf-8"))["soft_labels"] is True


def test_pos_weights_are_negatives_over_positives_capped() -> None:
    y = torch.zeros(100, 3)
    y[:50, 0] = 1  # 50 / 50
    y[:20, 1] = 1  # 20 / 80
    y[:2, 2] = 1  # 2 / 98: capped
    w = pos_weights(y, "balanced")
    assert w.tolist() == pytest.approx([1.0, 4.0, POS_WEIGHT_CAP])
    assert pos_weights(y, "none") is None
    assert pos_weights(torch.ones(10, 2) * torch.tensor([1.0, 0.0]), "auto") is None  # one label present


def test_collapse_is_one_set_for_nearly_every_row() -> None:
    labels = ["anger", "joy", "sadness"]
    from llm2edge.hub.train.data import Example

    gold = [Example(text=str(i), label="", labels=(labels[i % 3],)) for i in range(40)]
    same = np.tile([0.1, 0.9, 0.1], (40, 1))  # {joy} for every row
    thresholds = {name: 0.5 for name in labels}
    collapsed = check_collapse({"validation": set_report(same, gold, labels, thresholds)})
    assert collapsed["collapsed"] and collapsed["slices"][0]["top_label"] == "joy"
    varied = np.eye(3)[[i % 3 for i in range(40)]] * 0.8 + 0.1
    assert not check_collapse({"validation": set_report(varied, gold, labels, thresholds)})["collapsed"]
    train_sets = [set_name(ex.labels) for ex in gold]
    reason = fallback_reason(set_report(same, gold, labels, thresholds), torch.zeros(40, 3), 3, train_sets)
    assert reason is not None and reason["top_label"] == "joy"
    assert reason["training_labels_share"] == pytest.approx(13 / 40)


@pytest.mark.parametrize("case", ["list_without_flag", "unknown_in_probs", "unknown_in_eval", "mixed",
                                  "strings_with_flag"])
def test_bad_multi_label_input_is_one_line_exit_2(case, ekman, tmp_path, cli, capsys) -> None:
    rows = _labels_jsonl([{"text": "so happy and so angry", "label": "joy;anger"},
                          {"text": "what a day", "label": "neutral"}] * 6)
    args: list[object] = ["-o", tmp_path / "m", *FAST]
    expect = ""
    if case == "list_without_flag":
        joined = [{"text": r["text"], "label": ";".join(r["label"])} for r in rows]
        data = write_csv(tmp_path / "d.csv", joined)
        expect = "d.csv:2: label 'joy;anger' is a list of labels, but the task is single-label"
    elif case == "unknown_in_probs":
        rows[3]["label"] = ["joy", "glee"]
        data = write_jsonl(tmp_path / "d.jsonl", rows)
        expect = "d.jsonl:4: label 'glee' in ['joy', 'glee'] has no probability in 'probs'"
    elif case == "unknown_in_eval":
        data = write_jsonl(tmp_path / "d.jsonl", rows)
        ev = write_csv(tmp_path / "e.csv", [{"text": "x", "label": "joy"},
                                             {"text": "y", "label": "joy;bogus"}])
        args += ["--eval", ev]
        expect = "e.csv:3: unknown label 'bogus' in 'joy;bogus'"
    elif case == "mixed":
        rows[2]["label"] = "joy"
        data = write_jsonl(tmp_path / "d.jsonl", rows)
        expect = "d.jsonl:3: label 'joy' is a string, but earlier rows hold a list"
    else:
        for r in rows:
            r["label"] = r["label"][0]
        data = write_jsonl(tmp_path / "d.jsonl", rows)
        args.append("--multi-label")
        expect = "d.jsonl:1: label 'joy' is one label (a single-label labels file)"
    assert cli("train", "-d", data, *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expect in err[0], err


def test_set_groups_put_a_row_with_its_rarest_label_and_quotas_follow_the_teacher() -> None:
    from llm2edge.hub.train.pool_labels import SetGroups, quotas, select

    teacher = np.array([[1, 0, 0]] * 6 + [[1, 1, 0]] * 2 + [[0, 0, 1]] * 1 + [[0, 0, 0]] * 1, dtype=float)
    groups = SetGroups.of(teacher)  # counts: label 0 8 rows, label 1 2, label 2 1
    assert groups.order == (0, 1, 2)
    probs = np.array([[0.9, 0.8, 0.1], [0.9, 0.1, 0.2], [0.2, 0.1, 0.3], [0.6, 0.4, 0.7]])
    group, conf = groups(probs)
    assert group.tolist() == [1, 0, 3, 2]  # {0,1} goes with the rarer 1; nothing: the empty-set group 3
    np.testing.assert_allclose(conf, [0.8, 0.8, 0.7, 0.6])  # the least certain decision
    assert groups.one_hot(teacher).sum(axis=0).tolist() == [6, 2, 1, 1]
    quota = quotas(groups.one_hot(teacher), 20)
    assert quota.tolist() == [12, 4, 2, 2]
    rng = np.random.default_rng(0)
    chunks = [(np.arange(i * 50, (i + 1) * 50), rng.uniform(size=(50, 3))) for i in range(4)]
    rows, kept = select(lambda x: x, iter(chunks), quota, groups)
    assert np.bincount(groups(kept)[0], minlength=4).tolist() == [12, 4, 2, 2] and list(rows) == sorted(rows)
    every = np.concatenate([x for _, x in chunks])
    g, c = groups(every)
    for j in range(4):  # per group, the most confident rows of the whole pool
        np.testing.assert_allclose(np.sort(groups(kept)[1][groups(kept)[0] == j]),
                                   np.sort(c[g == j])[::-1][:quota[j]][::-1])


@pytest.mark.parametrize("method, check", [("self", 0), ("oof", 0), ("self", 3)])
def test_static_student_learns_label_sets_from_an_unlabeled_pool(shared_data, ekman, tmp_path, method, check,
                                                                 capfd) -> None:
    """`train --unlabeled` on a multi-label task: per-label pool targets, sets at the threshold, labeled
    rows left out of the pool, the same rows and targets on a rerun."""
    from llm2edge.hub.train import PoolConfig

    rows = _rows(shared_data, "train")
    random.Random(0).shuffle(rows)
    pool = write_csv(tmp_path / "pool.csv", [{"text": r["text"]} for r in rows[80:380] + rows[:5]], ["text"])
    outs = []
    for run in ("a", "b"):
        out = tmp_path / f"{method}-{check}-{run}"
        train(TrainConfig(data=ekman["jsonl"], out=out, student="static", dims=32, head_epochs=20,
                          max_length=32, threads=1, progress=False, seed=3, unlabeled=pool,
                          pool=PoolConfig(method=method, check_folds=check, ratio=1.0)))
        outs.append(out)
    meta = json.loads((outs[0] / "train_meta.json").read_text(encoding="utf-8"))["pool"]
    assert meta["read"] == 305 and meta["dropped_labeled"] == 5 and meta["usable"] == 300
    assert len(meta["quota"]) == len(meta["kept_per_class"]) == len(EKMAN) + 1  # label groups + empty set
    if check:
        assert set(meta["check"]) >= {"agreement_without", "agreement_with", "kept"}
        assert 0.5 < meta["check"]["agreement_without"] <= 1.0
    if not meta.get("check") or meta["check"]["kept"]:
        assert meta["used"] == sum(meta["kept_per_class"]) > 0
        assert "per label group" in capfd.readouterr().err
    chosen = [json.loads(x) for x in (outs[0] / "pool" / "rows.jsonl").read_text().splitlines()]
    assert len(chosen) == meta["used"]
    labeled = {r["text"] for r in rows[:80]}
    for r in chosen:
        assert r["text"] not in labeled and set(r["probs"]) == set(EKMAN)
        assert r["label"] == [n for n in EKMAN if r["probs"][n] >= 0.5]  # the set at the threshold
    again = (outs[1] / "pool" / "rows.jsonl").read_text()
    assert again == (outs[0] / "pool" / "rows.jsonl").read_text()  # deterministic: same rows, same targets
    assert _config(outs[0])["problem_type"] == "multi_label_classification"


def test_frozen_encoder_multi_label_student_with_a_pool(shared_data, ekman, tmp_path, cli) -> None:
    rows = _rows(shared_data, "train")
    random.Random(0).shuffle(rows)
    pool = write_csv(tmp_path / "pool.csv", [{"text": r["text"]} for r in rows[80:240]], ["text"])
    out = tmp_path / "frozen"
    assert cli("train", "-d", ekman["csv"], "--multi-label", "-o", out, "--freeze-encoder",
               "--unlabeled", pool, "--pool-ratio", "1.0", "--eval", ekman["test"], *FAST) == 0
    meta = json.loads((out / "train_meta.json").read_text(encoding="utf-8"))
    assert meta["pool"]["used"] > 0 and meta["train_rows"] > 80
    assert meta["train_rows"] == meta["pool"]["used"] + 80 - meta["validation_rows"]
    assert set(_config(out)["label_thresholds"]) == set(EKMAN)
