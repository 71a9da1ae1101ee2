"""`train --student static` for real: the distilled table of the packaged MiniLM (cached), the head on
hard and soft labels, class weights, resume, the model folder, and its export to a bundle the edge loads."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from llm2edge.errors import ConfigError, TrainError  # noqa: E402
from llm2edge.export.static_model import STATIC_MODEL_TYPE, load_static_weights  # noqa: E402
from llm2edge.hub.models import default_student  # noqa: E402
from llm2edge.hub.train import TrainConfig, train  # noqa: E402
from llm2edge.hub.train.distill import (  # noqa: E402
    load_or_distill,
    pca,
    static_tokenizer_json,
    zipf_weights,
)
from tests.helpers import write_csv  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
FAST = {"max_length": 32, "dims": 32, "head_epochs": 20, "threads": 1, "progress": False, "seed": 3}


@pytest.fixture(scope="module")
def source() -> Path:
    """The packaged all-MiniLM-L6-v2 folder (skip when the package is missing)."""
    try:
        return default_student()
    except Exception as exc:  # BackendError when the model package is absent
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def data(example_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shipped example's train rows (both labels) and 60 of its test rows."""
    d = tmp_path_factory.mktemp("static-data")
    with (example_dir / "train.csv").open(newline="", encoding="utf-8") as handle:
        train_rows = [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(handle)]
    with (example_dir / "test.csv").open(newline="", encoding="utf-8") as handle:
        rows = [{"text": r["text"], "label": r["label"]} for r in csv.DictReader(handle)]
    funny = [r for r in rows if r["label"] == "funny"]
    test_rows = funny[:30] + [r for r in rows if r["label"] != "funny"][:30]
    labels = sorted({r["label"] for r in train_rows})
    soft = [{"text": r["text"], "label": "",
             "probs": json.dumps({r["label"]: 0.8, next(x for x in labels if x != r["label"]): 0.2})}
            for r in train_rows]
    return {"train": write_csv(d / "train.csv", train_rows), "eval": write_csv(d / "eval.csv", test_rows),
            "soft": write_csv(d / "soft.csv", soft)}


def test_zipf_weights_follow_model2vecs_rule() -> None:
    w = zipf_weights(5, sif=1e-4)
    p = (1 / np.arange(2, 7)) / (1 / np.arange(2, 7)).sum()
    np.testing.assert_allclose(w, 1e-4 / (1e-4 + p), rtol=1e-6)
    assert np.all(np.diff(w) > 0)  # rarer (later) tokens weigh more


def test_pca_keeps_the_leading_directions() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) * np.array([10, 5, 1, 0.1, 0.1, 0.1])
    y = pca(x, 2)
    assert y.shape == (200, 2) and y.dtype == np.float32
    assert abs(float(np.corrcoef(y[:, 0], x[:, 0])[0, 1])) > 0.99
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-4)


def test_static_tokenizer_drops_special_tokens(source: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(static_tokenizer_json(source / "tokenizer.json"))
    assert tok.encode("Hello world").tokens == ["hello", "world"]
    assert tok.encode("").ids == []


def test_the_table_is_distilled_once_and_cached(source: Path, tmp_path: Path) -> None:
    first = load_or_distill(source, 16, progress=False)  # the user cache: a rerun reuses it
    again = load_or_distill(source, 16, progress=False)
    assert again.cached and again.source_digest == first.source_digest
    np.testing.assert_array_equal(first.embeddings, again.embeddings)
    assert first.embeddings.shape == (30522, 16) and first.embeddings.dtype == np.float32
    assert np.isfinite(first.embeddings).all()
    with pytest.raises(TrainError, match="hidden size 384"):
        load_or_distill(source, 400, progress=False)
    with pytest.raises(TrainError, match="local model folder"):
        load_or_distill(tmp_path / "missing", 16, progress=False)


def test_train_static_writes_a_model_folder_export_reads(source: Path, data: dict[str, Path],
                                                         tmp_path: Path) -> None:
    out = tmp_path / "static"
    result = train(TrainConfig(data=data["train"], eval_data=data["eval"], out=out, student="static", **FAST))
    assert result.metrics is not None and result.metrics["n"] == 60
    assert result.metrics["accuracy"] > 0.5  # better than a coin on the humour example
    for name in ("config.json", "model.safetensors", "tokenizer.json", "validation.csv", "train_meta.json",
                 "metrics.json"):
        assert (out / name).is_file(), name
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == STATIC_MODEL_TYPE
    assert config["id2label"] == {"0": "funny", "1": "not_funny"}
    meta = json.loads((out / "train_meta.json").read_text())
    assert meta["student"] == "static" and meta["dims"] == 32 and meta["max_length"] == 32
    weights = load_static_weights(out)
    assert weights.embeddings.shape == (30522, 32) and weights.weight.shape == (2, 32)

    again = train(TrainConfig(data=data["train"], eval_data=data["eval"], out=out, student="static", **FAST))
    assert again.resumed_from_epoch == FAST["head_epochs"] and again.metrics == result.metrics
    redo = train(TrainConfig(data=data["train"], eval_data=data["eval"], out=out, student="static",
                             resume=False, **FAST))
    assert redo.resumed_from_epoch == 0
    np.testing.assert_array_equal(load_static_weights(out).weight, weights.weight)  # seeded: same head


def test_soft_labels_and_class_weights(source: Path, data: dict[str, Path], tmp_path: Path) -> None:
    soft = train(TrainConfig(data=data["soft"], out=tmp_path / "soft", student="static", soft_labels=True,
                             **FAST))
    assert soft.labels == ["funny", "not_funny"]
    plain = load_static_weights(tmp_path / "soft")
    train(TrainConfig(data=data["soft"], out=tmp_path / "weighted", student="static", soft_labels=True,
                      class_weight="balanced", **FAST))
    meta = json.loads((tmp_path / "weighted" / "train_meta.json").read_text())
    assert meta["soft_labels"] and meta["class_weight"] == "balanced"
    assert not np.array_equal(load_static_weights(tmp_path / "weighted").weight, plain.weight)


def test_bad_student_settings_fail_when_built(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="student"):
        TrainConfig(data="x.csv", out=tmp_path / "o", student="tiny")
    with pytest.raises(ConfigError, match="dims"):
        TrainConfig(data="x.csv", out=tmp_path / "o", student="static", dims=1)


def test_static_export_runs_at_the_edge_like_the_numpy_reference(source: Path, data: dict[str, Path],
                                                                 tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    from llm2edge.edge import Classifier
    from llm2edge.export import ExportConfig, export_bundle

    out = tmp_path / "model"
    train(TrainConfig(data=data["train"], out=out, student="static", **FAST))
    result = export_bundle(ExportConfig(model=out, out=tmp_path / "bundle", threads=1, verbose=False))
    assert result.quantization == "none" and result.manifest["student"] == "static"
    val = result.validation
    assert val["agreement_fp32"] == 1.0 and val["max_logit_diff_fp32"] <= 1e-5 and val["head_folded"]
    assert "static student" in result.table()
    clf = Classifier.load(tmp_path / "bundle", threads=1)
    assert clf.info.student == "static" and clf.input_names == ["input_ids", "attention_mask"]
    texts = [r["text"] for r in csv.DictReader((data["eval"]).open(encoding="utf-8"))][:40] + ["", "ok " * 80]
    ref = load_static_weights(out).logits_of_texts(clf.tokenizer, texts)
    for batch in (1, 7, 32):
        np.testing.assert_allclose(clf.predict_logits(texts, batch_size=batch), ref, atol=1e-5, rtol=0)


def test_cli_trains_and_exports_a_static_student(source: Path, data: dict[str, Path], tmp_path: Path,
                                                 capsys) -> None:
    pytest.importorskip("onnx")
    from llm2edge.cli import main

    def cli(args: list[str]) -> int:
        try:
            main(args)
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    assert cli(["train", "-d", str(data["train"]), "--eval", str(data["eval"]), "-o", str(tmp_path / "m"),
                "--student", "static", "--dims", "32", "--max-length", "32", "--threads", "1"]) == 0
    out, err = capsys.readouterr()
    assert "accuracy" in out and "trained funny, not_funny" in err
    assert json.loads((tmp_path / "m" / "train_meta.json").read_text())["dims"] == 32
    assert cli(["export", "-m", str(tmp_path / "m"), "-o", str(tmp_path / "b"), "--threads", "1"]) == 0
    out, _ = capsys.readouterr()
    assert "static student: 30522 tokens x 2 labels" in out and "agreement 1.0000" in out
