"""`llm2edge train` for real on tiny data: model folder layout, determinism, crash-resume, soft labels,
frozen encoder, data errors, and DDP under `accelerate launch` (slow)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from safetensors.torch import load_file  # noqa: E402

from llm2edge.errors import ConfigError, DataError, TrainError  # noqa: E402
from llm2edge.hub.models import default_student  # noqa: E402
from llm2edge.hub.train import TrainConfig, train  # noqa: E402
from tests.helpers import write_csv  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
       "TOKENIZERS_PARALLELISM": "false"}
TINY = {"epochs": 2, "max_length": 32, "batch_size": 8, "seed": 7, "lr": 1e-4, "threads": 1,
        "progress": False, "min_steps": 0, "best_by": "last"}  # exactly `epochs`, the last epoch kept
#: TINY's schedule and selection as CLI flags.
TINY_FLAGS = ["--min-steps", "0", "--best-by", "last"]


def _balanced(path: Path, n: int) -> list[dict[str, str]]:
    """The first n rows of a CSV, alternating between its two labels."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    funny = [r for r in rows if r["label"] == "funny"]
    other = [r for r in rows if r["label"] != "funny"]
    out = []
    for a, b in zip(funny, other):
        out += [{"text": a["text"], "label": a["label"]}, {"text": b["text"], "label": b["label"]}]
    return out[:n]


@pytest.fixture(scope="module")
def tiny(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """40 training rows and 20 eval rows of the shipped example, both labels present."""
    d = tmp_path_factory.mktemp("tiny")
    return {"train": write_csv(d / "train.csv", _balanced(example_dir / "train.csv", 40)),
            "small": write_csv(d / "small.csv", _balanced(example_dir / "train.csv", 16)),
            "eval": write_csv(d / "eval.csv", _balanced(example_dir / "test.csv", 20))}


@pytest.fixture(scope="module")
def reference(tiny: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted 2-epoch run (the reference for layout, metrics and crash-resume)."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ref") / "model"
    result = train(TrainConfig(data=tiny["train"], eval_data=tiny["eval"], out=out, **TINY))
    return result


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_model_dir_layout_and_metrics(reference, tiny):
    out = reference.out
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "validation.csv", "train_meta.json", "metrics.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "funny", "1": "not_funny"}
    assert reference.labels == ["funny", "not_funny"]
    meta = json.loads((out / "train_meta.json").read_text())
    assert meta["labels"] == reference.labels and meta["max_length"] == 32 and meta["seed"] == 7
    assert meta["epochs"] == 2 and meta["train_rows"] + meta["validation_rows"] == 40
    assert meta["source_model"] == str(default_student().resolve())
    with (out / "validation.csv").open(newline="", encoding="utf-8") as f:
        val = list(csv.DictReader(f))
    assert len(val) == meta["validation_rows"] == 4 and set(val[0]) == {"text", "label"}
    train_texts = {r["text"] for r in csv.DictReader(tiny["train"].open(newline="", encoding="utf-8"))}
    assert all(r["text"] in train_texts for r in val)
    # only the last epoch's checkpoint is kept
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-2"]
    # every file has the mode the umask gives (safetensors alone wrote 0600 before: issue 14.6)
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()} == {0o666 & ~umask}
    # tokenizer.json truncates at max_length and does not pad to a fixed width
    tok = json.loads((out / "tokenizer.json").read_text())
    assert tok["padding"] is None and tok["truncation"]["max_length"] == 32

    # metrics.json is the report of the saved model on the eval file: recompute it
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == reference.metrics and metrics["n"] == 20
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    rows = list(csv.DictReader(tiny["eval"].open(newline="", encoding="utf-8")))
    with torch.no_grad():
        enc = tokenizer([r["text"] for r in rows], padding=True, truncation=True, max_length=32,
                        return_tensors="pt")
        pred = [config["id2label"][str(i)] for i in model(**enc).logits.argmax(-1).tolist()]
    accuracy = sum(p == r["label"] for p, r in zip(pred, rows)) / len(rows)
    assert metrics["accuracy"] == pytest.approx(accuracy)
    assert sum(map(sum, metrics["confusion"])) == 20


def test_same_seed_same_weights(tiny, tmp_path):
    torch.set_num_threads(1)
    cfg = {**TINY, "epochs": 1}
    a = train(TrainConfig(data=tiny["small"], out=tmp_path / "a", **cfg))
    b = train(TrainConfig(data=tiny["small"], out=tmp_path / "b", **cfg))
    wa, wb = _weights(a.out), _weights(b.out)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    base = load_file(str(default_student() / "model.safetensors"))
    moved = [k for k in base if ("bert." + k) in wa and not torch.equal(base[k], wa["bert." + k])]
    assert moved, "fine-tuning changed no encoder weight"


def test_crash_then_resume_matches_uninterrupted_run(reference, tiny, tmp_path):
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "llm2edge", "train", "--data", str(tiny["train"]), "--out", str(out),
           "--epochs", "2", "--max-length", "32", "--batch-size", "8", "--seed", "7", "--lr", "1e-4",
           "--threads", "1", *TINY_FLAGS]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = out / "checkpoints" / "epoch-1" / "checkpoint.json"
    deadline = time.monotonic() + 600
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    assert marker.exists(), err.decode()[-2000:]
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "train_meta.json").exists()

    torch.set_num_threads(1)
    resumed = train(TrainConfig(data=tiny["train"], out=out, **TINY))
    assert resumed.resumed_from_epoch == 1
    assert json.loads((out / "train_meta.json").read_text())["resumed_from_epoch"] == 1
    got, want = _weights(out), _weights(reference.out)
    assert got.keys() == want.keys()
    for k in want:
        assert torch.allclose(got[k], want[k], atol=1e-5), k

    # a finished run is not trained again; other settings are refused until --no-resume
    again = train(TrainConfig(data=tiny["train"], out=out, **TINY))
    assert again.resumed_from_epoch == 2
    with pytest.raises(TrainError, match="--no-resume"):
        train(TrainConfig(data=tiny["train"], out=out, **{**TINY, "lr": 3e-4}))
    with pytest.raises(TrainError, match="--no-resume"):
        train(TrainConfig(data=tiny["train"], out=out, class_weight="balanced", **TINY))


def test_soft_labels_are_the_targets(tiny, tmp_path):
    """Every row says 80% funny: the head learns that distribution, not the (mixed) hard labels."""
    rows = list(csv.DictReader(tiny["small"].open(newline="", encoding="utf-8")))
    soft = tmp_path / "labels.jsonl"
    with soft.open("w", encoding="utf-8") as f:
        for i, r in enumerate(rows):
            f.write(json.dumps({"id": f"r{i}", "text": r["text"], "label": r["label"],
                                "probs": {"funny": 0.8, "not_funny": 0.2}}) + "\n")
    torch.set_num_threads(1)
    result = train(TrainConfig(data=soft, out=tmp_path / "m", soft_labels=True, freeze_encoder=True,
                               val_fraction=0, head_epochs=300, class_weight="none", **TINY))
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(result.out).eval()
    tok = AutoTokenizer.from_pretrained(result.out)
    with torch.no_grad():
        enc = tok([r["text"] for r in rows], padding=True, truncation=True, max_length=32,
                  return_tensors="pt")
        p_funny = model(**enc).logits.softmax(-1)[:, 0]
    assert abs(p_funny.mean().item() - 0.8) < 0.05
    assert json.loads((result.out / "train_meta.json").read_text())["soft_labels"] is True


def test_soft_labels_full_fine_tuning(tiny, tmp_path):
    rows = list(csv.DictReader(tiny["small"].open(newline="", encoding="utf-8")))
    soft = tmp_path / "labels.jsonl"
    with soft.open("w", encoding="utf-8") as f:
        for r in rows:  # soft rows and a one-hot row without probs
            probs = {r["label"]: 0.7, ("not_funny" if r["label"] == "funny" else "funny"): 0.3}
            f.write(json.dumps({"text": r["text"], "probs": probs}) + "\n")
        f.write(json.dumps({"text": "a row with only a label", "label": "funny"}) + "\n")
    torch.set_num_threads(1)
    result = train(TrainConfig(data=soft, out=tmp_path / "m", soft_labels=True, **{**TINY, "epochs": 1}))
    assert result.labels == ["funny", "not_funny"]
    assert (result.out / "model.safetensors").is_file()


def test_freeze_encoder_trains_only_the_head(tiny, tmp_path):
    torch.set_num_threads(1)
    result = train(TrainConfig(data=tiny["small"], out=tmp_path / "m", freeze_encoder=True, head_epochs=20,
                               **TINY))
    got = _weights(result.out)
    base = load_file(str(default_student() / "model.safetensors"))
    shared = [k for k in base if "bert." + k in got]
    assert len(shared) > 50
    assert all(torch.equal(base[k], got["bert." + k]) for k in shared)
    assert {"classifier.weight", "classifier.bias"} <= got.keys()
    assert not (result.out / "checkpoints").exists()


def _skewed(path: Path, n_major: int, n_minor: int) -> list[dict[str, str]]:
    """n_major 'funny' rows then n_minor 'not_funny' rows of a CSV."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    funny = [{"text": r["text"], "label": r["label"]} for r in rows if r["label"] == "funny"]
    other = [{"text": r["text"], "label": r["label"]} for r in rows if r["label"] != "funny"]
    return funny[:n_major] + other[:n_minor]


def test_balanced_class_weights_counter_skewed_labels(example_dir, tmp_path):
    """90/10 labels: balanced weights make the head predict the minority class more often than without."""
    rows = _skewed(example_dir / "train.csv", 36, 4)
    data = write_csv(tmp_path / "skewed.csv", rows)
    torch.set_num_threads(1)
    cfg = {**TINY, "freeze_encoder": True, "head_epochs": 100, "val_fraction": 0}
    plain = train(TrainConfig(data=data, out=tmp_path / "plain", class_weight="none", **cfg))
    weighted = train(TrainConfig(data=data, out=tmp_path / "balanced", class_weight="balanced", **cfg))

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from llm2edge.hub.train import predict_indices

    def minority_predictions(folder: Path) -> int:
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        pred = predict_indices(model, tokenizer, [r["text"] for r in rows], max_length=32, batch_size=16)
        return sum(1 for i in pred if model.config.id2label[i] == "not_funny")

    assert minority_predictions(weighted.out) > minority_predictions(plain.out)
    meta = json.loads((weighted.out / "train_meta.json").read_text())
    assert meta["class_weight"] == "balanced"
    assert meta["class_weights"] == pytest.approx({"funny": 40 / (2 * 36), "not_funny": 40 / (2 * 4)})
    meta_plain = json.loads((plain.out / "train_meta.json").read_text())
    assert meta_plain["class_weight"] == "none" and meta_plain["class_weights"] is None
    assert meta["config_hash"] != meta_plain["config_hash"]


def test_class_weights_from_hard_and_soft_targets():
    from llm2edge.hub.train.batches import class_weights

    hard = torch.tensor([0, 0, 0, 1])
    assert class_weights(hard, 3, "none") is None
    assert class_weights(hard, 3, "balanced").tolist() == pytest.approx([4 / 9, 4 / 3, 1.0])  # absent: 1
    soft = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.8, 0.2], [0.6, 0.4]])  # mass 3.0 vs 1.0
    assert class_weights(soft, 2, "balanced").tolist() == pytest.approx([4 / 6, 4 / 2])


def test_data_errors_name_file_and_row(tiny, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,funny\nalso fine,not_funny\nno label here,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.csv:4: empty label"):
        train(TrainConfig(data=bad, out=tmp_path / "m", **TINY))
    other = tmp_path / "eval.csv"
    other.write_text("text,label\nok,funny\nwhat,meh\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"eval\.csv:3: eval label 'meh' is not one of the training labels"):
        train(TrainConfig(data=tiny["small"], eval_data=other, out=tmp_path / "m", **TINY))
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("body,label\nx,funny\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing column"):
        train(TrainConfig(data=nocol, out=tmp_path / "m", **TINY))
    soft = tmp_path / "soft.jsonl"
    soft.write_text('{"text": "a", "probs": {"x": 1}}\n{"text": "b", "probs": {"x": -1, "y": 2}}\n')
    with pytest.raises(DataError, match=r"soft\.jsonl:2: 'probs' has a bad probability"):
        train(TrainConfig(data=soft, out=tmp_path / "m", soft_labels=True, **TINY))
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        train(TrainConfig(data=tiny["small"], out=tmp_path / "m", **{**TINY, "epochs": 0}))
    with pytest.raises(ConfigError, match="class_weight must be one of auto, none, balanced"):
        train(TrainConfig(data=tiny["small"], out=tmp_path / "m", class_weight="inverse", **TINY))


@pytest.mark.parametrize(("change", "message"), [
    ({"epochs": 0}, "epochs must be at least 1, got 0"),
    ({"max_length": 1}, "max_length must be an integer from 2 to 32768, got 1"),
    ({"max_length": 10**6}, "max_length must be an integer from 2 to 32768"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"lr": 0.0}, "lr must be positive"),
    ({"warmup_ratio": 1.0}, r"warmup_ratio must be in \[0, 1\)"),
    ({"val_fraction": -0.1}, r"val_fraction must be in \[0, 1\)"),
    ({"threads": 0}, "threads must be an integer >= 1, got 0"),
    ({"class_weight": "inverse"}, "class_weight must be one of .*none, balanced, got 'inverse'"),
    ({"labels": ["a", "a"]}, "labels has duplicates"),
])
def test_bad_config_is_a_config_error_when_built(tmp_path, change, message):
    """TrainConfig checks itself in __post_init__: a bad value fails before any data or model is read."""
    with pytest.raises(ConfigError, match=message):
        TrainConfig(data=tmp_path / "not-read.csv", out=tmp_path / "m", **change)
    assert not (tmp_path / "m").exists()


def test_bad_config_out_is_a_file(tmp_path):
    (tmp_path / "m").write_text("x")
    with pytest.raises(ConfigError, match="--out must be a folder"):
        TrainConfig(data=tmp_path / "d.csv", out=tmp_path / "m")


def test_cli_errors_are_one_line(tiny, tmp_path, capsys):
    from llm2edge.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "m")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"llm2edge: error: {tmp_path / 'none.csv'}: no such file"]
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", str(tiny["small"]), "--out", str(tmp_path / "m"),
              "--model", str(tmp_path / "no-model")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "no such model folder" in err[0]


def test_corrupt_checkpoint_on_resume_is_one_line(tiny, tmp_path, capsys):
    from llm2edge.cli import main

    torch.set_num_threads(1)
    out = tmp_path / "m"
    train(TrainConfig(data=tiny["small"], out=out, **{**TINY, "epochs": 1}))
    ckpt = out / "checkpoints" / "epoch-1"
    args = ["train", "--data", str(tiny["small"]), "--out", str(out), "--epochs", "1", "--max-length", "32",
            "--batch-size", "8", "--seed", "7", "--lr", "1e-4", "--threads", "1", *TINY_FLAGS]
    torch.save(Path("not/a/state/dict"), ckpt / "optimizer.bin")  # a pickle torch refuses to load
    for name in ("optimizer.bin", "model.safetensors"):
        if name == "model.safetensors":
            (ckpt / name).write_bytes(b"a damaged file, not a checkpoint")
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1, err
        kind = "UnpicklingError" if name == "optimizer.bin" else "SafetensorError"
        assert err[0] == (f"llm2edge: error: {ckpt}: the checkpoint is damaged and cannot be loaded "
                          f"({kind}); pass --no-resume to start over")


@pytest.mark.slow
def test_ddp_two_processes_under_accelerate_launch(tiny, tmp_path):
    """Two CPU processes (gloo) with `accelerate launch --multi_gpu`: one set of outputs, printed once."""
    accelerate = Path(sys.executable).with_name("accelerate")
    if not accelerate.exists():
        pytest.skip("the accelerate launcher is not installed next to this python")
    out = tmp_path / "model"
    proc = subprocess.run(
        [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
         "-m", "llm2edge", "train", "--data", str(tiny["train"]), "--eval", str(tiny["eval"]),
         "--out", str(out), "--epochs", "1", "--max-length", "32", "--batch-size", "8", "--min-steps", "0"],
        env={**ENV, "CUDA_VISIBLE_DEVICES": ""}, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "train_meta.json").read_text())
    assert meta["num_processes"] == 2 and meta["threads"] >= 1
    assert json.loads((out / "metrics.json").read_text())["n"] == 20
    assert proc.stdout.count("accuracy=") == 1  # only rank 0 prints the table
    assert proc.stderr.count("llm2edge: trained") == 1
    assert sorted(p.name for p in out.iterdir() if p.suffix == ".tmp") == []
