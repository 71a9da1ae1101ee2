"""`train --student static`: a token table distilled from the source model (frozen) + a linear head.

Each text is the mean of its tokens' table rows; the head is trained in torch on those vectors
(standardized; the standardization is folded into the saved head), with the same options as the
transformer student: hard or soft labels, class weights, seed, eval metrics.json, validation.csv for export.
Training takes seconds, so there are no epoch checkpoints: a rerun of a finished run with the same
fingerprint (data, settings, source model) returns it unchanged unless resume is off.

Layout of OUT: config.json (model_type llm2edge-static, id2label), model.safetensors (embeddings,
classifier.weight, classifier.bias), tokenizer.json (no [CLS]/[SEP]), validation.csv, train_meta.json,
metrics.json (with --eval).

Multi-label: the head is one-vs-rest (a sigmoid per label, binary cross-entropy, per-label pos_weight),
the thresholds are tuned on the held-back slice and config.json holds problem_type and label_thresholds,
as for the transformer student (`multilabel`).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import TrainError
from llm2edge.export.static_model import (
    STATIC_STUDENT,
    StaticWeights,
    save_static_weights,
    static_config,
    write_static_config,
)
from llm2edge.hashing import sha256_file
from llm2edge.hub.models import default_student, resolve_model
from llm2edge.hub.train import multilabel as ml
from llm2edge.hub.train.batches import class_weights, objective, pos_weights, set_targets, target_tensor
from llm2edge.hub.train.checkpoints import share_one_mode, write_json
from llm2edge.hub.train.config import TrainConfig, TrainResult, fingerprint
from llm2edge.hub.train.data import Example, load_training_data, write_validation
from llm2edge.hub.train.distill import load_or_distill
from llm2edge.hub.train.guard import check_collapse
from llm2edge.hub.train.pool import add_pool
from llm2edge.hub.train.pool_cache import pool_digest
from llm2edge.metrics import classification_report

#: Standard deviations below this are treated as this (constant features).
MIN_STD = 1e-6


def fit_head(x: np.ndarray, y: torch.Tensor, num_labels: int, config: TrainConfig,
             weight: torch.Tensor | None, *, noise: float = 0.0, multi_label: bool = False
             ) -> tuple[np.ndarray, np.ndarray, float]:
    """Train a linear head on standardized `x`; returns (weight [k, d], bias [k]) on raw `x`, final loss.
    `noise` > 0: dropout at that rate on the features of every batch (Noisy Student's noised student).
    `multi_label`: sigmoid + binary cross-entropy per label (`weight` is the pos_weight)."""
    mu = x.mean(axis=0)
    sd = np.maximum(x.std(axis=0), MIN_STD)
    xs = torch.from_numpy(((x - mu) / sd).astype(np.float32))
    torch.manual_seed(config.seed)
    head = torch.nn.Linear(x.shape[1], num_labels)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.head_lr, weight_decay=config.weight_decay)
    g = torch.Generator().manual_seed(config.seed)
    loss = torch.tensor(float("nan"))
    for _ in range(config.head_epochs):
        perm = torch.randperm(len(xs), generator=g)
        for start in range(0, len(xs), config.batch_size):
            idx = perm[start:start + config.batch_size]
            batch = F.dropout(xs[idx], p=noise) if noise > 0 else xs[idx]
            loss = objective(head(batch), y[idx], weight, multi_label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    w = head.weight.detach().double().numpy() / sd  # fold the standardization into the head
    b = head.bias.detach().double().numpy() - w @ mu
    return w.astype(np.float32), b.astype(np.float32), float(loss.item())


def _report(weights: StaticWeights, tokenizer: Any, examples: Sequence[Example],
            labels: Sequence[str], thresholds: dict[str, float] | None = None) -> dict[str, Any]:
    """The classification report of the static model on `examples` as a dict (multi-label: the set
    report at `thresholds`)."""
    logits = weights.logits_of_texts(tokenizer, [ex.text for ex in examples])
    if thresholds is not None:
        return ml.set_report(ml.sigmoid(logits), examples, labels, thresholds)
    pred = logits.argmax(axis=1)
    return classification_report([ex.label for ex in examples], [labels[i] for i in pred], labels).to_dict()


def _finished(out: Path, key: str) -> dict[str, Any] | None:
    """train_meta.json of a finished static run with fingerprint `key` in `out`, else None."""
    meta_path = out / "train_meta.json"
    if not (meta_path.is_file() and (out / "model.safetensors").is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return meta if meta.get("config_hash") == key and meta.get("student") == STATIC_STUDENT else None


def train_static(config: TrainConfig) -> TrainResult:
    """Distil (or reuse) the static table of `config.model`, train the head, write the model folder."""
    out = Path(config.out)
    threads = resolve_threads(config.threads)
    torch.set_num_threads(threads)
    data = load_training_data(config)
    labels = data.labels
    source = resolve_model(config.model, default_student, error=TrainError)
    pool_sum = pool_digest(config.unlabeled) if config.unlabeled is not None else None
    key = fingerprint(config, model=source, data_sha256=sha256_file(config.data), num_processes=1,
                      pool_digest=pool_sum)
    done = _finished(out, key) if config.resume else None
    if done is not None:
        metrics_path = out / "metrics.json"
        metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if metrics_path.is_file() else None
        print(f"llm2edge: {out} already holds this static student (same data and settings); "
              "pass --no-resume to train again", file=sys.stderr)
        return TrainResult(out=out, labels=labels, metrics=metrics, seconds=0.0, examples_per_second=0.0,
                           resumed_from_epoch=config.head_epochs)
    data, pool_info = add_pool(config, data)
    table = load_or_distill(source, config.dims, threads=threads, progress=config.progress)
    tokenizer = table.tokenizer(config.max_length)
    frozen = StaticWeights(embeddings=table.embeddings,
                           weight=np.zeros((len(labels), config.dims), dtype=np.float32),
                           bias=np.zeros(len(labels), dtype=np.float32))
    t0 = time.perf_counter()
    x = frozen.mean_vectors([e.ids for e in tokenizer.encode_batch([ex.text for ex in data.train])])
    multi = data.multi_label
    if multi:
        targets = set_targets(data.train, labels, config.soft_labels or pool_info is not None)
        weights = pos_weights(targets, config.class_weight)
    else:
        targets = target_tensor(data.train, labels, config.soft_labels or pool_info is not None)
        weights = class_weights(targets, len(labels), config.class_weight)
    w, b, loss = fit_head(x, targets, len(labels), config, weights, multi_label=multi)
    seconds = time.perf_counter() - t0
    model = StaticWeights(embeddings=table.embeddings, weight=w, bias=b)
    thresholds = None
    if multi:
        val_texts = [ex.text for ex in data.validation]
        val_logits = model.logits_of_texts(tokenizer, val_texts) if val_texts else np.zeros((0, len(labels)))
        thresholds = ml.tuned(ml.sigmoid(val_logits), data.validation, labels)
    extra = {"problem_type": ml.PROBLEM_TYPE, "label_thresholds": thresholds} if multi else {}

    out.mkdir(parents=True, exist_ok=True)
    save_static_weights(out, model)
    write_static_config(out, static_config(labels, model, source_model=source,
                                           source_digest=table.source_digest, **extra))
    tokenizer.save(str(out / "tokenizer.json"))
    write_validation(out / "validation.csv", data.validation)
    val_metrics = _report(model, tokenizer, data.validation, labels, thresholds) if data.validation else None
    metrics = None
    if data.eval is not None:
        metrics = {"split": "eval", "data": str(config.eval_data),
                   **_report(model, tokenizer, data.eval, labels, thresholds)}
    collapse = check_collapse({"validation": val_metrics, "eval": metrics})
    if metrics is not None:
        metrics["collapsed"] = collapse["collapsed"]
        write_json(out / "metrics.json", metrics)
    processed = len(data.train) * config.head_epochs
    write_json(out / "train_meta.json", {
        "student": STATIC_STUDENT, "labels": labels, "max_length": config.max_length, "seed": config.seed,
        "source_model": source, "source_digest": table.source_digest, "dims": config.dims,
        "table_cached": table.cached, "data": str(config.data), "data_sha256": sha256_file(config.data),
        "text_col": config.text_col, "label_col": config.label_col, "soft_labels": config.soft_labels,
        "class_weight": config.class_weight,
        "class_weights": None if weights is None or multi else
        {label: round(float(v), 6) for label, v in zip(labels, weights.tolist())},
        **(ml.meta(weights, labels, thresholds) if multi else {}),
        "head_epochs": config.head_epochs, "head_lr": config.head_lr, "batch_size": config.batch_size,
        "final_loss": round(loss, 6), "threads": threads, "train_rows": len(data.train),
        "validation_rows": len(data.validation), "seconds": round(seconds, 3),
        "examples_per_second": round(processed / seconds, 3) if seconds > 0 else None,
        "resumed_from_epoch": 0, "config_hash": key, "collapsed": collapse["collapsed"], "pool": pool_info,
        "collapse": collapse["slices"],
        "validation": None if val_metrics is None else ml.summary(val_metrics) if multi else
        {k: val_metrics[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1")},
    })
    share_one_mode(out)
    return TrainResult(out=out, labels=labels, metrics=metrics, seconds=seconds,
                       examples_per_second=processed / seconds if seconds > 0 else 0.0, resumed_from_epoch=0)
