"""The training loop: accelerate (one process or DDP), length-grouped batches, epoch checkpoints, resume.

Layout of OUT after a run:
  config.json, model.safetensors, tokenizer files   Hugging Face layout (id2label in config.json)
  validation.csv                                    held-back slice of the training data (text,label)
  train_meta.json                                   labels, max_length, seed, source model, data hash, ...
  metrics.json                                      --eval report (accuracy, macro/weighted F1, confusion)
  checkpoints/epoch-N/                              the LAST epoch's accelerate state only (older ones are
                                                    deleted as soon as a newer one is complete); rerunning the
                                                    same command finds it and does no training again.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from llm2edge.console import say
from llm2edge.errors import TrainError
from llm2edge.hashing import sha256_file
from llm2edge.hub.models import default_student, load_pretrained, resolve_model
from llm2edge.hub.train.config import TrainConfig, TrainResult, fingerprint
from llm2edge.hub.train.data import (
    Example,
    check_labels,
    label_order,
    read_hard,
    read_soft,
    split_validation,
    write_validation,
)
from llm2edge.metrics import classification_report

CHECKPOINTS = "checkpoints"
CHECKPOINT_JSON = "checkpoint.json"
MEGABATCH = 50  # length grouping: sort by length inside windows of MEGABATCH batches


# ---------------------------------------------------------------- helpers


def _default_threads(local_processes: int) -> int:
    """CPUs available to this process divided among the processes of this machine (at least 1)."""
    try:
        from llm2edge.edge.threads import available_cpus

        cpus = available_cpus()
    except ImportError:  # pragma: no cover - the edge package ships with the core
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cpus // max(1, local_processes))


def _distributed_without_accelerator() -> bool:
    """True under torchrun/`accelerate launch --multi_gpu` on a machine without GPUs: use gloo on CPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or "LOCAL_RANK" not in os.environ:
        return False
    xpu = getattr(torch, "xpu", None)
    return not torch.cuda.is_available() and not (xpu is not None and xpu.is_available())


def _epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """This epoch's batches: a seeded shuffle, sorted by length within windows, batch order shuffled."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    window = batch_size * MEGABATCH
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: -lengths[i])
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    perm = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in perm]


def _shard(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This process's batches; the list is padded by wrapping around so every process steps equally."""
    if world == 1:
        return batches
    total = math.ceil(len(batches) / world) * world
    padded = [batches[i % len(batches)] for i in range(total)]
    return padded[rank::world]


def _collate(features: Sequence[dict[str, list[int]]], pad_id: int, left: bool = False
             ) -> dict[str, torch.Tensor]:
    """Pad a batch of tokenized items to its longest one (dynamic padding)."""
    width = max(len(f["input_ids"]) for f in features)
    out: dict[str, torch.Tensor] = {}
    for key in features[0]:
        fill = pad_id if key == "input_ids" else 0
        rows = []
        for f in features:
            gap = [fill] * (width - len(f[key]))
            rows.append(gap + f[key] if left else f[key] + gap)
        out[key] = torch.tensor(rows, dtype=torch.long)
    return out


def _targets(examples: Sequence[Example], labels: Sequence[str], soft: bool) -> torch.Tensor:
    """Class indices (hard) or a [n, k] probability matrix (soft) in `labels` order."""
    index = {label: i for i, label in enumerate(labels)}
    if not soft:
        return torch.tensor([index[ex.label] for ex in examples], dtype=torch.long)
    target = torch.zeros(len(examples), len(labels), dtype=torch.float32)
    for row, ex in enumerate(examples):
        for label, p in (ex.probs or {ex.label: 1.0}).items():
            target[row, index[label]] = p
    return target


def class_weights(targets: torch.Tensor, num_labels: int, mode: str) -> torch.Tensor | None:
    """Per-class loss weights: None for "none"; "balanced" is sklearn's n / (k * n_c).

    n_c counts the hard targets of class c, or sums the soft targets' mass on c; a class absent from the
    training targets gets weight 1 (it never appears as a target, so its weight has no effect).
    """
    if mode == "none":
        return None
    if mode != "balanced":
        raise TrainError(f"class_weight must be none or balanced (got '{mode}')")
    if targets.dim() == 1:
        counts = torch.bincount(targets, minlength=num_labels).to(torch.float64)
    else:
        counts = targets.to(torch.float64).sum(0)
    n = counts.sum()
    weights = torch.ones(num_labels, dtype=torch.float64)
    present = counts > 0
    weights[present] = n / (num_labels * counts[present])
    return weights.to(torch.float32)


def _tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[dict[str, list[int]]]:
    """Tokenize without padding (batches pad themselves), truncating to max_length."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(texts))]


@torch.no_grad()
def predict_indices(model: Any, tokenizer: Any, texts: Sequence[str], *, max_length: int, batch_size: int,
                    device: Any = "cpu") -> list[int]:
    """The model's predicted class index per text (batched by length, in input order)."""
    model.eval()
    feats = _tokenize(tokenizer, texts, max_length)
    order = sorted(range(len(texts)), key=lambda i: len(feats[i]["input_ids"]))
    pred = [0] * len(texts)
    pad_id = tokenizer.pad_token_id or 0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = {k: v.to(device) for k, v in _collate([feats[i] for i in idx], pad_id).items()}
        for i, p in zip(idx, model(**batch).logits.argmax(-1).tolist()):
            pred[i] = p
    return pred


def _report(model: Any, tokenizer: Any, examples: Sequence[Example], labels: Sequence[str],
            config: TrainConfig, device: Any) -> dict[str, Any]:
    """The classification report of `model` on `examples` as a dict (Report.to_dict())."""
    idx = predict_indices(model, tokenizer, [ex.text for ex in examples], max_length=config.max_length,
                          batch_size=max(config.batch_size, 32), device=device)
    report = classification_report([ex.label for ex in examples], [labels[i] for i in idx], labels)
    return report.to_dict()


def metrics_table(metrics: dict[str, Any]) -> str:
    """The terminal table of a metrics.json dict."""
    from llm2edge.metrics import ClassReport, Report

    fields = {k: metrics[k] for k in ("labels", "n", "accuracy", "macro_f1", "weighted_f1", "confusion")}
    per_class = [ClassReport(**c) for c in metrics["per_class"]]
    return Report(per_class=per_class, **fields).table()


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    """Write JSON atomically (temp file + rename), so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _last_checkpoint(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint (its folder has checkpoint.json) under `root`, or None."""
    found: list[tuple[int, Path, dict[str, Any]]] = []
    if root.is_dir():
        for sub in root.glob("epoch-*"):
            meta = sub / CHECKPOINT_JSON
            if meta.is_file():
                try:
                    info = json.loads(meta.read_text(encoding="utf-8"))
                    found.append((int(info["epoch"]), sub, info))
                except (ValueError, KeyError, TypeError):
                    continue
    if not found:
        return None
    epoch, sub, info = max(found, key=lambda t: t[0])
    return sub, info


def _head(model: Any) -> Any:
    """The classification head module of a *ForSequenceClassification model (for --freeze-encoder)."""
    for name in ("classifier", "score", "logits_proj"):
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise TrainError(f"--freeze-encoder does not know the classification head of {type(model).__name__}")


# ---------------------------------------------------------------- training


def _freeze_and_train_head(model: Any, feats: list[dict[str, list[int]]], targets: torch.Tensor,
                           config: TrainConfig, pad_id: int, device: Any, main: bool,
                           weight: torch.Tensor | None = None) -> int:
    """Cache the encoder's output at the head's input once, then train only the head; returns steps."""
    from tqdm.auto import tqdm

    head = _head(model)
    cached: list[torch.Tensor] = []

    def grab(_module: Any, args: tuple[Any, ...]) -> None:
        x = args[0].detach()
        cached.append(x[:, :1] if x.dim() == 3 else x)  # 3-D heads (RoBERTa-style) read the first token

    model.eval()
    hook = head.register_forward_pre_hook(grab)
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    try:
        with torch.no_grad():
            bar = tqdm(total=len(order), desc="encoding", disable=not (main and config.progress),
                       file=sys.stderr, unit="ex")
            for start in range(0, len(order), 64):
                idx = order[start:start + 64]
                batch = {k: v.to(device) for k, v in _collate([feats[i] for i in idx], pad_id).items()}
                model(**batch)
                bar.update(len(idx))
            bar.close()
    finally:
        hook.remove()
    x = torch.cat(cached)[torch.argsort(torch.tensor(order))]
    y = targets.to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head.parameters():
        p.requires_grad_(True)
    head.train()
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.head_lr, weight_decay=config.weight_decay)
    g = torch.Generator().manual_seed(config.seed)
    steps = 0
    bar = tqdm(range(config.head_epochs), desc="head", disable=not (main and config.progress),
               file=sys.stderr, unit="epoch")
    for _ in bar:
        perm = torch.randperm(len(x), generator=g)
        for start in range(0, len(x), config.batch_size):
            idx = perm[start:start + config.batch_size].to(device)
            loss = F.cross_entropy(head(x[idx]), y[idx], weight=weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        bar.set_postfix(loss=f"{loss.item():.4f}")
    for p in model.parameters():
        p.requires_grad_(True)
    return steps


def train(config: TrainConfig) -> TrainResult:
    """Fine-tune a sequence classifier on `config.data`; write the model folder `config.out`."""
    config.check()
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
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    threads = config.threads or _default_threads(local_world)
    torch.set_num_threads(threads)

    # ---- data
    if config.soft_labels:
        examples = read_soft(config.data, text_col=config.text_col, label_col=config.label_col)
    else:
        examples = read_hard(config.data, text_col=config.text_col, label_col=config.label_col,
                             id_col=config.id_col)
    labels = label_order(examples, config.labels)
    eval_examples: list[Example] | None = None
    if config.eval_data is not None:
        eval_examples = read_hard(config.eval_data, text_col=config.text_col, label_col=config.label_col,
                                  id_col=config.id_col)
        check_labels(eval_examples, labels, "eval")
    train_ex, val_ex = split_validation(examples, fraction=config.val_fraction,
                                        max_rows=config.val_max_rows, seed=config.seed)
    data_hash = sha256_file(config.data)
    model_name = resolve_model(config.model, default_student, error=TrainError)
    key = fingerprint(config, model=model_name, data_sha256=data_hash, num_processes=world)

    # ---- checkpoints: resume or refuse
    root = out / CHECKPOINTS
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if not config.resume and root.exists():
            shutil.rmtree(root)
    accelerator.wait_for_everyone()
    last = _last_checkpoint(root) if config.resume and not config.freeze_encoder else None
    if last is not None and last[1].get("config_hash") != key:
        raise TrainError(f"{root} holds checkpoints of a different run (other data or settings); "
                         "pass --no-resume to start over, or choose a new --out")

    # ---- model
    set_seed(config.seed)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized classifier weights" is expected here
    try:
        tokenizer = load_pretrained(AutoTokenizer.from_pretrained, model_name, error=TrainError)
        model = load_pretrained(
            AutoModelForSequenceClassification.from_pretrained, model_name, error=TrainError,
            num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)}, use_safetensors=True,
            ignore_mismatched_sizes=True)
    finally:
        hf_logging.set_verbosity(verbosity)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        if tokenizer.eos_token_id is None:
            raise TrainError(f"{model_name}: the tokenizer has no padding token")
        tokenizer.pad_token = tokenizer.eos_token
        pad_id = tokenizer.pad_token_id
    model.config.pad_token_id = pad_id
    left = tokenizer.padding_side == "left"
    feats = _tokenize(tokenizer, [ex.text for ex in train_ex], config.max_length)
    lengths = [len(f["input_ids"]) for f in feats]
    targets = _targets(train_ex, labels, config.soft_labels)
    device = accelerator.device
    weights = class_weights(targets, len(labels), config.class_weight)
    weight = None if weights is None else weights.to(device)

    start_epoch = 0
    t0 = time.perf_counter()
    processed = 0
    if config.freeze_encoder:
        model.to(device)
        _freeze_and_train_head(model, feats, targets, config, pad_id, device, main, weight)
        processed = len(train_ex) * config.head_epochs
        unwrapped = model
    else:
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            (no_decay if p.ndim < 2 or "norm" in name.lower() or name.endswith(".bias") else decay).append(p)
        groups = [{"params": decay, "weight_decay": config.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
        first = _epoch_batches(lengths, config.batch_size, config.seed, 0)
        batches_per_proc = len(_shard(first, rank, world))
        steps_per_epoch = math.ceil(batches_per_proc / config.grad_accum)
        total_steps = steps_per_epoch * config.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, round(config.warmup_ratio * total_steps),
                                                    total_steps)
        model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
        if last is not None:
            accelerator.load_state(str(last[0]))
            start_epoch = int(last[1]["epoch"])
            if main:
                say(f"llm2edge: resuming from {last[0]} (epoch {start_epoch} of {config.epochs} done)")
        for epoch in range(start_epoch, config.epochs):
            set_seed(config.seed + 1 + epoch)  # dropout RNG per epoch: a resumed run draws the same masks
            mine = _shard(_epoch_batches(lengths, config.batch_size, config.seed, epoch), rank, world)
            model.train()
            bar = tqdm(total=len(mine), desc=f"epoch {epoch + 1}/{config.epochs}", file=sys.stderr,
                       disable=not (main and config.progress), unit="batch")
            for i, idx in enumerate(mine):
                group_start = (i // config.grad_accum) * config.grad_accum
                group = min(config.grad_accum, len(mine) - group_start)
                stepping = i == group_start + group - 1
                batch = {k: v.to(device) for k, v in _collate([feats[j] for j in idx], pad_id, left).items()}
                sync = contextlib.nullcontext() if stepping else accelerator.no_sync(model)
                with sync:
                    logits = model(**batch).logits
                    loss = F.cross_entropy(logits.float(), targets[idx].to(device), weight=weight) / group
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
            _save_checkpoint(accelerator, root, epoch + 1, key)
        unwrapped = accelerator.unwrap_model(model)
    seconds = time.perf_counter() - t0

    # ---- outputs (main process only)
    metrics: dict[str, Any] | None = None
    if main:
        unwrapped.save_pretrained(out, safe_serialization=True)
        tokenizer.model_max_length = config.max_length
        if getattr(tokenizer, "is_fast", False):  # tokenizer.json: truncate at max_length, no fixed padding
            tokenizer.backend_tokenizer.no_padding()
            tokenizer.backend_tokenizer.enable_truncation(config.max_length)
        tokenizer.save_pretrained(out)
        write_validation(out / "validation.csv", val_ex)
        val_metrics = _report(unwrapped, tokenizer, val_ex, labels, config, device) if val_ex else None
        if eval_examples is not None:
            metrics = {"split": "eval", "data": str(config.eval_data),
                       **_report(unwrapped, tokenizer, eval_examples, labels, config, device)}
            _write_json(out / "metrics.json", metrics)
        _write_json(out / "train_meta.json", {
            "labels": labels, "max_length": config.max_length, "seed": config.seed,
            "source_model": model_name, "data": str(config.data), "data_sha256": data_hash,
            "text_col": config.text_col, "label_col": config.label_col, "soft_labels": config.soft_labels,
            "freeze_encoder": config.freeze_encoder, "class_weight": config.class_weight,
            "class_weights": None if weights is None else
            {label: round(float(w), 6) for label, w in zip(labels, weights.tolist())},
            "epochs": config.epochs, "batch_size": config.batch_size,
            "lr": config.lr, "num_processes": world, "threads": threads, "train_rows": len(train_ex),
            "validation_rows": len(val_ex), "seconds": round(seconds, 3),
            "examples_per_second": round(processed / seconds, 3) if seconds > 0 else None,
            "resumed_from_epoch": start_epoch, "config_hash": key,
            "validation": None if val_metrics is None else
            {k: val_metrics[k] for k in ("n", "accuracy", "macro_f1", "weighted_f1")},
        })
    accelerator.wait_for_everyone()
    if not main and (out / "metrics.json").is_file() and eval_examples is not None:
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return TrainResult(out=out, labels=labels, metrics=metrics, seconds=seconds,
                       examples_per_second=processed / seconds if seconds > 0 else 0.0,
                       resumed_from_epoch=start_epoch, main_process=main)


def _save_checkpoint(accelerator: Any, root: Path, epoch: int, key: str) -> None:
    """Save the accelerate state of `epoch` (model as safetensors), mark it complete, drop older ones."""
    target = root / f"epoch-{epoch}"
    if accelerator.is_main_process and target.exists():
        shutil.rmtree(target)  # a torn checkpoint of a crashed run
    accelerator.wait_for_everyone()
    accelerator.save_state(str(target), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json(target / CHECKPOINT_JSON, {"epoch": epoch, "config_hash": key})
        for old in root.glob("epoch-*"):
            if old != target:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
