"""Classify texts with a verified bundle: tokenizers + onnxruntime + numpy, length-sorted batches.

A text's logits never depend on the texts it is classified with (batch size, chunk size, resume point,
thread count). On CPU every text runs alone, one model call each: a dynamic int8 model computes its
activation scales per call over the whole input, and even fp32 matrix kernels round differently for
different batch shapes (last-bit differences that can move a printed probability). Checked bit for bit in
tests/edge/test_batch_invariance.py and tests/export/test_export.py. Sorting by length and one call per text
cost little on CPU (MiniLM int8 at 1 thread: b1 is as fast per item as padded b32); fp32 pays about a third.
On a GPU, texts of one token length share a call (`batch_size` at most, never padded), except dynamic int8.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from llm2edge.checks import at_least
from llm2edge.defaults import PREDICT_BATCH_SIZE, PROVIDER
from llm2edge.edge.bundle import BundleInfo, read_bundle
from llm2edge.edge.defer import Prediction, multilabel_predictions, predictions, resolve_defer
from llm2edge.edge.session import session_options
from llm2edge.edge.threads import resolve_threads
from llm2edge.edge.tokens import TextEncoder
from llm2edge.edge.workers import Workers
from llm2edge.errors import BundleError, MissingExtraError
from llm2edge.labelsets import decide, sets_of

#: Model inputs the runtime knows how to fill, in the order BERT-family models take them.
KNOWN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Short provider names accepted by `providers=` and `--provider`.
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
}
#: Texts are tokenized, length-sorted and batched this many at a time (bounds memory on huge inputs).
SORT_WINDOW = 8192
#: Operators that quantize activations with a scale computed per call (onnxruntime's quantize_dynamic).
DYNAMIC_INT8_OPS = (b"DynamicQuantizeLinear", b"DynamicQuantizeMatMul", b"QAttention")


@dataclass
class Counts:
    """Running counts of what the classifier has seen (the CLI reports them once at the end)."""

    texts: int = 0
    truncated: int = 0
    empty: int = 0


def resolve_providers(providers: Sequence[str] | None) -> list[str | tuple[str, dict[str, str]]]:
    """onnxruntime providers for short or full names ('cuda', 'cuda:1', 'CUDAExecutionProvider'); CPU last."""
    available = ort.get_available_providers()
    wanted: list[str | tuple[str, dict[str, str]]] = []
    for spec in providers or [PROVIDER]:
        base, _, device = spec.partition(":")
        name = PROVIDER_ALIASES.get(base.lower(), base)
        if name not in available:
            if name in ("CUDAExecutionProvider", "TensorrtExecutionProvider"):
                raise MissingExtraError("gpu", f"onnxruntime-gpu ({name})")
            raise BundleError(f"execution provider '{name}' is not available in this onnxruntime "
                              f"(available: {', '.join(available)})")
        if device:
            if not device.isdigit():
                raise BundleError(f"bad provider '{spec}': the device after ':' must be a number")
            wanted.append((name, {"device_id": device}))
        else:
            wanted.append(name)
    if not any(_provider_name(p) == "CPUExecutionProvider" for p in wanted):
        wanted.append("CPUExecutionProvider")
    return wanted


def _provider_name(provider: str | tuple[str, dict[str, str]]) -> str:
    """The name of a provider given as a name or a (name, options) pair."""
    return provider if isinstance(provider, str) else provider[0]


def dynamic_int8(model: Path) -> bool:
    """Whether an ONNX file uses dynamic int8 operators (their names appear as plain strings in the file)."""
    with model.open("rb") as handle:
        if model.stat().st_size == 0:
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return any(data.find(op) != -1 for op in DYNAMIC_INT8_OPS)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, numerically stable."""
    z = logits.astype(np.float32, copy=True)
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Elementwise logistic function in float32 (a multi-label bundle's independent probabilities)."""
    z = logits.astype(np.float32, copy=True)
    np.negative(z, out=z)
    np.exp(z, out=z)
    z += 1.0
    np.reciprocal(z, out=z)
    return z


class Classifier:
    """A text classifier from an edge bundle; build it with `Classifier.load(bundle)`."""

    def __init__(self, info: BundleInfo, session: ort.InferenceSession, tokenizer: Tokenizer, *,
                 pad_id: int = 0, threads: int = 1, row_at_a_time: bool = False, workers: int = 1) -> None:
        self.info = info
        self.session = session
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.threads = threads
        #: Model calls run at once (CPU: `threads`, each call on one intra-op thread; see edge/workers.py).
        self.workers = Workers(workers)
        self.counts = Counts()
        #: Tokenizes with truncation at max_length (long texts cut at a word boundary first, where exact).
        self.encoder = TextEncoder(tokenizer, info.max_length)
        names = [i.name for i in session.get_inputs()]
        unknown = [n for n in names if n not in KNOWN_INPUTS]
        if unknown or "input_ids" not in names:
            raise BundleError(f"{info.model_path}: model inputs {names} are not a subset of "
                              f"{list(KNOWN_INPUTS)} including input_ids")
        self.input_names = names
        self._types = "token_type_ids" in names  # a static student's graph takes no token types
        outputs = [o.name for o in session.get_outputs()]
        self.output_name = "logits" if "logits" in outputs else outputs[0]
        #: One text per model call (on CPU, and for dynamic int8 everywhere): results bit-identical whatever
        #: the batch (see the module docstring).
        self.row_at_a_time = row_at_a_time

    @classmethod
    def load(cls, bundle: str | Path, *, threads: int | None = None,
             providers: Sequence[str] | None = None, verify: bool = True) -> Classifier:
        """Verify the bundle (checksums), then open its tokenizer and ONNX session.

        `threads` (default: `resolve_threads`, the CPUs this process may use): on CPU, how many model calls
        run at once, one onnxruntime intra-op thread each (edge/workers.py: one session, results identical at
        every count); on a GPU provider, onnxruntime's intra-op threads. `providers`: execution providers by
        short or full name (default: cpu).
        """
        n_threads = resolve_threads(threads)
        info = read_bundle(bundle, verify=verify)
        try:
            tokenizer = Tokenizer.from_file(str(info.tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception for a bad file
            raise BundleError(f"{info.tokenizer_path}: cannot load the tokenizer ({exc})") from None
        pad = tokenizer.padding
        pad_id = int(pad["pad_id"]) if pad else (tokenizer.token_to_id("[PAD]") or 0)
        wanted = resolve_providers(providers)
        on_cpu = _provider_name(wanted[0]) == "CPUExecutionProvider"
        try:
            session = ort.InferenceSession(str(info.model_path),
                                           sess_options=session_options(1 if on_cpu else n_threads),
                                           providers=wanted)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BundleError(f"{info.model_path}: onnxruntime cannot load the model ({exc})") from None
        missing = [_provider_name(p) for p in wanted[:1] if _provider_name(p) not in session.get_providers()]
        if missing:
            raise BundleError(f"execution provider {missing[0]} failed to start (onnxruntime fell back to "
                              f"{session.get_providers()}); check the CUDA/cuDNN libraries")
        dynamic = dynamic_int8(info.model_path)
        if dynamic and info.quantization != "int8":
            raise BundleError(f"{info.path / 'manifest.json'}: quantization is '{info.quantization}' but "
                              f"{info.model_path.name} holds dynamic int8 operators")
        alone = dynamic or session.get_providers()[0] == "CPUExecutionProvider"
        clf = cls(info, session, tokenizer, pad_id=pad_id, threads=n_threads, row_at_a_time=alone,
                  workers=n_threads if on_cpu else 1)
        if info.positions is None:  # config.json does not bound the length: one forward pass checks it
            clf._probe()
        return clf

    def _probe(self) -> None:
        """Run one input of max_length tokens, so a manifest whose max_length the model cannot take (more
        positions than its position embeddings) fails here, before any output is written. Only for bundles
        whose config.json does not state the positions (read_bundle checks those, without running the model:
        the forward pass cost ~5 ms of every start)."""
        row = np.full((1, self.info.max_length), self.pad_id, dtype=np.int64)
        feed = {"input_ids": row, "attention_mask": np.ones_like(row), "token_type_ids": np.zeros_like(row)}
        try:
            self._run({name: feed[name] for name in self.input_names})
        except BundleError as exc:
            raise BundleError(f"{self.info.path / 'manifest.json'}: max_length {self.info.max_length} "
                              f"does not fit the model ({exc})") from None

    @property
    def labels(self) -> list[str]:
        """Label names in model output order."""
        return list(self.info.labels)

    @property
    def max_length(self) -> int:
        """Texts are truncated to this many tokens."""
        return self.info.max_length

    @property
    def providers(self) -> list[str]:
        """The execution providers the session really uses."""
        return list(self.session.get_providers())

    def reset_counts(self) -> None:
        """Zero the running counts of texts, truncated texts and empty texts."""
        self.counts = Counts()

    def _encode(self, texts: list[str]) -> list[Encoding]:
        """Tokenize texts (truncated to max_length) and update the running counts."""
        encodings = self.encoder.encode(texts)
        self.counts.texts += len(texts)
        self.counts.truncated += sum(1 for e in encodings if e.overflowing)
        self.counts.empty += sum(1 for t in texts if not t.strip())
        return encodings

    def _feed(self, batch: list[Encoding]) -> dict[str, np.ndarray]:
        """Model inputs for a batch, padded to its longest item."""
        width = max(len(e.ids) for e in batch)
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        types = np.zeros((len(batch), width), dtype=np.int64) if self._types else None
        for row, enc in enumerate(batch):
            n = len(enc.ids)
            ids[row, :n] = enc.ids
            mask[row, :n] = enc.attention_mask
            if types is not None:
                types[row, :n] = enc.type_ids
        arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: arrays[name] for name in self.input_names}

    def _run(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """One model call; a one-line BundleError if onnxruntime fails or the output is not [n, labels]."""
        ids = feed["input_ids"]
        try:
            (logits,) = self.session.run([self.output_name], feed)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidArgument/RuntimeException types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BundleError(f"{self.info.model_path}: onnxruntime failed on {ids.shape[0]} text(s) of "
                              f"{ids.shape[1]} tokens: {first}") from None
        k = len(self.info.labels)
        if logits.ndim != 2 or logits.shape[1] != k or logits.shape[0] != ids.shape[0]:
            raise BundleError(f"{self.info.model_path}: model output '{self.output_name}' has shape "
                              f"{list(logits.shape)}, expected [{ids.shape[0]}, {k}]")
        return logits

    def _batches(self, order: list[int], encodings: list[Encoding], batch_size: int) -> Iterator[list[int]]:
        """Consecutive runs of `order` (length-sorted) with one token length each, at most batch_size long
        (1 when `row_at_a_time`): no text is ever padded."""
        size = 1 if self.row_at_a_time else batch_size
        batch: list[int] = []
        for i in order:
            if batch and (len(batch) == size or len(encodings[i].ids) != len(encodings[batch[0]].ids)):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    def _logits_windows(self, texts: list[str], batch_size: int) -> Iterator[np.ndarray]:
        """Logits for consecutive windows of texts, each window length-sorted into equal-length batches."""
        k = len(self.info.labels)
        for start in range(0, len(texts), SORT_WINDOW):
            window = texts[start:start + SORT_WINDOW]
            encodings = self._encode(window)
            order = sorted(range(len(window)), key=lambda i: len(encodings[i].ids))
            out = np.empty((len(window), k), dtype=np.float32)

            def run(idx: list[int], out: np.ndarray = out, encodings: list[Encoding] = encodings) -> None:
                out[idx] = self._run(self._feed([encodings[i] for i in idx]))

            self.workers.each(run, list(self._batches(order, encodings, batch_size)))
            yield out

    def predict_logits(self, texts: Sequence[str] | str, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Raw logits, float32 [n, num_labels], in input order."""
        items = [texts] if isinstance(texts, str) else list(texts)
        at_least("batch_size", batch_size)
        bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"texts[{bad}] is {type(items[bad]).__name__}, expected str")
        if not items:
            return np.zeros((0, len(self.info.labels)), dtype=np.float32)
        return np.concatenate(list(self._logits_windows(items, batch_size)), axis=0)

    @property
    def multi_label(self) -> bool:
        """True for a multi-label bundle (a set of labels per text, independent sigmoid probabilities)."""
        return self.info.multi_label

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The bundle's probabilities of logits: softmax, or sigmoid per label for a multi-label bundle."""
        return sigmoid(logits) if self.info.multi_label else softmax(logits)

    def predict_proba(self, texts: Sequence[str] | str, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Class probabilities (softmax), float32 [n, num_labels], rows sum to 1, in `labels` order; for a
        multi-label bundle each label's own probability (sigmoid), independent of the others."""
        return self.probabilities(self.predict_logits(texts, batch_size=batch_size))

    def predict(self, texts: Sequence[str] | str, batch_size: int = PREDICT_BATCH_SIZE,
                defer: str | float | None = None) -> list[str] | list[list[str]] | list[Prediction]:
        """The most probable label of each text, in input order; for a multi-label bundle the list of
        labels whose probability reaches its threshold (possibly empty), in `labels` order.

        With `defer` ("auto": the bundle's calibrated threshold, a probability, or "none") each item is a
        Prediction(label, confidence, deferred), deferred when its top probability is under the threshold
        (multi-label: when a label's probability lies within `defer` of its threshold; edge/defer.py).
        """
        threshold = resolve_defer(self.info, defer) if defer is not None else None
        logits = self.predict_logits(texts, batch_size=batch_size)
        labels = self.info.labels
        if self.info.multi_label:
            proba, cuts = sigmoid(logits), self.info.threshold_array
            if defer is not None:
                return multilabel_predictions(proba, labels, cuts, threshold)
            return [list(s) for s in sets_of(decide(proba, cuts), labels)]
        if defer is not None:
            return predictions(softmax(logits), labels, threshold)
        return [labels[i] for i in logits.argmax(axis=1)] if len(logits) else []

    def __repr__(self) -> str:
        return (f"Classifier(bundle='{self.info.path}', labels={self.info.labels}, "
                f"max_length={self.info.max_length}, threads={self.threads}, providers={self.providers})")
