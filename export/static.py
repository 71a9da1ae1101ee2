"""Export a static-embedding student to the same bundle contract as a transformer (model.onnx, tokenizer.json,
config.json, manifest with `student: static`), built with the onnx helper API, opset 17.

The head is linear, so it is folded into the table: `mean(E[ids]) @ W.T + b == mean((E @ W.T)[ids]) + b`.
The shipped table is [vocab, labels] float32 (about 0.1 MB per label for a 30k vocabulary), whatever
--dims the student was trained with; int8 would save nothing worth a rounding error, so a static bundle is
always fp32 (`quantization: none`). The graph: Gather(table, input_ids) -> masked sum over tokens /
max(token count, 1) -> + bias. Inputs are input_ids and attention_mask, as in a MiniLM bundle, so the edge
runtime needs no new code. The bundle is validated against the numpy reference (`StaticWeights.logits`).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say, warn
from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import ExportError
from llm2edge.export.config import ExportConfig, ExportResult
from llm2edge.export.layout import MODEL_NAME, package_versions
from llm2edge.export.model_dir import ModelDir, resolve_max_length, resolve_validation
from llm2edge.export.place import check_destination, move_into_place, stage_dir
from llm2edge.export.static_model import STATIC_STUDENT, StaticWeights, load_static_weights
from llm2edge.export.validate import ValidationSet, accuracy, compare, load_validation
from llm2edge.labelsets import thresholds_array

#: The ONNX opset of the static graph.
OPSET = 17
#: The bundle must reproduce the numpy reference's logits this closely (float32 summation order only).
MAX_LOGIT_DIFF = 1e-4
#: Texts checked when the model folder has no validation slice.
PROBE_TEXTS = ("This is a short test sentence.", "Absolutely loved it!", "ok", "",
               "Stocks fell sharply on Monday after the central bank raised interest rates.")


def _say(config: ExportConfig, message: str) -> None:
    """A progress line on stderr (when verbose)."""
    if config.verbose:
        say(f"export: {message}")


def folded_table(weights: StaticWeights) -> tuple[np.ndarray, np.ndarray]:
    """The head folded into the token table: (E @ W.T as float32 [vocab, labels], bias float32 [labels])."""
    table = weights.embeddings.astype(np.float64) @ weights.weight.astype(np.float64).T
    return table.astype(np.float32), weights.bias.astype(np.float32)


def build_static_onnx(table: np.ndarray, bias: np.ndarray, path: Path) -> Path:
    """Write the graph logits = sum(table[ids] * mask) / max(sum(mask), 1) + bias as an ONNX file."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    k = int(table.shape[1])
    inits = [numpy_helper.from_array(np.ascontiguousarray(table, dtype=np.float32), "table"),
             numpy_helper.from_array(np.ascontiguousarray(bias, dtype=np.float32), "bias"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
             numpy_helper.from_array(np.array([2], dtype=np.int64), "axis2"),
             numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["rows"], axis=0),  # [b, s, k]
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),  # [b, s]
        helper.make_node("Unsqueeze", ["mask_f", "axis2"], ["mask3"]),  # [b, s, 1]
        helper.make_node("Mul", ["rows", "mask3"], ["kept"]),
        helper.make_node("ReduceSum", ["kept", "axis1"], ["total"], keepdims=0),  # [b, k]
        helper.make_node("ReduceSum", ["mask_f", "axis1"], ["count"], keepdims=1),  # [b, 1]
        helper.make_node("Max", ["count", "one"], ["safe_count"]),
        helper.make_node("Div", ["total", "safe_count"], ["mean"]),
        helper.make_node("Add", ["mean", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "llm2edge_static",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", k])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="llm2edge")
    model.ir_version = 8  # readable by onnxruntime >= 1.10
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _validation_set(model_dir: ModelDir, config: ExportConfig, warnings: list[str]) -> tuple[ValidationSet,
                                                                                            Path | None]:
    """The validation texts (MODEL/validation.csv or --validate), else the probe texts with a warning."""
    val_path = resolve_validation(model_dir, config.validate)
    if val_path is not None and model_dir.multi_label:
        from llm2edge.export.multilabel import load_validation_sets

        texts, gold = load_validation_sets(val_path, labels=model_dir.labels, text_col=config.text_col,
                                           label_col=config.label_col, limit=config.max_validation)
        return ValidationSet(path=val_path, texts=texts, gold=gold), val_path  # type: ignore[arg-type]
    if val_path is not None:
        return load_validation(val_path, labels=model_dir.labels, text_col=config.text_col,
                               label_col=config.label_col, limit=config.max_validation), val_path
    message = (f"no validation data ({model_dir.path / 'validation.csv'} missing and no --validate): "
               f"only {len(PROBE_TEXTS)} probe texts are checked against the numpy reference")
    if config.strict:
        raise ExportError(message + " (--strict)")
    warnings.append(message)
    warn(message)
    return ValidationSet(path=Path("-"), texts=list(PROBE_TEXTS), gold=[None] * len(PROBE_TEXTS)), None


def _scorer(model_dir: ModelDir) -> Callable[[np.ndarray, list[Any]], float | None]:
    """Accuracy of logits against gold: argmax accuracy, or a multi-label model's subset accuracy."""
    if not model_dir.multi_label:
        return lambda logits, gold: accuracy(logits, gold, model_dir.labels)
    from llm2edge.export.multilabel import set_accuracy

    cuts = thresholds_array(model_dir.thresholds, model_dir.labels)
    return lambda logits, gold: set_accuracy(logits, gold, model_dir.labels, cuts)["accuracy"]


def _write_tokenizer(src: Path, dst: Path, max_length: int) -> None:
    """Copy the static tokenizer (no special tokens, no padding), truncating at max_length."""
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(src))
    except Exception as exc:  # tokenizers raises a bare Exception for a bad file
        raise ExportError(f"{src}: cannot load the tokenizer ({exc})") from None
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    tok.save(str(dst))


def export_static(config: ExportConfig, model_dir: ModelDir) -> ExportResult:
    """Export a static student (model folder of `train --student static`) to a validated edge bundle."""
    from llm2edge.edge.bundle import read_bundle, write_manifest
    from llm2edge.edge.classifier import Classifier

    start = time.perf_counter()
    threads = resolve_threads(config.threads)
    warnings: list[str] = []
    max_length = resolve_max_length(model_dir, config.max_length)
    out = Path(config.out)
    check_destination(out)
    tok_src = model_dir.path / "tokenizer.json"
    if not tok_src.is_file():
        raise ExportError(f"{tok_src}: missing (a static student ships its tokenizer.json)")
    weights = load_static_weights(model_dir.path)
    vset, val_path = _validation_set(model_dir, config, warnings)
    if config.quantize != "none":
        _say(config, f"static student: the head is folded into a [vocab, labels] fp32 table; "
                     f"--quantize {config.quantize} does not apply")
    stage = stage_dir(out)
    try:
        folder = stage / "bundle"
        folder.mkdir()
        table, bias = folded_table(weights)
        build_static_onnx(table, bias, folder / MODEL_NAME)
        _write_tokenizer(tok_src, folder / "tokenizer.json", max_length)
        shutil.copy2(model_dir.path / "config.json", folder / "config.json")
        versions = package_versions()
        common: dict[str, Any] = {"labels": model_dir.labels, "max_length": max_length,
                                  "source_model": model_dir.path.resolve().name, "quantization": "none",
                                  "versions": versions, "student": STATIC_STUDENT, **model_dir.manifest_kind}
        write_manifest(folder, validation={}, **common)
        clf = Classifier.load(folder, threads=threads)
        ref = weights.logits_of_texts(clf.tokenizer, vset.texts)  # the runtime's tokenizer settings
        got = clf.predict_logits(vset.texts)
        agree, diff = compare(ref, got)
        score = _scorer(model_dir)
        val: dict[str, Any] = {
            "n": len(vset.texts), "validation_file": val_path.name if val_path else None,
            "probe_only": val_path is None, "reference": "numpy", "head_folded": True,
            "accuracy_reference": score(ref, vset.gold),
            "agreement_fp32": agree, "max_logit_diff_fp32": round(diff, 8),
            "accuracy_fp32": score(got, vset.gold), "agreement_int8": None,
            "max_length": max_length, "dims": weights.dims, "vocab_size": int(table.shape[0]),
            "size_fp32": (folder / MODEL_NAME).stat().st_size, "fallback_reason": None,
        }
        if model_dir.multi_label:  # agreement per (text, label) decision; accuracy: subset accuracy
            from llm2edge.export.multilabel import pair_agreement

            agree = pair_agreement(ref, got, thresholds_array(model_dir.thresholds, model_dir.labels))
            val.update({"agreement_fp32": agree, "multi_label": True,
                        "agreement_unit": "(text, label) pairs"})
        if diff > MAX_LOGIT_DIFF or agree < 1.0:
            raise ExportError(f"the static ONNX graph does not match the numpy reference (agreement "
                              f"{agree:.4f}, max logit difference {diff:.3g}): the export is broken")
        manifest = write_manifest(folder, validation=val, **common)
        read_bundle(folder)
        move_into_place(folder, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    result = ExportResult(bundle=out, quantization="none", manifest=manifest,
                          sizes={"fp32": int(val["size_fp32"])}, seconds=time.perf_counter() - start,
                          warnings=tuple(warnings))
    _say(config, f"wrote {out} (static, {val['size_fp32'] / 1e6:.2f} MB) in {result.seconds:.1f} s")
    return result


def static_summary(result: ExportResult) -> str:
    """The plain-text summary of a static export (size, agreement with the numpy reference, accuracy)."""
    v = result.validation
    acc = v.get("accuracy_fp32")
    return "\n".join([
        f"static student: {v.get('vocab_size')} tokens x {len(result.manifest.get('labels', []))} labels "
        f"(head folded; trained at {v.get('dims')} dims), model.onnx {v.get('size_fp32', 0) / 1e6:.2f} MB",
        f"vs numpy reference on {v.get('n')} texts: agreement {v.get('agreement_fp32'):.4f}, "
        f"max |dlogit| {v.get('max_logit_diff_fp32'):.2e}, accuracy {'-' if acc is None else f'{acc:.4f}'}",
        f"shipped: fp32 ({result.bundle}) in {result.seconds:.1f} s",
    ])

