"""The training loop: accelerate (one process or DDP), length-grouped batches, epoch checkpoints, resume.

Layout of OUT after a run:
  config.json, model.safetensors, tokenizer files   Hugging Face layout (id2label in config.json)
  validation.csv                                    held-back slice of the training data (text,label)
  train_meta.json                                   labels, max_length, seed, source model, data hash, ...
  metrics.json                                      --eval report (accuracy, macro/weighted F1, confusion)

Multi-label (`multilabel`): sigmoid + binary cross-entropy, config.json also holds problem_type =
"multi_label_classification" and label_thresholds (tuned on the held-back slice), validation.csv's label
is the set joined with ';', metrics.json is labelsets.MultiLabelReport's dict with the thresholds.
  checkpoints/epoch-N/                              the LAST epoch's accelerate state only (older ones are
                                                    deleted as soon as a newer one is complete); rerunning the
                                                    same command finds it and does no training again.

Batching lives in `batches`, checkpoints in `checkpoints`, head-only training (--freeze-encoder) in `head`,
predictions and the report in `evaluation`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

from llm2edge.console import say, warn
from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import TrainError
from llm2edge.hashing import sha256_file
from llm2edge.hub.models import default_student, load_pretrained, resolve_model
from llm2edge.hub.train import multilabel as ml
from llm2edge.hub.train.batches import (
    class_weights,
    collate,
    epoch_batches,
    objective,
    pos_weights,
    set_targets,
    shard,
    target_tensor,
    tokenize,
)
from llm2edge.hub.train.checkpoints import (
    CHECKPOINTS,
    last_checkpoint,
    save_checkpoint,
    share_one_mode,
    write_json,
)
from llm2edge.hub.train.config import TrainConfig, TrainResult, fingerprint
from llm2edge.hub.train.data import load_training_data, write_validation
from llm2edge.hub.train.evaluation import report_dict
from llm2edge.hub.train.guard import check_collapse, fallback_reason
from llm2edge.hub.train.head import train_head
from llm2edge.hub.train.pool import add_pool
from llm2edge.hub.train.pool_cache import pool_digest
from llm2edge.hub.train.selection import BestEpoch
from llm2edge.hub.train.small_data import planned_epochs


def _distributed_without_accelerator() -> bool:
    """True under torchrun/`accelerate launch --multi_gpu` on a machine without GPUs: use gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or "LOCAL_RANK" not in os.environ:
        return False
    xpu = getattr(torch, "xpu", None)
    return not torch.cuda.is_available() and not (xpu is not None and xpu.is_available())


def train(config: TrainConfig) -> TrainResult:
    """Fine-tune a sequence classifier on `config.data`; write the model folder `config.out`.

    With `config.student == "static"` the static student trains instead (`llm2edge.hub.train.static`).
    """
    if config.student == "static":
        from llm2edge.hub.train.static import train_static

        return train_static(config)
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )
    from transformers.utils import logging as hf_logging

    out = Path(config.out)
    accelerator = Accelerator(step_scheduler_with_optimizer=False, cpu=_distributed_without_accelerator())
    main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    threads = resolve_threads(config.threads)
    torch.set_num_threads(threads)

    # ---- data
    data = load_training_data(config)
    data_hash = sha256_file(config.data)
    model_name = resolve_model(config.model, default_student, error=TrainError)
    pool_sum = pool_digest(config.unlabeled) if config.unlabeled is not None else None
    key = fingerprint(config, model=model_name, data_sha256=data_hash, num_processes=world,
                      pool_digest=pool_sum)
    if pool_sum is not None:  # the main process embeds and caches the pool; the others then read its cache
        if main:
            data, pool_info = add_pool(config, data)
        accelerator.wait_for_everyone()
        if not main:
            data, pool_info = add_pool(config, data)
    else:
        pool_info = None
    labels, eval_examples, train_ex, val_ex = data.labels, data.eval, data.train, data.validation
    multi = data.multi_label

    # ---- checkpoints: resume or refuse
    root = out / CHECKPOINTS
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if not config.resume and root.exists():
            shutil.rmtree(root)
    accelerator.wait_for_everyone()
    last = last_checkpoint(root) if config.resume and not config.freeze_encoder else None
    if last is not None and last[1].get("config_hash") != key:
        raise TrainError(f"{root} holds checkpoints of a different run (other data or settings); "
                         "pass --no-resume to start over, or choose a new --out")

    # ---- model
    set_seed(config.seed)
    def pretrained() -> Any:
        """The pretrained encoder with a new classification head for `labels`."""
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "newly initialized classifier weights" is expected here
        try:
            return load_pretrained(
                AutoModelForSequenceClassification.from_pretrained, model_name, error=TrainError,
                num_labels=len(labels), id2label=dict(enumerate(labels)),
                label2id={label: i for i, label in enumerate(labels)}, use_safetensors=True,
                ignore_mismatched_sizes=True, **({"problem_type": ml.PROBLEM_TYPE} if multi else {}))
        finally:
            hf_logging.set_verbosity(verbosity)

    tokenizer = load_pretrained(AutoTokenizer.from_pretrained, model_name, error=TrainError)
    model = pretrained()
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        if tokenizer.eos_token_id is None:
            raise TrainError(f"{model_name}: the tokenizer has no padding token")
        tokenizer.pad_token = tokenizer.eos_token
        pad_id = tokenizer.pad_token_id
    model.config.pad_token_id = pad_id
    left = tokenizer.padding_side == "left"
    feats = tokenize(tokenizer, [ex.text for ex in train_ex], config.max_length)
    lengths = [len(f["input_ids"]) for f in feats]
    if multi:
        y = set_targets(train_ex, labels, config.soft_labels or pool_info is not None)
        weights = pos_weights(y, config.class_weight)
    else:
        y = target_tensor(train_ex, labels, config.soft_labels or pool_info is not None)
        weights = class_weights(y, len(labels), config.class_weight)
    device = accelerator.device
    weight = None if weights is None else weights.to(device)

    def thresholds_of(m: Any) -> dict[str, float] | None:
        """Multi-label: `m`'s per-label thresholds tuned on the held-back slice (None: single-label)."""
        if not multi:
            return None
        return ml.tuned(ml.model_probs(m, tokenizer, val_ex, config, device), val_ex, labels)

    def score(m: Any, examples: list[Any], thresholds: dict[str, float] | None = None) -> dict[str, Any]:
        """`m`'s report on `examples` (multi-label: at `thresholds`, else tuned on `examples`)."""
        if not multi:
            return report_dict(m, tokenizer, examples, labels, config, device)
        probs = ml.model_probs(m, tokenizer, examples, config, device)
        return ml.set_report(probs, examples, labels, thresholds or ml.tuned(probs, examples, labels))

    start_epoch = 0
    epochs = config.epochs
    selecting = config.best_by == "macro_f1" and bool(val_ex) and not config.freeze_encoder
    best = BestEpoch(root, key, enabled=selecting, main=main)
    t0 = time.perf_counter()
    processed = 0
    kept_epoch = epochs
    fallback: dict[str, Any] | None = None
    tuned = None  # the fine-tuned weights a fallback replaced (scored on --eval for the record)
    if config.freeze_encoder:
        model.to(device)
        train_head(model, feats, y, config, pad_id, device, main, weight, multi)
        processed = len(train_ex) * config.head_epochs
        unwrapped = model
    else:
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            (no_decay if p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias") else decay).append(p)
        groups = [{"params": decay, "weight_decay": config.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
        first = epoch_batches(lengths, config.batch_size, config.seed, 0)
        batches_per_proc = len(shard(first, rank, world))
        steps_per_epoch = math.ceil(batches_per_proc / config.grad_accum)
        epochs = planned_epochs(steps_per_epoch, epochs=config.epochs, min_steps=config.min_steps,
                                max_epochs=config.max_epochs)
        total_steps = steps_per_epoch * epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps),
                                                    total_steps)
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        if last is not None:
            try:
                accelerator.load_state(str(last[0]))
            except Exception as exc:  # torch: UnpicklingError/RuntimeError; safetensors: SafetensorError
                raise TrainError(f"{last[0]}: the checkpoint is damaged and cannot be loaded "
                                 f"({type(exc).__name__}); pass --no-resume to start over") from None
            start_epoch = int(last[1]["epoch"])
            best.load()
            if main:
                say(f"llm2edge: resuming from {last[0]} (epoch {start_epoch} of {epochs} done)")
        for epoch in range(start_epoch, epochs):
            set_seed(config.seed + 1 + epoch)  # dropout RNG per epoch: a resumed run draws the same masks
            mine = shard(epoch_batches(lengths, config.batch_size, config.seed, epoch), rank, world)
            model.train()
            bar = tqdm(total=len(mine), desc=f"epoch {epoch + 1}/{epochs}", file=sys.stderr,
                       disable=not (main and config.progress), unit="batch")
            for i, idx in enumerate(mine):
                group_start = (i // config.grad_accum) * config.grad_accum
                group = min(config.grad_accum, len(mine) - group_start)
                stepping = i == group_start + group - 1
                batch = {k: v.to(device) for k, v in collate([feats[j] for j in idx], pad_id, left).items()}
                sync = contextlib.nullcontext() if stepping else accelerator.no_sync(model)
                with sync:
                    logits = model(**batch).logits
                    loss = objective(logits, y[idx].to(device), weight, multi) / group
                    accelerator.backward(loss)
                if stepping:
                    if config.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad()
                processed += len(idx) * world
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item() * group:.4f}")
            bar.close()
            accelerator.wait_for_everyone()
            if best.enabled:  # every process scores the same slice with the same weights: same choice
                bare = accelerator.unwrap_model(model)
                scored = score(bare, val_ex)
                best.update(epoch + 1, scored["macro_f1"], bare)
            save_checkpoint(accelerator, root, epoch + 1, key)
        unwrapped = accelerator.unwrap_model(model)
        kept_epoch = best.restore(unwrapped, epochs)
        if config.on_collapse == "head" and val_ex:  # every process scores the same slice: same choice
            fallback = fallback_reason(score(unwrapped, val_ex), y, len(labels),
                                       [ml.set_name(ex.labels or ()) for ex in train_ex] if multi else None)
        if fallback is not None:
            if main:
                warn(f"the fine-tuned student gives '{fallback['top_label']}' to "
                     f"{fallback['predicted_share']:.0%} of the held-back slice; the training labels give it "
                     f"{fallback['training_labels_share']:.0%}: keeping a head trained on the frozen "
                     "pretrained encoder instead (--on-collapse keep keeps the fine-tuned weights)")
            tuned, unwrapped = unwrapped, pretrained()
            unwrapped.config.pad_token_id = pad_id
            unwrapped.to(device)
            set_seed(config.seed)
            train_head(unwrapped, feats, y, config, pad_id, device, main, weight, multi)
            fallback["kept"] = "frozen-encoder head"
    seconds = time.perf_counter() - t0

    # ---- outputs (main process only)
    metrics: dict[str, Any] | None = None
    thresholds = thresholds_of(unwrapped) if main else None
    if main:
        if thresholds is not None:
            unwrapped.config.problem_type = ml.PROBLEM_TYPE
            unwrapped.config.label_thresholds = thresholds
        unwrapped.save_pretrained(out, safe_serialization=True)
        tokenizer.model_max_length = config.max_length
        if getattr(tokenizer, "is_fast", False):  # tokenizer.json: truncate at max_length, no fixed padding
            tokenizer.backend_tokenizer.no_padding()
            tokenizer.backend_tokenizer.enable_truncation(config.max_length)
        tokenizer.save_pretrained(out)
        write_validation(out / "validation.csv", val_ex)
        val_metrics = score(unwrapped, val_ex, thresholds) if val_ex else None
        if eval_examples is not None:
            metrics = {"split": "eval", "data": str(config.eval_data),
                       **score(unwrapped, eval_examples, thresholds)}
        if fallback is not None and tuned is not None and eval_examples is not None:
            scored = score(tuned, eval_examples, thresholds_of(tuned))
            fallback["fine_tuned_eval"] = ml.summary(scored) if multi else {
                k: scored[k] for k in ("labels", "n", "accuracy", "macro_f1", "weighted_f1", "confusion")}
        collapse = check_collapse({"validation": val_metrics, "eval": metrics})
        if metrics is not None:
            metrics["collapsed"] = collapse["collapsed"]
            metrics["fallback"] = fallback
            write_json(out / "metrics.json", metrics)
        write_json(out / "train_meta.json", {
            "labels": labels, "max_length": config.max_length, "seed": config.seed,
            "source_model": model_name, "data": str(config.data), "data_sha256": data_hash,
            "text_col": config.text_col, "label_col": config.label_col, "soft_labels": config.soft_labels,
            "freeze_encoder": config.freeze_encoder, "class_weight": config.class_weight,
            "class_weights": None if weights is None or multi else
            {label: round(float(w), 6) for label, w in zip(labels, weights.tolist())},
            **(ml.meta(weights, labels, thresholds) if multi else {}),
            "epochs": config.epochs, "epochs_run": epochs, "min_steps": config.min_steps,
            "best_by": config.best_by if best.enabled else "last", "kept_epoch": kept_epoch,
            "on_collapse": config.on_collapse, "fallback": fallback,
            "validation_macro_f1_per_epoch": best.history, "collapsed": collapse["collapsed"],
            "collapse": collapse["slices"], "batch_size": config.batch_size,
            "lr": config.lr, "num_processes": world, "threads": threads, "train_rows": len(train_ex),
            "validation_rows": len(val_ex), "seconds": round(seconds, 3),
            "examples_per_second": round(processed / seconds, 3) if seconds > 0 else None,
            "resumed_from_epoch": start_epoch, "config_hash": key, "pool": pool_info,
            "validation": None if val_metrics is None else ml.summary(val_metrics) if multi else
            {k: val_metrics[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1")},
        })
        share_one_mode(out)
    accelerator.wait_for_everyone()
    if not main and (out / "metrics.json").is_file() and eval_examples is not None:
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return TrainResult(out=out, labels=labels, metrics=metrics, seconds=seconds,
                       examples_per_second=processed / seconds if seconds > 0 else 0.0,
                       resumed_from_epoch=start_epoch, main_process=main)


