"""Multi-label bundles at the edge (issue 23.6): manifest, Classifier lists, predict columns, the defer band,
invariance to batch/chunk/threads, calibrate, and bad input."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from llm2edge.edge.bundle import MANIFEST_SCHEMA, MULTI_LABEL_SCHEMA, read_bundle, write_manifest
from llm2edge.edge.classifier import Classifier
from llm2edge.errors import BundleError
from tests.edge.conftest import ML_TEXTS, make_multilabel
from tests.helpers import run_cli as run
from tests.helpers import write_table


def expected(bundle, texts):
    """(sigmoid probabilities, decisions) of the numpy twin under the manifest's thresholds."""
    probs = 1 / (1 + np.exp(-bundle.reference(texts).astype(np.float64)))
    cuts = np.array(list(json.loads((bundle.path / "manifest.json").read_text())["thresholds"].values()))
    return probs, probs >= cuts, cuts


def write_inputs(path, texts):
    return write_table(path, ["id", "text"], ([str(i), t] for i, t in enumerate(texts)))


def test_manifest_multi_label_and_thresholds(ml_bundle):
    info = read_bundle(ml_bundle.path)
    manifest = json.loads((ml_bundle.path / "manifest.json").read_text(encoding="utf-8"))
    assert info.multi_label and manifest["multi_label"] is True
    # schema 2: a runtime that predates label sets (it reads schema 1 only) refuses the bundle instead of
    # answering with softmax single labels
    assert manifest["schema"] == MULTI_LABEL_SCHEMA == 2
    assert list(info.thresholds) == list(ml_bundle.labels) == list(manifest["thresholds"])
    assert info.thresholds == manifest["thresholds"]


def test_single_label_manifest_stays_single(tiny_bundle):
    info = read_bundle(tiny_bundle.path)
    manifest = json.loads((tiny_bundle.path / "manifest.json").read_text(encoding="utf-8"))
    assert not info.multi_label and info.thresholds == {}
    assert "multi_label" not in manifest and "thresholds" not in manifest
    assert manifest["schema"] == MANIFEST_SCHEMA == 1


@pytest.mark.parametrize(("edit", "message"), [
    ({"thresholds": {"negative": 0.5, "boredom": 0.4}}, "thresholds name unknown label 'boredom'"),
    ({"thresholds": {"negative": 1.5}}, "threshold of 'negative' must be a probability"),
    ({"thresholds": ["negative"]}, "'thresholds' must map label names"),
    ({"multi_label": "yes"}, "'multi_label' must be true or false"),
    ({"multi_label": False}, "'thresholds' given, but the bundle is not multi_label"),
    ({"schema": 1}, "schema 1 is for single-label bundles, but multi_label is true"),
    ({"multi_label": False, "thresholds": None},
     "schema 2 is for multi-label bundles, but multi_label is false"),
])
def test_bad_multi_label_manifests_are_bundle_errors(ml_bundle, tmp_path, edit, message):
    folder = tmp_path / "b"
    shutil.copytree(ml_bundle.path, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest.update(edit)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match=message) as err:
        read_bundle(folder)
    assert "manifest.json" in str(err.value) and "\n" not in str(err.value)


def test_write_manifest_refuses_thresholds_without_multi_label(tiny_bundle, tmp_path):
    folder = tmp_path / "b"
    shutil.copytree(tiny_bundle.path, folder)
    with pytest.raises(BundleError, match="multi-label bundle only"):
        write_manifest(folder, labels=list(tiny_bundle.labels), max_length=32, source_model="x",
                       quantization="none", thresholds={"negative": 0.5})
    with pytest.raises(BundleError, match="unknown label 'nope'"):
        write_manifest(folder, labels=list(tiny_bundle.labels), max_length=32, source_model="x",
                       quantization="none", multi_label=True, thresholds={"nope": 0.5})


def test_classifier_returns_label_lists_and_sigmoid_probabilities(ml_bundle):
    clf = Classifier.load(ml_bundle.path, threads=1)
    probs, decisions, _ = expected(ml_bundle, ML_TEXTS)
    got = clf.predict_proba(ML_TEXTS)
    np.testing.assert_allclose(got, probs, atol=1e-5)
    assert not np.allclose(got.sum(axis=1), 1.0)
    sets = clf.predict(ML_TEXTS)
    assert sets == [[n for n, d in zip(ml_bundle.labels, row) if d] for row in decisions]
    assert all(isinstance(s, list) for s in sets)
    assert {len(s) for s in sets} >= {0, 1, 3} or len({len(s) for s in sets}) >= 3  # sets of several sizes
    assert clf.predict("I loved it") == sets[:1] and clf.predict([]) == []


def test_defer_band_rule(ml_bundle):
    clf = Classifier.load(ml_bundle.path, threads=1)
    probs, decisions, cuts = expected(ml_bundle, ML_TEXTS)
    margin = np.abs(probs - cuts).min(axis=1)
    width = float(np.median(margin))
    rows = clf.predict(ML_TEXTS, defer=width)
    assert [r.label for r in rows] == clf.predict(ML_TEXTS)
    np.testing.assert_allclose([r.confidence for r in rows], margin, atol=1e-5)
    assert [r.deferred for r in rows] == (margin < width).tolist()
    assert 0 < sum(r.deferred for r in rows) < len(rows)
    assert not any(r.deferred for r in clf.predict(ML_TEXTS, defer=0.0))
    assert all(r.deferred for r in clf.predict(ML_TEXTS, defer=1.0))


def test_predict_csv_and_jsonl_columns(ml_bundle, tmp_path, capsys, monkeypatch):
    inputs = write_inputs(tmp_path / "in.csv", ML_TEXTS)
    probs, decisions, cuts = expected(ml_bundle, ML_TEXTS)
    sets = [[n for n, d in zip(ml_bundle.labels, row) if d] for row in decisions]
    width = float(np.median(np.abs(probs - cuts).min(axis=1)))
    out_csv, out_jsonl = tmp_path / "p.csv", tmp_path / "p.jsonl"
    for out in (out_csv, out_jsonl):
        code, _, err = run(["predict", "-b", str(ml_bundle.path), "-i", str(inputs), "-o", str(out),
                            "--defer", str(width), "--threads", "1"], capsys, monkeypatch)
        assert code == 0, err
        assert "a label's probability within" in err
    with out_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "label", "deferred", *(f"p_{n}" for n in ml_bundle.labels)]
    assert [r["label"] for r in rows] == [";".join(s) for s in sets]
    got = [[float(r[f"p_{n}"]) for n in ml_bundle.labels] for r in rows]
    np.testing.assert_allclose(got, probs, atol=1e-5)
    margin = np.abs(probs - cuts).min(axis=1)
    assert [r["deferred"] == "true" for r in rows] == (margin < width).tolist()
    objs = [json.loads(line) for line in out_jsonl.read_text(encoding="utf-8").splitlines()]
    assert [o["label"] for o in objs] == sets and all(isinstance(o["label"], list) for o in objs)
    assert list(objs[0]["probs"]) == list(ml_bundle.labels)
    assert json.loads((tmp_path / "p.jsonl.run.json").read_text())["multi_label"] is True


def test_same_rows_for_any_batch_chunk_threads(ml_bundle, tmp_path, capsys, monkeypatch):
    texts = ML_TEXTS * 7
    inputs = write_inputs(tmp_path / "in.csv", texts)
    outputs = []
    for i, extra in enumerate([["--batch-size", "1", "--chunk-size", "1", "--threads", "1"],
                               ["--batch-size", "64", "--chunk-size", "1000", "--threads", "2"],
                               ["--batch-size", "3", "--chunk-size", "7", "--threads", "2"]]):
        out = tmp_path / f"p{i}.csv"
        code, _, err = run(["predict", "-b", str(ml_bundle.path), "-i", str(inputs), "-o", str(out), *extra],
                           capsys, monkeypatch)
        assert code == 0, err
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_calibrate_fits_the_band_and_defer_auto_uses_it(tmp_path, capsys, monkeypatch):
    from llm2edge.edge.calibrate import calibrate_bundle

    bundle = make_multilabel(tmp_path / "b")
    texts = [f"{t} {k}" for k in range(12) for t in ML_TEXTS[:9]]
    probs, decisions, cuts = expected(bundle, texts)
    margin = np.abs(probs - cuts).min(axis=1)
    # labels: the bundle's own sets, except on the third of rows nearest a threshold (there it errs)
    wrong = margin < np.quantile(margin, 1 / 3)
    gold = decisions.copy()
    gold[wrong, 0] = ~gold[wrong, 0]
    data = tmp_path / "labelled.jsonl"
    sets = [[n for n, g in zip(bundle.labels, row) if g] for row in gold]
    data.write_text("".join(json.dumps({"text": t, "label": s}) + "\n" for t, s in zip(texts, sets)),
                    encoding="utf-8")
    result = calibrate_bundle(bundle.path, data, target=0.9, confidence=0.9, threads=1)
    width = result.threshold
    assert width is not None and result.manifest["calibration"]["score"] == "margin"
    kept = margin >= width - 1e-9
    assert not wrong[kept].any() or wrong[kept].mean() <= 0.1
    assert kept.sum() < len(texts) and kept.sum() >= (~wrong).sum() * 0.5
    info = read_bundle(bundle.path)  # still a verified multi-label bundle with its thresholds
    assert info.multi_label and info.defer_threshold == width
    rows = Classifier.load(bundle.path, threads=1).predict(texts, defer="auto")
    assert [r.deferred for r in rows] == (np.array([r.confidence for r in rows]) < width).tolist()


def test_calibrate_names_an_unknown_label_in_a_set(ml_bundle, tmp_path, capsys, monkeypatch):
    bundle = tmp_path / "b"
    shutil.copytree(ml_bundle.path, bundle)
    data = tmp_path / "labelled.csv"
    data.write_text("text,label\nhello,negative;positive\nbye,negative;boredom\n", encoding="utf-8")
    code, _, err = run(["calibrate", "-b", str(bundle), "-d", str(data), "--threads", "1"], capsys,
                       monkeypatch)
    assert code == 2 and "labelled.csv:3: unknown label 'boredom'" in err
    assert len(err.strip().splitlines()) == 1


def test_bad_input_is_one_line_and_exit_2(ml_bundle, tiny_bundle, tmp_path, capsys, monkeypatch):
    bundle = tmp_path / "b"
    shutil.copytree(ml_bundle.path, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest["thresholds"]["boredom"] = 0.5
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    code, out, err = run(["predict", "-b", str(bundle), "hello"], capsys, monkeypatch)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert f"{bundle / 'manifest.json'}: thresholds name unknown label 'boredom'" in err
    sets = tmp_path / "sets.csv"  # label sets given to a single-label bundle's calibration
    sets.write_text("text,label\nhello,negative\nworld,negative;positive\n", encoding="utf-8")
    single = tmp_path / "single"
    shutil.copytree(tiny_bundle.path, single)
    code, _, err = run(["calibrate", "-b", str(single), "-d", str(sets), "--threads", "1"], capsys,
                       monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{sets}:3: label 'negative;positive' is a list of labels, but the task is single-label" in err


def test_predict_defer_then_merge_label_sets(ml_bundle, tmp_path, capsys, monkeypatch):
    inputs = write_inputs(tmp_path / "in.csv", ML_TEXTS)
    probs, decisions, cuts = expected(ml_bundle, ML_TEXTS)
    width = float(np.median(np.abs(probs - cuts).min(axis=1)))
    pred, todo = tmp_path / "pred.csv", tmp_path / "todo.csv"
    code, _, err = run(["predict", "-b", str(ml_bundle.path), "-i", str(inputs), "-o", str(pred), "--defer",
                        str(width), "--deferred-out", str(todo), "--threads", "1"], capsys, monkeypatch)
    assert code == 0, err
    with todo.open(encoding="utf-8", newline="") as handle:
        deferred = [r["id"] for r in csv.DictReader(handle)]
    assert deferred
    answers = {rid: (["positive", "negative"] if k % 2 else []) for k, rid in enumerate(deferred)}
    llm = tmp_path / "labels.jsonl"
    llm.write_text("".join(json.dumps({"id": rid, "label": s}) + "\n" for rid, s in answers.items()),
                   encoding="utf-8")
    for out in (tmp_path / "final.csv", tmp_path / "final.jsonl"):
        code, _, err = run(["merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out", str(out)],
                           capsys, monkeypatch)
        assert code == 0, err
    with (tmp_path / "final.csv").open(encoding="utf-8", newline="") as handle:
        merged = list(csv.DictReader(handle))
    sets = [[n for n, d in zip(ml_bundle.labels, row) if d] for row in decisions]
    for row, edge_set in zip(merged, sets):
        assert row["edge_label"] == ";".join(edge_set)
        if row["id"] in answers:  # canonical order: negative before positive
            assert row["source"] == "llm" and row["label"] == ";".join(sorted(answers[row["id"]]))
        else:
            assert row["source"] == "edge" and row["label"] == ";".join(edge_set)
    objs = [json.loads(line) for line in (tmp_path / "final.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [o["edge_label"] for o in objs] == sets and all(isinstance(o["label"], list) for o in objs)
    llm.write_text(json.dumps({"id": deferred[0], "label": ["positive", "bored"]}) + "\n", encoding="utf-8")
    code, _, err = run(["merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out",
                        str(tmp_path / "x.csv")], capsys, monkeypatch)
    assert code == 2 and f"{llm}:1: unknown label 'bored'" in err and "--map 'bored=LABEL'" in err
    answers[deferred[0]] = ["positive", "bored"]
    llm.write_text("".join(json.dumps({"id": rid, "label": s}) + "\n" for rid, s in answers.items()),
                   encoding="utf-8")
    code, _, err = run(["merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out",
                        str(tmp_path / "x.csv"), "--map", "bored=neutral"], capsys, monkeypatch)
    assert code == 0, err
    with (tmp_path / "x.csv").open(encoding="utf-8", newline="") as handle:
        first = next(r for r in csv.DictReader(handle) if r["id"] == deferred[0])
    assert first["label"] == "neutral;positive"


def test_thresholds_are_part_of_the_bundle_checksum(ml_bundle, tmp_path, capsys, monkeypatch):
    """A re-tuned threshold changes the label sets: a resume across it is refused like a new model."""
    bundle = tmp_path / "b"
    shutil.copytree(ml_bundle.path, bundle)
    before = read_bundle(bundle)
    inputs = write_inputs(tmp_path / "in.csv", ML_TEXTS)
    out = tmp_path / "p.csv"
    assert run(["predict", "-b", str(bundle), "-i", str(inputs), "-o", str(out), "--threads", "1"], capsys,
               monkeypatch)[0] == 0
    moved = {name: min(1.0, t + 0.01) for name, t in before.thresholds.items()}
    write_manifest(bundle, labels=before.labels, max_length=32, source_model="tiny-test-model",
                   quantization="none", multi_label=True, thresholds=moved)
    after = read_bundle(bundle)
    assert after.files == before.files and after.checksum != before.checksum
    code, _, err = run(["predict", "-b", str(bundle), "-i", str(inputs), "-o", str(out), "--threads", "1",
                        "--resume"], capsys, monkeypatch)
    assert code == 2 and "its rows were made with bundle (checksum)" in err
