"""`export_bundle`: model dir → ONNX → fused graph → int8 → validated bundle, moved into place atomically."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say, warn
from llm2edge.edge.classifier import sigmoid
from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import ExportError
from llm2edge.export.agreement import describe, guard_texts, judge, too_few, training_texts
from llm2edge.export.config import ExportConfig, ExportResult
from llm2edge.export.layout import MODEL_NAME, package_versions, write_config, write_tokenizer
from llm2edge.export.model_dir import check_model_dir, resolve_max_length, resolve_validation
from llm2edge.export.multilabel import (
    describe_pairs,
    judge_pairs,
    load_validation_sets,
    pair_agreement,
    set_accuracy,
)
from llm2edge.export.onnx_export import export_onnx, load_torch_model
from llm2edge.export.optimize import optimize_graph
from llm2edge.export.place import check_destination, move_into_place, stage_dir
from llm2edge.export.quantize import choose_quantization, quantize_int8
from llm2edge.export.static_model import is_static_model
from llm2edge.export.validate import (
    ValidationSet,
    accuracy,
    compare,
    edge_logits,
    load_validation,
    torch_logits,
)
from llm2edge.labelsets import thresholds_array

#: ONNX fp32 must match torch this closely, or the export itself is broken (e.g. inputs bound wrongly).
FP32_MIN_AGREEMENT = 0.995
FP32_MAX_LOGIT_DIFF = 1e-2
#: A flip where torch scores int8's label within this many logits of its own is a near-tie, not counted
#: against int8 (see llm2edge.export.agreement).
NEAR_TIE_LOGIT = 0.05
#: Used only to sanity-check fp32 when there is no validation or training text (no labels, no int8 gate).
PROBE_TEXTS = (
    "This is a short test sentence.",
    "The weather was terrible and the train was late again, so I missed the meeting.",
    "Absolutely loved it!",
    "Stocks fell sharply on Monday after the central bank raised interest rates.",
    "ok",
)


def _say(config: ExportConfig, message: str) -> None:
    """A progress line on stderr (when verbose)."""
    if config.verbose:
        say(f"export: {message}")


def _warn(message: str, warnings: list[str]) -> None:
    """One warning line on stderr, also kept for the result."""
    warnings.append(message)
    warn(message)


def _candidate(folder: Path, onnx_path: Path, shared: Path, *, labels: list[str], max_length: int,
               source_model: str, quantization: str, versions: dict[str, str], **kind: Any) -> Path:
    """A complete bundle folder around one ONNX file (manifest without validation numbers yet)."""
    from llm2edge.edge.bundle import write_manifest

    folder.mkdir(parents=True)
    for item in shared.iterdir():
        shutil.copy2(item, folder / item.name)
    onnx_path.replace(folder / MODEL_NAME)
    write_manifest(folder, labels=labels, max_length=max_length, source_model=source_model,
                   quantization=quantization, validation={}, versions=versions, **kind)
    return folder


def _multilabel_scores(val: dict[str, Any], name: str, ref: np.ndarray, got: np.ndarray, *,
                       gold: list[Any], labels: list[str], cuts: np.ndarray, n_val: int) -> None:
    """A multi-label candidate's validation numbers: per-pair decision agreement with torch (on the
    validation texts when there are some), the largest sigmoid probability difference, and subset
    accuracy / micro-F1 against the gold sets."""
    part = slice(0, n_val) if n_val else slice(None)
    val[f"agreement_{name}"] = pair_agreement(ref[part], got[part], cuts)
    val[f"max_logit_diff_{name}"] = round(float(np.abs(ref - got).max()) if ref.size else 0.0, 6)
    val[f"max_prob_diff_{name}"] = float(np.abs(sigmoid(ref) - sigmoid(got)).max()) if ref.size else 0.0
    scores = set_accuracy(got, gold, labels, cuts)
    val[f"accuracy_{name}"], val[f"micro_f1_{name}"] = scores["accuracy"], scores["micro_f1"]


def export_bundle(config: ExportConfig) -> ExportResult:
    """Export, optimize, quantize and validate a trained model into an edge bundle at `config.out`."""
    start = time.perf_counter()
    threads = resolve_threads(config.threads)
    model_dir = check_model_dir(config.model)
    if is_static_model(model_dir.config):
        from llm2edge.export.static import export_static

        return export_static(config, model_dir)
    max_length = resolve_max_length(model_dir, config.max_length)
    val_path = resolve_validation(model_dir, config.validate)
    out = Path(config.out)
    check_destination(out)
    warnings: list[str] = []
    multi = model_dir.multi_label
    cuts = thresholds_array(model_dir.thresholds, model_dir.labels) if multi else None
    if val_path is not None and multi:
        vset = ValidationSet(val_path, *load_validation_sets(  # type: ignore[arg-type]
            val_path, labels=model_dir.labels, text_col=config.text_col, label_col=config.label_col,
            limit=config.max_validation))
    elif val_path is not None:
        vset = load_validation(val_path, labels=model_dir.labels, text_col=config.text_col,
                               label_col=config.label_col, limit=config.max_validation)
    else:
        vset = ValidationSet(path=Path("-"), texts=[], gold=[])
    extra, note = ([], None)
    if config.quantize == "int8":  # int8 is judged on more texts than the validation slice may hold
        wanted = config.guard_texts - len(vset.texts)
        extra, note = training_texts(model_dir.path, model_dir.train_meta, wanted)
    texts, n_train = guard_texts(vset.texts, extra, config.guard_texts)
    judged = bool(texts)
    if not judged:
        looked = ""
        if config.quantize == "int8":
            looked = " and no training texts" + (f" ({note})" if note else "")
        message = (f"no validation data ({model_dir.path / 'validation.csv'} missing and no --validate)"
                   f"{looked}: only a {len(PROBE_TEXTS)}-text fp32 sanity check runs")
        if config.strict and config.quantize == "int8":
            raise ExportError(message + "; int8 cannot be validated (--strict)")
        _warn(message, warnings)
        texts = list(PROBE_TEXTS)
    elif config.quantize == "int8" and (few := too_few(len(texts) * (len(model_dir.labels) if multi else 1),
                                                       config.min_agreement)):
        _warn(few + (f"; {note}" if note else ""), warnings)
    gold = [*vset.gold, *[None] * (len(texts) - len(vset.gold))]
    n_val = len(vset.texts)

    import torch

    stage = stage_dir(out)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        work = stage / "work"
        _say(config, f"loading {model_dir.path}")
        model = load_torch_model(model_dir.path)
        _say(config, "exporting to ONNX (optimum, text-classification, dynamic axes)")
        raw = export_onnx(model, work / "raw")
        fp32, fused = raw, {}
        if config.optimize:
            _say(config, "fusing the transformer graph")
            fp32 = work / "fp32.onnx"
            fused = optimize_graph(raw, fp32, model_dir.model_type)
        sizes = {"fp32": fp32.stat().st_size}
        choice = None
        int8 = None
        if config.quantize == "int8":
            choice = choose_quantization(config.per_channel)
            _say(config, f"quantizing to int8 ({choice.reason})")
            int8 = quantize_int8(fp32, work / "int8.onnx", choice)
            sizes["int8"] = int8.stat().st_size

        shared = stage / "shared"
        shared.mkdir()
        write_config(model.config, shared)
        write_tokenizer(model_dir.path, shared, max_length)
        from transformers import AutoTokenizer

        hf_tok = AutoTokenizer.from_pretrained(model_dir.path, use_fast=True)
        versions = package_versions()
        source = model_dir.path.resolve().name  # a name, not this machine's path
        common = {"labels": model_dir.labels, "max_length": max_length, "source_model": source,
                  "versions": versions, **model_dir.manifest_kind}
        bundles = {"fp32": _candidate(stage / "fp32", fp32, shared, quantization="none", **common)}
        if int8 is not None:
            bundles["int8"] = _candidate(stage / "int8", int8, shared, quantization="int8", **common)

        kinds = "torch, onnx fp32" + (", onnx int8" if int8 else "")
        _say(config, f"validating on {len(texts)} texts ({n_val} validation, {n_train} training): {kinds}")
        ref = torch_logits(model, hf_tok, texts, max_length=max_length)
        del model
        val: dict[str, Any] = {"n": n_val if judged else len(texts),
                               "validation_file": val_path.name if val_path else None,
                               "probe_only": not judged, "fallback_reason": None,
                               "accuracy_torch": accuracy(ref, gold, model_dir.labels) if not multi else
                               set_accuracy(ref, gold, model_dir.labels, cuts)["accuracy"]}
        if multi:
            val.update({"multi_label": True, "agreement_unit": "(text, label) pairs"})
        logits = {}
        for name, folder in bundles.items():
            logits[name] = edge_logits(folder, texts, threads=threads)
            if multi:
                _multilabel_scores(val, name, ref, logits[name], gold=gold, labels=model_dir.labels,
                                   cuts=cuts, n_val=n_val if judged else 0)
                continue
            agree, diff = compare(ref, logits[name])
            if judged and n_val:  # the validation-only agreement, beside the guard's wider one
                agree = compare(ref[:n_val], logits[name][:n_val])[0]
            val[f"agreement_{name}"] = agree
            val[f"max_logit_diff_{name}"] = round(diff, 6)
            val[f"accuracy_{name}"] = accuracy(logits[name], gold, model_dir.labels)
        val.setdefault("agreement_int8", None)
        fp32_agree = pair_agreement(ref, logits["fp32"], cuts) if multi else compare(ref, logits["fp32"])[0]
        if fp32_agree < FP32_MIN_AGREEMENT or val["max_logit_diff_fp32"] > FP32_MAX_LOGIT_DIFF:
            raise ExportError(f"ONNX fp32 does not match torch (agreement {fp32_agree:.4f}, "
                              f"max logit difference {val['max_logit_diff_fp32']:.3g}): the export is broken")
        val.update({"optimized": bool(config.optimize), "fused_ops": fused, "max_length": max_length,
                    "min_agreement": config.min_agreement, "size_fp32": sizes["fp32"]})
        if choice is not None:
            val.update({"order": "optimize, then quantize" if config.optimize else "quantize",
                        "per_channel": choice.per_channel, "reduce_range": choice.reduce_range,
                        "weight_type": choice.weight_type, "cpu": choice.cpu, "quant_reason": choice.reason,
                        "size_int8": sizes["int8"]})

        shipped = "int8" if int8 is not None else "fp32"
        if int8 is not None and judged:
            if multi:
                guard = judge_pairs(ref, logits["int8"], cuts, from_validation=n_val, near_tie=NEAR_TIE_LOGIT)
                said = describe_pairs(guard)
            else:
                guard = judge(ref, logits["int8"], from_validation=n_val, near_tie=NEAR_TIE_LOGIT)
                said = describe(guard)
            val["int8_guard"] = guard.to_dict()
            if guard.judged_agreement < config.min_agreement:
                message = (f"int8 refused: {said} < --min-agreement {config.min_agreement}")
                if config.strict:
                    raise ExportError(message + " (--strict)")
                _warn(message + "; shipping fp32 instead", warnings)
                shipped = "fp32"
                val["fallback_reason"] = message
            else:
                _say(config, said)
        folder = bundles[shipped]
        quantization = "int8" if shipped == "int8" else "none"
        for other, path in bundles.items():
            if other != shipped:
                shutil.rmtree(path)
        shutil.rmtree(shared)
        shutil.rmtree(work)

        from llm2edge.edge.bundle import read_bundle, write_manifest

        manifest = write_manifest(folder, quantization=quantization, validation=val, **common)
        read_bundle(folder)  # the finished bundle must verify before it is moved into place
        move_into_place(folder, out)
    finally:
        torch.set_num_threads(old_threads)
        shutil.rmtree(stage, ignore_errors=True)
    result = ExportResult(bundle=out, quantization=quantization, manifest=manifest, sizes=sizes,
                          seconds=time.perf_counter() - start, warnings=tuple(warnings))
    _say(config, f"wrote {out} ({quantization}) in {result.seconds:.1f} s")
    return result
