"""Examples into tensors: tokenizing, length-grouped epoch batches, sharding across processes, padding,
targets and class weights.

Batches are grouped by length (sorted inside windows of MEGABATCH batches, then shuffled) so little padding
is computed; every process of a distributed run takes an equal share of each epoch's batches.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from llm2edge.checks import one_of
from llm2edge.hub.train.config import CLASS_WEIGHTS
from llm2edge.hub.train.data import Example
from llm2edge.hub.train.small_data import label_mass, resolve_class_weight

#: Length grouping: sort by length inside windows of MEGABATCH batches.
MEGABATCH = 50
#: Multi-label "balanced" weights: a label's pos_weight (negatives / positives) stays within
#: [1 / POS_WEIGHT_CAP, POS_WEIGHT_CAP], so a label seen a handful of times cannot dominate the loss.
POS_WEIGHT_CAP = 10.0


def epoch_batches(lengths: Sequence[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
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


def shard(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This process's batches; the list is padded by wrapping around so every process steps equally."""
    if world == 1:
        return batches
    total = math.ceil(len(batches) / world) * world
    padded = [batches[i % len(batches)] for i in range(total)]
    return padded[rank::world]


def collate(features: Sequence[dict[str, list[int]]], pad_id: int, left: bool = False
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


def target_tensor(examples: Sequence[Example], labels: Sequence[str], soft: bool) -> torch.Tensor:
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
    """Per-class loss weights: None for "none"; "balanced" is sklearn's n / (k * n_c); "auto" is balanced
    when the targets are skewed (small_data.resolve_class_weight), else None.

    n_c counts the hard targets of class c, or sums the soft targets' mass on c; a class absent from the
    training targets gets weight 1 (it never appears as a target, so its weight has no effect).
    """
    one_of("class_weight", mode, CLASS_WEIGHTS)
    if resolve_class_weight(mode, targets, num_labels) == "none":
        return None
    counts = label_mass(targets, num_labels)
    n = counts.sum()
    weights = torch.ones(num_labels, dtype=torch.float64)
    present = counts > 0
    weights[present] = n / (num_labels * counts[present])
    return weights.to(torch.float32)


def set_targets(examples: Sequence[Example], labels: Sequence[str], soft: bool) -> torch.Tensor:
    """Multi-label targets, float32 [n, k]: 1/0 per label of each row's set, or with `soft` the row's
    `probs` per label (a label without a probability: 1 if in the set, else 0)."""
    target = torch.zeros(len(examples), len(labels), dtype=torch.float32)
    for row, ex in enumerate(examples):
        chosen = set(ex.labels or ())
        for j, name in enumerate(labels):
            given = (ex.probs or {}).get(name) if soft else None
            target[row, j] = float(given) if given is not None else float(name in chosen)
    return target


def pos_weights(targets: torch.Tensor, mode: str) -> torch.Tensor | None:
    """Multi-label loss weights: each label's weight on its positives (BCE `pos_weight`), or None.

    "balanced" gives label j n_neg / n_pos (its negatives over its positives, soft targets as mass),
    capped at POS_WEIGHT_CAP, and 1 to a label without positives; "auto" is balanced when the labels'
    positive counts are skewed (small_data.resolve_class_weight on the per-label mass), else None."""
    one_of("class_weight", mode, CLASS_WEIGHTS)
    if resolve_class_weight(mode, targets, targets.shape[1]) == "none":
        return None
    pos = targets.to(torch.float64).sum(0)
    neg = len(targets) - pos
    weights = torch.ones(targets.shape[1], dtype=torch.float64)
    present = pos > 0
    weights[present] = (neg[present] / pos[present]).clamp(min=1.0 / POS_WEIGHT_CAP, max=POS_WEIGHT_CAP)
    return weights.to(torch.float32)


def objective(logits: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor | None,
              multi_label: bool) -> torch.Tensor:
    """The training loss: softmax cross-entropy (class weights), or for multi-label sigmoid binary
    cross-entropy per label (`weight` is BCE's pos_weight)."""
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits.float(), targets, pos_weight=weight)
    return F.cross_entropy(logits.float(), targets, weight=weight)


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[dict[str, list[int]]]:
    """Tokenize without padding (batches pad themselves), truncating to max_length."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    return [{k: enc[k][i] for k in keys} for i in range(len(texts))]
