"""Selective prediction: the Clopper-Pearson bound, `calibrate` writing a threshold into a real bundle,
`predict --defer` / `Classifier.predict(defer=...)`, `--deferred-out`, and `merge-predictions`."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from llm2edge.edge import Classifier, read_bundle
from llm2edge.edge.calibrate import (
    CSV_NAME,
    calibrate_bundle,
    choose,
    clopper_pearson_lower,
    selection_curve,
)
from llm2edge.edge.defer import Prediction, resolve_defer
from llm2edge.errors import BundleError, ConfigError, DataError
from tests.helpers import run_cli as run


def _texts(example_dir: Path, n: int = 400) -> list[str]:
    with (example_dir / "test.csv").open(newline="", encoding="utf-8") as handle:
        return [r["text"] for r in csv.DictReader(handle)][:n]


def labelled_file(path: Path, bundle, texts: list[str], *, keep_right: float, seed: int = 0) -> Path:
    """Labels that agree with the bundle on its `keep_right` most confident texts, half the rest wrong."""
    proba = Classifier.load(bundle.path, threads=1).predict_proba(texts)
    pred, top = proba.argmax(axis=1), proba.max(axis=1)
    order = np.argsort(-top)
    rng = np.random.default_rng(seed)
    labels = [bundle.labels[i] for i in pred]
    for rank, i in enumerate(order):
        if rank >= keep_right * len(texts) and rng.random() < 0.5:
            labels[i] = bundle.labels[(pred[i] + 1) % len(bundle.labels)]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        writer.writerows([[f"i{n}", t, label] for n, (t, label) in enumerate(zip(texts, labels))])
    return path


@pytest.mark.parametrize("use_scipy", [False, True])
def test_clopper_pearson_matches_the_beta_quantile(use_scipy: bool) -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    n = rng.integers(1, 3000, 300)
    k = np.minimum((rng.random(300) * (n + 1)).astype(int), n)
    k[:3], k[3:6] = n[:3], 0
    got = clopper_pearson_lower(k, n, 0.95, use_scipy=use_scipy)
    want = np.where(k == 0, 0.0, stats.beta.ppf(0.05, np.maximum(k, 1), n - k + 1))
    np.testing.assert_allclose(got, want, atol=1e-10)
    np.testing.assert_allclose(clopper_pearson_lower([10], [10], 0.9, use_scipy=use_scipy), 0.1 ** (1 / 10))
    with pytest.raises(ConfigError):
        clopper_pearson_lower([5], [4], 0.95)


def test_the_lowest_threshold_whose_bound_meets_the_target() -> None:
    top = np.array([0.99, 0.98, 0.97, 0.9, 0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 1, 1, 1, 1, 1, 0, 0], dtype=bool)
    curve = selection_curve(top, correct, 0.5)  # confidence 0.5: the bound is near the observed share
    assert curve.thresholds.tolist() == [0.99, 0.98, 0.97, 0.9, 0.8, 0.7, 0.6]  # ties form one candidate
    assert curve.kept.tolist() == [1, 2, 3, 5, 6, 7, 8]
    i = choose(curve, 0.85)
    assert curve.thresholds[i] == 0.8 and curve.agreement[i] == 1.0
    assert choose(curve, 0.999) is None


def test_calibrate_writes_a_verified_threshold(make_bundle, example_dir, tmp_path) -> None:
    bundle = make_bundle("cal")
    texts = _texts(example_dir)
    data = labelled_file(tmp_path / "held_out.csv", bundle, texts, keep_right=0.6)
    result = calibrate_bundle(bundle.path, data, target=0.9, confidence=0.95, threads=1)
    assert result.threshold is not None and "keeps" in result.summary()
    info = read_bundle(bundle.path)  # checksums updated: verifies
    cal = info.calibration
    assert info.defer_threshold == result.threshold and cal["target"] == 0.9 and cal["n"] == len(texts)
    assert CSV_NAME in info.files and "calibration.png" in info.files
    assert 0.5 < cal["coverage"] < 0.8 and cal["lower_bound"] >= 0.9 and cal["curve"]
    proba = Classifier.load(bundle.path, threads=1).predict_proba(texts)
    kept = proba.max(axis=1) >= result.threshold
    assert kept.mean() == pytest.approx(cal["coverage"], abs=1e-6)
    with (bundle.path / CSV_NAME).open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert float(rows[0]["threshold"]) > float(rows[-1]["threshold"]) and rows[-1]["coverage"] == "1.0"

    clf = Classifier.load(bundle.path, threads=1)
    preds = clf.predict(texts, defer="auto")
    assert all(isinstance(p, Prediction) for p in preds)
    assert [p.deferred for p in preds] == (~kept).tolist()
    assert [p.label for p in preds] == clf.predict(texts)
    assert not any(p.deferred for p in clf.predict(texts, defer="none"))
    assert sum(p.deferred for p in clf.predict(texts, defer=1.0)) == len(texts)


def test_an_unreachable_target_writes_no_threshold(make_bundle, example_dir, tmp_path, capsys,
                                                   monkeypatch) -> None:
    bundle = make_bundle("hard")
    data = labelled_file(tmp_path / "noisy.csv", bundle, _texts(example_dir, 200), keep_right=0.0)
    code, out, err = run(["calibrate", "-b", str(bundle.path), "-d", str(data), "--target", "0.99",
                          "--threads", "1"], capsys, monkeypatch)
    assert code == 0 and "no threshold reaches agreement >= 0.99" in err
    info = read_bundle(bundle.path)
    assert info.calibration["threshold"] is None and info.defer_threshold is None
    with pytest.raises(BundleError, match="no threshold"):
        resolve_defer(info, "auto")


def test_resolve_defer(tiny_bundle) -> None:
    info = read_bundle(tiny_bundle.path)
    assert resolve_defer(info, None) is None and resolve_defer(info, "none") is None
    assert resolve_defer(info, "0.7") == 0.7 and resolve_defer(info, 0.25) == 0.25
    with pytest.raises(BundleError, match="not calibrated"):
        resolve_defer(info, "auto")
    for bad in ("1.5", "maybe", -0.1):
        with pytest.raises(ConfigError, match="defer"):
            resolve_defer(info, bad)


def test_calibrate_rejects_labels_the_bundle_does_not_know(tiny_bundle, tmp_path, capsys,
                                                           monkeypatch) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("text,label\nhello,neutral\nworld,sarcastic\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.csv:3: label 'sarcastic'"):
        calibrate_bundle(tiny_bundle.path, data, threads=1)


def test_predict_defer_then_merge_with_llm_labels(make_bundle, example_dir, tmp_path, capsys,
                                                   monkeypatch) -> None:
    bundle = make_bundle("flow")
    texts = _texts(example_dir, 300)
    data = labelled_file(tmp_path / "held.csv", bundle, texts, keep_right=0.6)
    assert run(["calibrate", "-b", str(bundle.path), "-d", str(data), "--target", "0.9", "--threads", "1"],
               capsys, monkeypatch)[0] == 0
    threshold = read_bundle(bundle.path).defer_threshold
    pred, deferred = tmp_path / "pred.csv", tmp_path / "deferred.csv"
    code, _, err = run(["predict", "-b", str(bundle.path), "-i", str(data), "-o", str(pred), "--defer",
                        "auto", "--deferred-out", str(deferred), "--threads", "1", "--no-progress"],
                       capsys, monkeypatch)
    assert code == 0, err
    with pred.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:3] == ["id", "label", "deferred"]
    top = Classifier.load(bundle.path, threads=1).predict_proba(texts).max(axis=1)
    assert [r["deferred"] == "true" for r in rows] == (top < threshold).tolist()
    with deferred.open(encoding="utf-8") as handle:
        to_label = list(csv.DictReader(handle))
    assert [r["id"] for r in to_label] == [r["id"] for r in rows if r["deferred"] == "true"]
    assert to_label and list(to_label[0]) == ["id", "text"] and f"{len(to_label)} of {len(rows)} rows" in err

    llm = tmp_path / "labels.jsonl"
    with llm.open("w", encoding="utf-8") as handle:
        for r in to_label:
            handle.write(json.dumps({"id": r["id"], "text": r["text"], "label": "neutral"}) + "\n")
    final = tmp_path / "final.jsonl"
    code, _, err = run(["merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out", str(final)],
                       capsys, monkeypatch)
    assert code == 0, err
    merged = [json.loads(line) for line in final.read_text(encoding="utf-8").splitlines()]
    assert [m["id"] for m in merged] == [r["id"] for r in rows]
    for m, r in zip(merged, rows):
        assert m["source"] == ("llm" if r["deferred"] == "true" else "edge")
        assert m["label"] == ("neutral" if r["deferred"] == "true" else r["label"])
    assert f"{len(to_label)} deferred" in err

    llm.write_text("\n".join(llm.read_text(encoding="utf-8").splitlines()[1:]) + "\n", encoding="utf-8")
    code, _, err = run(["merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out", str(final)],
                       capsys, monkeypatch)
    assert code == 2 and f"deferred item '{to_label[0]['id']}' has no LLM label" in err


def test_predict_defer_jsonl_and_misuse(tiny_bundle, tmp_path, capsys, monkeypatch) -> None:
    code, out, err = run(["predict", "-b", str(tiny_bundle.path), "--defer", "0.999", "good", "bad"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert [json.loads(line)["deferred"] for line in out.splitlines()] == [True, True]
    code, _, err = run(["predict", "-b", str(tiny_bundle.path), "--defer", "auto", "x"], capsys, monkeypatch)
    assert code == 2 and "not calibrated" in err
    code, _, err = run(["predict", "-b", str(tiny_bundle.path), "--deferred-out", str(tmp_path / "d.csv"),
                        "x"], capsys, monkeypatch)
    assert code == 2 and "--deferred-out needs a --defer threshold" in err
    plain = tmp_path / "plain.jsonl"
    assert run(["predict", "-b", str(tiny_bundle.path), "-o", str(plain), "x"], capsys, monkeypatch)[0] == 0
    code, _, err = run(["merge-predictions", "--edge", str(plain), "--llm", str(plain), "--out",
                        str(tmp_path / "f.csv")], capsys, monkeypatch)
    assert code == 2 and "missing column(s) deferred" in err


def test_merge_refuses_llm_labels_outside_the_bundle_unless_mapped(tiny_bundle, tmp_path, capsys,
                                                                   monkeypatch) -> None:
    """Issue 24: 'sarcastic' into a negative/neutral/positive file was merged without a word."""
    pred = tmp_path / "pred.csv"
    assert run(["predict", "-b", str(tiny_bundle.path), "a", "b", "c", "-o", str(pred), "--defer", "1.0",
                "--no-progress"], capsys, monkeypatch)[0] == 0
    with pred.open(encoding="utf-8") as handle:
        ids = [r["id"] for r in csv.DictReader(handle)]
    llm = tmp_path / "llm.csv"
    llm.write_text(f"id,label\n{ids[0]},positive\n{ids[1]},sarcastic\n{ids[2]},neutral\n", encoding="utf-8")
    final = tmp_path / "final.csv"
    code, _, err = run(["merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out", str(final)],
                       capsys, monkeypatch)
    assert code == 2 and not final.exists()
    assert err == (f"llm2edge: error: {llm}:3: label 'sarcastic' is not one of the bundle's labels negative, "
                   f"neutral, positive (from {pred}); map it with --map 'sarcastic=LABEL'\n")
    code, _, err = run(["merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out", str(final),
                        "--map", "sarcastic=negative"], capsys, monkeypatch)
    assert code == 0, err
    with final.open(encoding="utf-8") as handle:
        assert [r["label"] for r in csv.DictReader(handle)] == ["positive", "negative", "neutral"]
    assert "(1 LLM label(s) renamed through --map)" in err
    code, _, err = run(["merge-predictions", "--edge", str(pred), "--llm", str(llm), "--out", str(final),
                        "--map", "sarcastic=ironic"], capsys, monkeypatch)
    assert code == 2 and "'ironic' is not one of the labels negative, neutral, positive" in err


@pytest.mark.parametrize("confidence", ["0", "1", "-0.5", "1.5"])
def test_calibrate_confidence_is_inside_zero_one(tiny_bundle, tmp_path, capsys, monkeypatch,
                                                 confidence) -> None:
    """Issue 24: --confidence 0 printed 'lower bound 1.0000' over an observed 0.60 and wrote it."""
    data = tmp_path / "d.csv"
    data.write_text("text,label\nhello,neutral\nworld,positive\n", encoding="utf-8")
    before = (tiny_bundle.path / "manifest.json").read_bytes()
    code, _, err = run(["calibrate", "-b", str(tiny_bundle.path), "-d", str(data), "--confidence",
                        confidence], capsys, monkeypatch)
    assert code == 2
    assert err == (f"llm2edge: error: confidence must be in (0, 1), both ends excluded, got "
                   f"{float(confidence)!r}\n")
    assert (tiny_bundle.path / "manifest.json").read_bytes() == before


def test_calibrate_data_that_is_no_regular_file_is_not_called_missing(tiny_bundle, tmp_path, capsys,
                                                                        monkeypatch) -> None:
    for data, message in (("/dev/null", "/dev/null: cannot tell the format from the name"),
                          (str(tmp_path), f"{tmp_path}: is a folder, not a file"),
                          (str(tmp_path / "gone.csv"), f"{tmp_path / 'gone.csv'}: no such file")):
        code, _, err = run(["calibrate", "-b", str(tiny_bundle.path), "-d", data], capsys, monkeypatch)
        assert code == 2 and err.startswith(f"llm2edge: error: {message}"), err


def test_the_manifest_names_the_calibration_data_by_name_and_checksum(make_bundle, example_dir,
                                                                      tmp_path) -> None:
    """Issue 24: calibration.data held the absolute path of the machine that calibrated."""
    from llm2edge.hashing import sha256_file

    bundle = make_bundle("named")
    (tmp_path / "deep").mkdir()
    data = labelled_file(tmp_path / "deep" / "held_out.csv", bundle, _texts(example_dir, 100), keep_right=0.8)
    calibrate_bundle(bundle.path, data, target=0.5, threads=1)
    cal = read_bundle(bundle.path).calibration
    assert cal["data"] == "held_out.csv" and cal["data_sha256"] == sha256_file(data)
    assert str(tmp_path) not in (bundle.path / "manifest.json").read_text(encoding="utf-8")


def test_ctrl_c_during_calibrate_is_one_line_and_exit_130(make_bundle, tmp_path) -> None:
    """Issue 24: Ctrl-C during calibrate printed a 40-line traceback."""
    import os
    import signal
    import subprocess
    import time

    bundle = make_bundle("stop")
    data = tmp_path / "big.csv"
    with data.open("w", encoding="utf-8") as handle:
        handle.write("text,label\n")
        handle.writelines(f"text number {i} with a few more words,neutral\n" for i in range(200_000))
    before = (bundle.path / "manifest.json").read_bytes()
    proc = subprocess.Popen([sys.executable, "-m", "llm2edge", "calibrate", "-b", str(bundle.path), "-d",
                             str(data), "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    time.sleep(3)  # started: reading or classifying the 200,000 rows
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "llm2edge: interrupted\n" and out == ""
    assert (bundle.path / "manifest.json").read_bytes() == before
