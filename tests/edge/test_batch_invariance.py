"""A text's label and probabilities do not depend on its neighbours (issue 14.7), bit for bit.

Checked on the tiny fp32 bundle and on a dynamic int8 copy of it (onnxruntime's quantize_dynamic: one
activation scale per call, so batching would leak neighbours into each result): batch sizes 1/7/32, chunk
sizes, thread counts, and a predict run killed with SIGKILL and resumed, against an uninterrupted run.
The same checks on a real exported MiniLM are in tests/export/test_export.py.
"""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from llm2edge.edge import Classifier, write_manifest


def _texts(example_dir: Path, n: int = 160) -> list[str]:
    with (example_dir / "test.csv").open(encoding="utf-8", newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:n]
    return [*texts, "", "ok", "word " * 80]  # empty, tiny and truncated texts too


def _int8(make_bundle):
    """A dynamic int8 copy of the tiny model (DynamicQuantizeLinear + MatMulInteger)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    b = make_bundle("int8")
    quantize_dynamic(b.path / "model.onnx", b.path / "model.onnx", weight_type=QuantType.QInt8)
    write_manifest(b.path, labels=list(b.labels), max_length=b.max_length, source_model="tiny-int8",
                   quantization="int8")
    return b


@pytest.fixture(params=["fp32", "int8"])
def bundle(request, make_bundle):
    return make_bundle("fp32") if request.param == "fp32" else _int8(make_bundle)


def test_the_hazard_is_real_for_dynamic_int8(make_bundle, example_dir):
    """Run in batches, the int8 model's outputs do depend on the batch: what the runtime must avoid."""
    b = _int8(make_bundle)
    clf = Classifier.load(b.path, threads=1)
    enc = clf.tokenizer.encode_batch(_texts(example_dir)[:32])
    alone = np.concatenate([clf.session.run(None, clf._feed([e]))[0] for e in enc])
    together = clf.session.run(None, clf._feed(enc))[0]
    assert not np.array_equal(alone, together)


def test_same_output_at_every_batch_size_and_thread_count(bundle, example_dir):
    texts = _texts(example_dir)
    ref = Classifier.load(bundle.path, threads=1).predict_proba(texts, batch_size=1)
    for threads in (1, 2):
        clf = Classifier.load(bundle.path, threads=threads)
        for batch_size in (1, 7, 32):
            got = clf.predict_proba(texts, batch_size=batch_size)
            assert np.array_equal(got, ref), (threads, batch_size, float(np.abs(got - ref).max()))
    # a text alone, and among other texts, in another order
    clf = Classifier.load(bundle.path, threads=1)
    for i in (0, 17, len(texts) - 1):
        assert np.array_equal(clf.predict_proba([texts[i]]), ref[i:i + 1])
    rev = clf.predict_proba(texts[::-1], batch_size=32)
    assert np.array_equal(rev[::-1], ref)


def _predict(bundle: Path, src: Path | str, out: Path, *args: str) -> subprocess.Popen:
    """`llm2edge predict` in a subprocess; src '-' reads stdin (a pipe the test writes)."""
    return subprocess.Popen([sys.executable, "-m", "llm2edge", "predict", "-b", str(bundle), "-i", str(src),
                             "-o", str(out), "--threads", "1", "--input-format", "txt", *args],
                            stdin=subprocess.PIPE if src == "-" else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_rows(path: Path, rows: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.is_file() and path.read_bytes().count(b"\n") >= rows:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {rows} rows")


def test_killed_and_resumed_run_equals_an_uninterrupted_one(bundle, example_dir, tmp_path):
    texts = [t.replace("\n", " ").replace("\r", " ") for t in _texts(example_dir)]
    texts = [t if t.strip() else "blank" for t in texts]
    full_in = tmp_path / "in.txt"
    full_in.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    whole = tmp_path / "whole.csv"
    proc = _predict(bundle.path, full_in, whole)
    assert proc.wait(timeout=120) == 0, proc.communicate()

    # The killed run reads its input from a pipe, so it stops at a known row: 40 lines fed, chunks of 16,
    # so rows 1-32 are written and the third chunk waits for input when SIGKILL arrives.
    part = tmp_path / "part.csv"
    proc = _predict(bundle.path, "-", part, "--chunk-size", "16", "--batch-size", "5")
    assert proc.stdin is not None
    proc.stdin.write("".join(t + "\n" for t in texts[:40]).encode("utf-8"))
    proc.stdin.flush()
    _wait_rows(part, 33, proc)  # header + 32 rows
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.stdin.close()
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()
    assert part.read_bytes().count(b"\n") == 33

    proc = _predict(bundle.path, full_in, part, "--resume", "--chunk-size", "7", "--batch-size", "3")
    assert proc.wait(timeout=120) == 0, proc.communicate()
    assert part.read_bytes() == whole.read_bytes()
    for chunk, batch in (("1", "1"), ("50", "32")):
        other = tmp_path / f"c{chunk}.csv"
        proc = _predict(bundle.path, full_in, other, "--chunk-size", chunk, "--batch-size", batch)
        assert proc.wait(timeout=120) == 0, proc.communicate()
        assert other.read_bytes() == whole.read_bytes()
