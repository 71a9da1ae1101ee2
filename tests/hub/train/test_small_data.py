"""Training on a few hundred skewed labels (issue 10): epochs sized by optimizer steps, "auto" class
weights, the best epoch by macro-F1 on the held-back slice, and the collapse guard; on the shipped example's
real texts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from safetensors.torch import load_file  # noqa: E402

from llm2edge.hub.train import TrainConfig, train  # noqa: E402
from llm2edge.hub.train.batches import class_weights  # noqa: E402
from llm2edge.hub.train.guard import COLLAPSE_SHARE, check_collapse, slice_collapse  # noqa: E402
from llm2edge.hub.train.selection import BestEpoch  # noqa: E402
from llm2edge.hub.train.small_data import planned_epochs  # noqa: E402
from tests.helpers import write_csv  # noqa: E402

SMALL = {"max_length": 32, "batch_size": 8, "seed": 7, "lr": 1e-4, "threads": 1, "progress": False}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(fh)]


def _mix(rows: list[dict[str, str]], n_funny: int, n_other: int) -> list[dict[str, str]]:
    funny = [r for r in rows if r["label"] == "funny"][:n_funny]
    other = [r for r in rows if r["label"] != "funny"][:n_other]
    return funny + other


@pytest.mark.parametrize(("steps_per_epoch", "epochs", "min_steps", "max_epochs", "want"), [
    (10, 3, 100, 10, 10),  # ~350 rows, batch 32: 3 epochs would be 30 steps
    (30, 3, 100, 10, 4),
    (50, 3, 100, 10, 3),  # big enough: the epochs as given
    (1, 3, 100, 10, 10),  # capped
    (10, 12, 100, 10, 12),  # never below --epochs
    (10, 3, 0, 10, 3),  # min_steps 0: the old rule
])
def test_planned_epochs(steps_per_epoch, epochs, min_steps, max_epochs, want):
    assert planned_epochs(steps_per_epoch, epochs=epochs, min_steps=min_steps, max_epochs=max_epochs) == want


def test_auto_class_weights_turn_on_when_labels_are_skewed():
    even = torch.tensor([0] * 6 + [1] * 4)  # 1.5x: not skewed enough
    assert class_weights(even, 2, "auto") is None
    skewed = torch.tensor([0] * 7 + [1] * 3)
    assert class_weights(skewed, 2, "auto").tolist() == pytest.approx([10 / 14, 10 / 6])
    assert class_weights(skewed, 2, "auto").tolist() == class_weights(skewed, 2, "balanced").tolist()
    soft = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.9, 0.1], [0.2, 0.8]])  # mass 2.8 vs 1.2
    assert class_weights(soft, 2, "auto").tolist() == pytest.approx([4 / 5.6, 4 / 2.4])


def test_min_steps_raise_the_epochs_and_the_best_epoch_is_kept(example_dir, tmp_path):
    """36 training rows, batch 8: 5 steps per epoch, so 1 epoch with min_steps 12 runs 3 epochs; the saved
    weights are those of the best epoch by macro-F1 on the held-back slice (ties: the later epoch)."""
    data = write_csv(tmp_path / "train.csv", _mix(_rows(example_dir / "train.csv"), 20, 20))
    torch.set_num_threads(1)
    result = train(TrainConfig(data=data, out=tmp_path / "m", epochs=1, min_steps=12, **SMALL))
    meta = json.loads((result.out / "train_meta.json").read_text())
    assert meta["epochs"] == 1 and meta["epochs_run"] == 3 and meta["best_by"] == "macro_f1"
    epochs = [p.name for p in (result.out / "checkpoints").iterdir() if p.name.startswith("epoch")]
    assert epochs == ["epoch-3"]
    history = meta["validation_macro_f1_per_epoch"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    best = max(h["score"] for h in history)
    assert meta["kept_epoch"] == max(h["epoch"] for h in history if h["score"] == best)
    saved = load_file(str(result.out / "model.safetensors"))
    best_dir = result.out / "checkpoints" / "best"
    kept = load_file(str(best_dir / json.loads((best_dir / "best.json").read_text())["weights"]))
    assert saved.keys() == kept.keys() and all(torch.equal(saved[k], kept[k]) for k in saved)
    last = load_file(str(result.out / "checkpoints" / "epoch-3" / "model.safetensors"))
    assert all(torch.equal(saved[k], last[k]) for k in saved) == (meta["kept_epoch"] == 3)


def test_best_epoch_restores_the_best_weights_and_survives_a_restart(tmp_path):
    model = torch.nn.Linear(3, 2)
    keeper = BestEpoch(tmp_path, "key-1", enabled=True, main=True)
    states = {}
    for epoch, score in ((1, 0.50), (2, 0.70), (3, 0.60)):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        states[epoch] = model.weight.clone()
        keeper.update(epoch, score, model)
    assert keeper.restore(model, last_epoch=3) == 2 and torch.equal(model.weight, states[2])
    again = BestEpoch(tmp_path, "key-1", enabled=True, main=True)  # a resumed run reads it from disk
    again.load()
    assert (again.epoch, again.score) == (2, 0.70) and [h["epoch"] for h in again.history] == [1, 2, 3]
    with torch.no_grad():
        model.weight.fill_(9.0)
    assert again.restore(model, last_epoch=4) == 2 and torch.equal(model.weight, states[2])
    other = BestEpoch(tmp_path, "key-2", enabled=True, main=True)  # another run's best is not taken
    other.load()
    assert other.epoch == 0 and other.restore(model, last_epoch=4) == 4
    keeper.update(4, 0.70, model)  # a tie goes to the later epoch
    assert keeper.epoch == 4


def _report(confusion: list[list[int]]) -> dict[str, object]:
    return {"labels": ["a", "b"], "confusion": confusion, "n": sum(map(sum, confusion))}


def test_slice_collapse_thresholds():
    assert COLLAPSE_SHARE == 0.95
    hit = slice_collapse(_report([[10, 0], [9, 1]]), "eval")  # 19 of 20 predicted 'a', gold half 'a'
    assert hit["collapsed"] and hit["top_label"] == "a" and hit["predicted_share"] == 0.95
    assert not slice_collapse(_report([[10, 0], [8, 2]]), "eval")["collapsed"]  # 90%: not collapsed
    assert not slice_collapse(_report([[19, 0], [1, 0]]), "eval")["collapsed"]  # labels that skewed too
    both = check_collapse({"validation": _report([[5, 5], [5, 5]]), "eval": _report([[10, 0], [10, 0]]),
                           "missing": None})
    assert both["collapsed"] and [s["slice"] for s in both["slices"]] == ["validation", "eval"]


def test_a_student_on_one_label_is_marked_collapsed(example_dir, tmp_path, capsys):
    """39 of 40 training labels 'funny', no class weights: the head says 'funny' to a balanced eval set."""
    rows = _rows(example_dir / "train.csv")
    data = write_csv(tmp_path / "skewed.csv", _mix(rows, 39, 1))
    gold = write_csv(tmp_path / "eval.csv", _mix(_rows(example_dir / "test.csv"), 10, 10))
    torch.set_num_threads(1)
    capsys.readouterr()
    result = train(TrainConfig(data=data, out=tmp_path / "m", eval_data=gold, freeze_encoder=True,
                               head_epochs=30, class_weight="none", val_fraction=0, **SMALL))
    err = capsys.readouterr().err
    assert result.metrics["collapsed"] is True
    assert json.loads((result.out / "metrics.json").read_text())["collapsed"] is True
    meta = json.loads((result.out / "train_meta.json").read_text())
    assert meta["collapsed"] is True and meta["collapse"][0]["slice"] == "eval"
    warning = [x for x in err.splitlines() if x.startswith("llm2edge: warning: the student collapsed")]
    assert len(warning) == 1 and "'funny'" in warning[0] and "eval slice (20 items)" in warning[0]


def test_a_student_on_balanced_labels_is_not_marked(example_dir, tmp_path, capsys):
    data = write_csv(tmp_path / "even.csv", _mix(_rows(example_dir / "train.csv"), 30, 30))
    gold = write_csv(tmp_path / "eval.csv", _mix(_rows(example_dir / "test.csv"), 10, 10))
    torch.set_num_threads(1)
    result = train(TrainConfig(data=data, out=tmp_path / "m", eval_data=gold, freeze_encoder=True,
                               head_epochs=30, **SMALL))
    assert result.metrics["collapsed"] is False
    assert "collapsed" not in capsys.readouterr().err


def test_the_static_student_is_checked_too(example_dir, tmp_path):
    """The guard covers `--student static` (the packaged MiniLM's distilled table, 32 dims)."""
    data = write_csv(tmp_path / "skewed.csv", _mix(_rows(example_dir / "train.csv"), 39, 1))
    gold = write_csv(tmp_path / "eval.csv", _mix(_rows(example_dir / "test.csv"), 10, 10))
    result = train(TrainConfig(data=data, out=tmp_path / "s", eval_data=gold, student="static", dims=32,
                               head_epochs=20, class_weight="none", val_fraction=0, max_length=32, threads=1,
                               progress=False))
    want = slice_collapse(result.metrics, "eval")
    assert result.metrics["collapsed"] is want["collapsed"]
    meta = json.loads((result.out / "train_meta.json").read_text())
    assert meta["collapsed"] is want["collapsed"] and meta["collapse"] == [want]


def test_fallback_reason_reads_the_training_labels():
    from llm2edge.hub.train.guard import FALLBACK_MIN_ROWS, fallback_reason

    skewed = torch.tensor([0] * 92 + [1] * 8)  # 92% 'a': a fine-tuned student saying 'a' to 100% collapsed
    why = fallback_reason(_report([[18, 0], [2, 0]]), skewed, 2)  # the slice's own labels read 90%
    assert why == {"slice": "validation", "n": 20, "top_label": "a", "predicted_share": 1.0,
                   "training_labels_share": 0.92}
    assert fallback_reason(_report([[17, 1], [1, 1]]), skewed, 2) is None  # 90% predicted: kept
    assert fallback_reason(_report([[18, 0], [2, 0]]), torch.tensor([0] * 96 + [1] * 4), 2) is None
    soft = torch.tensor([[0.5, 0.5]] * 10)  # soft targets count by their mass
    assert fallback_reason(_report([[0, 10], [0, 10]]), soft, 2)["training_labels_share"] == 0.5
    assert FALLBACK_MIN_ROWS == 20
    assert fallback_reason(_report([[9, 0], [1, 0]]), skewed, 2) is None  # 10 rows: too few to judge
    assert fallback_reason(None, skewed, 2) is None


def test_a_collapsed_fine_tune_falls_back_to_a_frozen_encoder_head(example_dir, tmp_path, capsys):
    """A learning rate that wrecks the encoder (0.5) on 80% one label: with on_collapse="keep" the run
    collapses on the held-back slice; with the default ("head") the same fine-tuned weights are scored on
    --eval for the record and replaced by a head on the untouched pretrained encoder."""
    from llm2edge.hub.models import default_student

    data = write_csv(tmp_path / "skewed.csv", _mix(_rows(example_dir / "train.csv"), 160, 40))
    gold = write_csv(tmp_path / "eval.csv", _mix(_rows(example_dir / "test.csv"), 10, 10))
    torch.set_num_threads(1)
    wreck = {**SMALL, "lr": 0.5, "epochs": 1, "min_steps": 0, "val_fraction": 0.1, "class_weight": "balanced",
             "head_epochs": 30}
    kept = train(TrainConfig(data=data, out=tmp_path / "keep", eval_data=gold, on_collapse="keep", **wreck))
    meta = json.loads((kept.out / "train_meta.json").read_text())
    assert meta["fallback"] is None and meta["on_collapse"] == "keep"
    val = meta["collapse"][0]  # the premise: one label for the whole held-back slice (80% of training)
    assert val["slice"] == "validation" and val["predicted_share"] >= COLLAPSE_SHARE
    capsys.readouterr()
    result = train(TrainConfig(data=data, out=tmp_path / "head", eval_data=gold, **wreck))
    err = capsys.readouterr().err
    meta = json.loads((result.out / "train_meta.json").read_text())
    fallback = meta["fallback"]
    assert meta["on_collapse"] == "head" and fallback["kept"] == "frozen-encoder head"
    assert fallback["predicted_share"] >= COLLAPSE_SHARE > fallback["training_labels_share"]
    assert result.metrics["fallback"] == fallback
    tuned = fallback["fine_tuned_eval"]  # the replaced weights are the "keep" run's, scored the same way
    assert (tuned["accuracy"], tuned["confusion"]) == (kept.metrics["accuracy"], kept.metrics["confusion"])
    assert any("keeping a head trained on the frozen pretrained encoder" in x for x in err.splitlines())
    pretrained = load_file(str(default_student() / "model.safetensors"))
    saved = load_file(str(result.out / "model.safetensors"))
    encoder = [k for k in saved if k.startswith("bert.encoder.")]
    assert encoder and all(torch.equal(saved[k], pretrained[k.removeprefix("bert.")]) for k in encoder)
    wrecked = load_file(str(kept.out / "model.safetensors"))
    assert not torch.equal(wrecked[encoder[0]], saved[encoder[0]])
