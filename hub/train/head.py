"""`--freeze-encoder`: run the encoder once, cache what the classification head reads, train only the head."""

from __future__ import annotations

import sys
from typing import Any

import torch

from llm2edge.errors import TrainError
from llm2edge.hub.train.batches import collate, objective
from llm2edge.hub.train.config import TrainConfig


def _head(model: Any) -> Any:
    """The classification head module of a *ForSequenceClassification model (for --freeze-encoder)."""
    for name in ("classifier", "score", "logits_proj"):
        module = getattr(model, name, None)
        if isinstance(module, torch.nn.Module):
            return module
    raise TrainError(f"--freeze-encoder does not know the classification head of {type(model).__name__}")


def train_head(model: Any, feats: list[dict[str, list[int]]], targets: torch.Tensor,
               config: TrainConfig, pad_id: int, device: Any, main: bool,
               weight: torch.Tensor | None = None, multi_label: bool = False) -> int:
    """Cache the encoder's output at the head's input once, then train only the head; returns steps.
    Multi-label: one-vs-rest, a sigmoid per label trained with binary cross-entropy (`weight`: pos_weight)."""
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
                batch = {k: v.to(device) for k, v in collate([feats[i] for i in idx], pad_id).items()}
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
            loss = objective(head(x[idx]), y[idx], weight, multi_label)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
        bar.set_postfix(loss=f"{loss.item():.4f}")
    for p in model.parameters():
        p.requires_grad_(True)
    return steps
