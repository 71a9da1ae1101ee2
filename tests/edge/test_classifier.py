"""Classifier against the numpy twin of the tiny ONNX model: padding, masking, batching, order, truncation."""

from __future__ import annotations

import os
import random

import numpy as np
import onnxruntime as ort
import pytest

import llm2edge.edge.classifier as classifier_mod
import llm2edge.edge.threads as threads_mod
from llm2edge.edge import Classifier
from llm2edge.errors import BundleError, ConfigError, MissingExtraError

TEXTS = [
    "I absolutely loved this film, the acting was superb.",
    "Terrible.",
    "The parcel arrived on Tuesday and the box was slightly dented, but everything inside worked fine.",
    "meh",
    "Ünïcödé façade — naïve café, 東京 and emoji 🙂 all in one line",
    "Stocks fell 3% after the earnings call; analysts expect a rebound next quarter.",
    "ok",
    "What a wonderful, wonderful, wonderful day to be alive and writing unit tests!",
]


@pytest.fixture(scope="module")
def clf(tiny_bundle):
    return Classifier.load(tiny_bundle.path, threads=1)


def test_logits_match_the_numpy_model(clf, tiny_bundle):
    got = clf.predict_logits(TEXTS)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), len(tiny_bundle.labels))
    np.testing.assert_allclose(got, tiny_bundle.reference(TEXTS), rtol=1e-5, atol=1e-5)


def test_model_without_token_type_ids_gets_only_its_inputs(make_bundle):
    b = make_bundle(token_type=False, labels=("spam", "ham"), seed=3)
    c = Classifier.load(b.path, threads=1)
    assert c.input_names == ["input_ids", "attention_mask"]
    np.testing.assert_allclose(c.predict_logits(TEXTS), b.reference(TEXTS), rtol=1e-5, atol=1e-5)
    assert c.labels == ["spam", "ham"]


def test_proba_and_labels(clf, tiny_bundle):
    proba = clf.predict_proba(TEXTS)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    ref = tiny_bundle.reference(TEXTS)
    expected = np.exp(ref - ref.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-6)
    assert clf.predict(TEXTS) == [tiny_bundle.labels[i] for i in ref.argmax(axis=1)]
    assert len(set(clf.predict(TEXTS))) > 1  # the random model does not answer one label for all


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_length_sorted_batches_keep_input_order(clf, tiny_bundle, batch_size):
    texts = TEXTS * 3
    random.Random(batch_size).shuffle(texts)
    got = clf.predict_logits(texts, batch_size=batch_size)
    np.testing.assert_allclose(got, tiny_bundle.reference(texts), rtol=1e-5, atol=1e-5)
    one_by_one = np.concatenate([clf.predict_logits([t], batch_size=1) for t in texts])
    np.testing.assert_allclose(got, one_by_one, rtol=1e-5, atol=1e-5)


def test_sort_windows_are_stitched_in_order(clf, tiny_bundle, monkeypatch):
    monkeypatch.setattr(classifier_mod, "SORT_WINDOW", 3)
    texts = TEXTS + TEXTS[::-1]
    np.testing.assert_allclose(clf.predict_logits(texts, batch_size=2), tiny_bundle.reference(texts),
                               rtol=1e-5, atol=1e-5)


def test_long_text_is_truncated_and_counted(clf, tiny_bundle):
    long_text = " ".join(f"word{i % 97}" for i in range(10_000))
    enc = clf.tokenizer.encode(long_text)
    assert len(enc.ids) == tiny_bundle.max_length
    clf.reset_counts()
    got = clf.predict_logits([long_text, "short text"])
    assert (clf.counts.texts, clf.counts.truncated, clf.counts.empty) == (2, 1, 0)
    np.testing.assert_allclose(got, tiny_bundle.reference([long_text, "short text"]), rtol=1e-5, atol=1e-5)


def test_empty_string_is_classified_and_counted(clf, tiny_bundle):
    clf.reset_counts()
    got = clf.predict_logits(["", "   ", "fine"])
    assert clf.counts.empty == 2
    assert clf.tokenizer.encode("").tokens == ["[CLS]", "[SEP]"]
    np.testing.assert_allclose(got, tiny_bundle.reference(["", "   ", "fine"]), rtol=1e-5, atol=1e-5)


def test_input_forms(clf):
    assert clf.predict("just one text") == clf.predict(["just one text"])
    assert clf.predict_proba([]).shape == (0, 3)
    assert clf.predict([]) == []
    assert clf.predict(t for t in ["a generator", "of texts"]) == clf.predict(["a generator", "of texts"])
    with pytest.raises(TypeError, match=r"texts\[1\] is int"):
        clf.predict(["ok", 5])
    with pytest.raises(ConfigError, match="batch_size must be at least 1, got 0"):
        clf.predict(["ok"], batch_size=0)


def test_threads_and_session_options(tiny_bundle):
    c = Classifier.load(tiny_bundle.path, threads=1)
    opts = c.session.get_session_options()
    assert (c.threads, opts.intra_op_num_threads, opts.inter_op_num_threads) == (1, 1, 1)
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert c.providers == ["CPUExecutionProvider"]
    for bad in (0, -2, 1.5, True):
        with pytest.raises(ConfigError, match="threads must be an integer >= 1"):
            Classifier.load(tiny_bundle.path / "no-such-bundle", threads=bad)  # checked before the bundle
    assert "threads=1" in repr(c)


def test_default_threads_follow_the_resolver(tiny_bundle, monkeypatch):
    monkeypatch.setattr(threads_mod, "available_cpus", lambda: 3)
    for name in threads_mod.LAUNCHER_ENV:
        monkeypatch.delenv(name, raising=False)
    c = Classifier.load(tiny_bundle.path)
    # on CPU the threads run calls at once (edge/workers.py), each call on one intra-op thread
    assert c.threads == 3 == c.workers.n
    assert c.session.get_session_options().intra_op_num_threads == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # one of two processes under torchrun: 1 thread each
    assert Classifier.load(tiny_bundle.path).workers.n == 1


def test_workers_give_the_same_logits_in_order(tiny_bundle):
    texts = [f"text number {i} " + "word " * (i % 13) for i in range(300)]
    one = Classifier.load(tiny_bundle.path, threads=1).predict_logits(texts)
    three = Classifier.load(tiny_bundle.path, threads=3)
    assert np.array_equal(three.predict_logits(texts), one)  # bit-identical, input order
    assert np.array_equal(three.predict_logits(texts[::-1]), one[::-1])
    three.workers.close()
    assert np.array_equal(three.predict_logits(texts[:7]), one[:7])  # new worker threads after close


def test_workers_start_again_in_a_forked_child(tiny_bundle):
    clf = Classifier.load(tiny_bundle.path, threads=2)
    texts = [f"text {i}" for i in range(20)]
    want = clf.predict_logits(texts)  # the pool's threads run in this process only
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the same Classifier, none of the parent's threads
        os.close(read)
        ok = np.array_equal(clf.predict_logits(texts), want)
        os.write(write, b"1" if ok else b"0")
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1" and os.waitstatus_to_exitcode(status) == 0


def test_a_worker_error_is_raised_after_all_workers_stop():
    from llm2edge.edge.workers import Workers

    done: list[int] = []

    def work(item: int) -> None:
        if item == 3:
            raise ValueError("item 3")
        done.append(item)

    with pytest.raises(ValueError, match="item 3"):
        Workers(2).each(work, list(range(10)))
    assert sorted(done) == [0, 1, 2, 4, 6, 8]  # worker 1 (1, 3, 5, ...) stopped at 3; worker 0 finished


def test_padding_baked_into_tokenizer_json_is_ignored(clf, tiny_bundle):
    import json

    raw = json.loads((tiny_bundle.path / "tokenizer.json").read_text(encoding="utf-8"))
    assert raw["padding"] is not None  # the MiniLM file pads everything to a fixed length ...
    assert clf.tokenizer.padding is None  # ... the runtime pads per batch instead
    assert len(clf.tokenizer.encode("hi").ids) == 3


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available")
@pytest.mark.parametrize("provider", ["cuda", "CUDAExecutionProvider"])
def test_cuda_without_onnxruntime_gpu_says_what_to_install(tiny_bundle, provider):
    with pytest.raises(MissingExtraError, match=r"llm2edge\[gpu\]"):
        Classifier.load(tiny_bundle.path, providers=[provider])


def test_unknown_provider(tiny_bundle):
    with pytest.raises(BundleError, match="not available"):
        Classifier.load(tiny_bundle.path, providers=["NoSuchExecutionProvider"])
    with pytest.raises(BundleError, match="must be a number"):
        Classifier.load(tiny_bundle.path, providers=["cpu:x"])


def test_provider_names():
    from llm2edge.edge.classifier import resolve_providers

    assert resolve_providers(None) == ["CPUExecutionProvider"]
    assert resolve_providers(["CPU"]) == ["CPUExecutionProvider"]
    assert resolve_providers(["cpu:0"]) == [("CPUExecutionProvider", {"device_id": "0"})]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert resolve_providers(["cuda:1"]) == [("CUDAExecutionProvider", {"device_id": "1"}),
                                                 "CPUExecutionProvider"]


def test_model_with_unknown_inputs_is_refused(make_bundle):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from llm2edge.edge.bundle import write_manifest

    b = make_bundle()
    model = onnx.load(str(b.path / "model.onnx"))
    model.graph.input.append(helper.make_tensor_value_info("pixel_values", TensorProto.FLOAT, ["b", 3]))
    onnx.save(model, str(b.path / "model.onnx"))
    write_manifest(b.path, labels=list(b.labels), max_length=32, source_model="x", quantization="none")
    with pytest.raises(BundleError, match="pixel_values"):
        Classifier.load(b.path)


def test_corrupt_model_is_a_bundle_error(make_bundle):
    from llm2edge.edge.bundle import write_manifest

    b = make_bundle()
    (b.path / "model.onnx").write_bytes(b"not an onnx model")
    write_manifest(b.path, labels=list(b.labels), max_length=32, source_model="x", quantization="none")
    with pytest.raises(BundleError, match=r"model\.onnx: onnxruntime cannot load"):
        Classifier.load(b.path)
