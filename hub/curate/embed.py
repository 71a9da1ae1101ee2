"""Frozen sentence embeddings from the student encoder (mean-pooled, L2-normalized), for cheap models."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from llm2edge.checks import at_least, check_max_length
from llm2edge.defaults import EMBED_BATCH_SIZE, MAX_LENGTH
from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import ConfigError
from llm2edge.hub.curate.rows import Row, pair_text


class Encoder:
    """A frozen sentence encoder, loaded once: `encode(texts)` gives mean-pooled, L2-normalized embeddings
    (the pool's chunks call it many times; `embed_texts` is the one-call form)."""

    def __init__(self, model: str | None = None, *, max_length: int = MAX_LENGTH,
                 batch_size: int = EMBED_BATCH_SIZE, threads: int | None = None) -> None:
        check_max_length(max_length)
        at_least("batch_size", batch_size)
        n_threads = resolve_threads(threads)
        import torch
        from transformers import AutoModel, AutoTokenizer

        from llm2edge.hub.models import default_student, load_pretrained, resolve_model

        torch.set_num_threads(n_threads)
        self.name = resolve_model(model, default_student)
        self.tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.name)
        self.encoder = load_pretrained(AutoModel.from_pretrained, self.name)
        self.encoder.eval()
        self.max_length, self.batch_size = max_length, batch_size

    def encode(self, texts: Sequence[str], *, pairs: Sequence[str | None] | None = None,
               progress: bool = False) -> np.ndarray:
        """Embeddings of `texts` (rows in order), optionally paired with `pairs` (e.g. a target)."""
        import torch

        n = len(texts)
        if pairs is not None and len(pairs) != n:
            raise ConfigError(f"embed_texts: {n} texts but {len(pairs)} pairs")
        order = sorted(range(n), key=lambda i: len(texts[i]))  # length-sorted batches: little padding
        out: np.ndarray | None = None
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=n, desc="embed", unit="item", leave=False)
        tokenizer, size = self.tokenizer, self.batch_size
        with torch.no_grad():
            for start in range(0, n, size):
                idx = order[start:start + size]
                first = [texts[i] for i in idx]
                if pairs is not None and any(pairs[i] for i in idx):
                    enc = tokenizer([pairs[i] or "" for i in idx], first, padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="pt")
                else:
                    enc = tokenizer(first, padding=True, truncation=True, max_length=self.max_length,
                                    return_tensors="pt")
                hidden = self.encoder(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                if out is None:
                    out = np.zeros((n, pooled.shape[-1]), dtype=np.float32)
                out[idx] = pooled.float().numpy()
                if bar is not None:
                    bar.update(len(idx))
        if bar is not None:
            bar.close()
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def embed_texts(texts: Sequence[str], *, model: str | None = None, pairs: Sequence[str | None] | None = None,
                max_length: int = MAX_LENGTH, batch_size: int = EMBED_BATCH_SIZE, threads: int | None = None,
                progress: bool = False) -> np.ndarray:
    """Mean-pooled, L2-normalized embeddings of `texts`, optionally paired with `pairs` (e.g. a target);
    `threads`: torch threads (default: `resolve_threads`)."""
    if pairs is not None and len(pairs) != len(texts):
        raise ConfigError(f"embed_texts: {len(texts)} texts but {len(pairs)} pairs")
    encoder = Encoder(model, max_length=max_length, batch_size=batch_size, threads=threads)
    return encoder.encode(texts, pairs=pairs, progress=progress)


def embed_rows(rows: Sequence[Row], *, model: str | None = None, max_length: int = MAX_LENGTH,
               batch_size: int = EMBED_BATCH_SIZE, threads: int | None = None, progress: bool = False
               ) -> np.ndarray:
    """`embed_texts` of labels rows: each row's text, paired with its per-item fields (e.g. a stance
    target) when any row has some."""
    pairs = [pair_text(r) for r in rows]
    return embed_texts([str(r["text"]) for r in rows], model=model, pairs=pairs if any(pairs) else None,
                       max_length=max_length, batch_size=batch_size, threads=threads, progress=progress)
