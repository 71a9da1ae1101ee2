"""Distil a static token-embedding table from a local sentence transformer (model2vec's recipe, offline).

Every token of the source tokenizer's vocabulary goes through the transformer alone (`[CLS] token [SEP]`),
its outputs are mean-pooled, the table is reduced to `dims` with PCA and each row is weighted by a Zipf
estimate of its token's frequency (SIF: `a / (a + p(rank))`, rank = vocabulary order, as model2vec does).
A static student embeds a text as the masked mean of its tokens' rows.

model2vec's own `distill` is not used: model2vec 0.10 with its `distill` extra pulls transformers 5.x,
which optimum-onnx (the export stage) does not allow. The recipe above is its published default.

The token vectors are cached under `cache_dir()/static/<source digest>/` and the table under
`<source digest>-d<dims>/` (embeddings.npy, tokenizer.json, meta.json), so repeated trains reuse them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.errors import TrainError
from llm2edge.hashing import digest, sha256_file

#: Vocabulary tokens run through the transformer per forward pass.
DISTILL_BATCH = 1024
#: model2vec's SIF coefficient `a` in the Zipf weight a / (a + p(rank)).
SIF_COEFFICIENT = 1e-4
#: Files whose bytes identify a source model (those present are hashed).
SOURCE_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json", "vocab.txt")
TABLE_NAME = "embeddings.npy"
VECTORS_NAME = "vectors.npy"
TOKENIZER_NAME = "tokenizer.json"
META_NAME = "meta.json"


@dataclass(frozen=True)
class StaticTable:
    """A distilled table: float32 [vocab, dims] rows, its static tokenizer file, and where it came from."""

    embeddings: np.ndarray
    tokenizer_path: Path
    source_model: str
    source_digest: str
    dims: int
    cached: bool  # True when it was read from the cache, False when distilled by this call

    def tokenizer(self, max_length: int) -> Any:
        """The static tokenizer (no special tokens, no padding), truncating at `max_length` tokens."""
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(self.tokenizer_path))
        tok.no_padding()
        tok.enable_truncation(max_length=max_length)
        return tok


def source_digest(folder: Path) -> str:
    """A short hash of the source model's weights, config and vocabulary files."""
    present = {name: sha256_file(folder / name) for name in SOURCE_FILES if (folder / name).is_file()}
    if "tokenizer.json" not in present:
        raise TrainError(f"{folder}: no tokenizer.json (a static student needs a fast tokenizer)")
    return digest(present)


def static_tokenizer_json(source_tokenizer: Path) -> str:
    """The source tokenizer.json without its post-processor ([CLS]/[SEP]), padding or truncation."""
    try:
        spec = json.loads(source_tokenizer.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrainError(f"{source_tokenizer}: cannot read ({exc})") from None
    spec["post_processor"] = None
    spec["padding"] = None
    spec["truncation"] = None
    return json.dumps(spec, ensure_ascii=False)


def zipf_weights(vocab_size: int, sif: float = SIF_COEFFICIENT) -> np.ndarray:
    """Per-row SIF weights a / (a + p), p a Zipf distribution over vocabulary order (model2vec's rule)."""
    inv_rank = 1.0 / np.arange(2, vocab_size + 2, dtype=np.float64)
    proba = inv_rank / inv_rank.sum()
    return (sif / (sif + proba)).astype(np.float32)


def pca(matrix: np.ndarray, dims: int) -> np.ndarray:
    """The rows of `matrix` projected on their first `dims` principal components (centered, float32)."""
    x = matrix.astype(np.float64)
    x -= x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    signs = np.sign(vt[:dims].sum(axis=1, keepdims=True))  # a deterministic sign per component
    signs[signs == 0] = 1
    return (x @ (vt[:dims] * signs).T).astype(np.float32)


def token_vectors(folder: Path, *, threads: int, progress: bool) -> np.ndarray:
    """Mean-pooled transformer output of every vocabulary token alone, float32 [vocab, hidden]."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    from llm2edge.hub.models import load_pretrained

    tok = load_pretrained(AutoTokenizer.from_pretrained, str(folder), error=TrainError)
    model = load_pretrained(AutoModel.from_pretrained, str(folder), error=TrainError, use_safetensors=True)
    model.eval()
    vocab = len(tok)
    seqs = [tok.build_inputs_with_special_tokens([i]) for i in range(vocab)]
    width = max(len(s) for s in seqs)
    if any(len(s) != width for s in seqs):
        raise TrainError(f"{folder}: special tokens differ in number between vocabulary items")
    ids = torch.tensor(seqs, dtype=torch.long)
    hidden = int(model.config.hidden_size)
    out = np.empty((vocab, hidden), dtype=np.float32)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            bar = tqdm(total=vocab, desc="distilling", unit="tok", disable=not progress, file=sys.stderr)
            for start in range(0, vocab, DISTILL_BATCH):
                batch = ids[start:start + DISTILL_BATCH]
                states = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
                out[start:start + len(batch)] = states.mean(dim=1).float().numpy()
                bar.update(len(batch))
            bar.close()
    finally:
        torch.set_num_threads(old)
    return out


def table_from_vectors(vectors: np.ndarray, dims: int) -> np.ndarray:
    """The static table of token vectors: PCA to `dims`, then Zipf SIF weights, float32 [vocab, dims]."""
    if dims > vectors.shape[1]:
        raise TrainError(f"dims {dims} exceeds the source model's hidden size {vectors.shape[1]}")
    return pca(vectors, dims) * zipf_weights(len(vectors))[:, None]


def _read_array(folder: Path, name: str) -> np.ndarray | None:
    """folder/name as a 2-D array when the cache entry is complete (meta.json written last), else None."""
    if not (folder / META_NAME).is_file() or not (folder / TOKENIZER_NAME).is_file():
        return None
    try:
        array = np.load(folder / name)
    except (OSError, ValueError):
        return None
    return array if array.ndim == 2 else None


def _write_entry(target: Path, name: str, array: np.ndarray, tokenizer: str, meta: dict[str, Any]) -> None:
    """Write a cache entry (array, static tokenizer, meta.json) in a temporary folder, then rename it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        np.save(stage / name, array)
        (stage / TOKENIZER_NAME).write_text(tokenizer, encoding="utf-8")
        (stage / META_NAME).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if target.exists():  # a torn earlier entry
            shutil.rmtree(target, ignore_errors=True)
        os.replace(stage, target)
    except OSError:
        shutil.rmtree(stage, ignore_errors=True)
        if _read_array(target, name) is None:  # unless another process wrote the same entry first
            raise


def load_or_distill(source: str | Path, dims: int, *, cache: Path | None = None, threads: int = 1,
                    progress: bool = True) -> StaticTable:
    """The table of (source model digest, dims) from the cache, else made and cached.

    Two entries: `<digest>/` holds the token vectors (the slow transformer pass, run once per source model),
    `<digest>-d<dims>/` the table; a new --dims only redoes the PCA.
    """
    folder = Path(source)
    if not folder.is_dir():
        raise TrainError(f"{source}: a static student is distilled from a local model folder "
                         "(sentence-transformer layout with tokenizer.json); no such folder")
    if dims < 2:
        raise TrainError(f"dims must be at least 2 (got {dims})")
    key = source_digest(folder)
    if cache is None:
        from llm2edge.hub.models import cache_dir

        cache = cache_dir() / "static"
    target = cache / f"{key}-d{dims}"
    meta = {"source_model": str(folder.resolve()), "source_digest": key,
            "recipe": "each token alone through the model, mean-pooled; PCA; Zipf SIF weights"}
    table = _read_array(target, TABLE_NAME)
    cached = table is not None and table.shape[1] == dims
    if not cached:
        tokenizer = static_tokenizer_json(folder / "tokenizer.json")
        vectors = _read_array(cache / key, VECTORS_NAME)
        if vectors is None:
            vectors = token_vectors(folder, threads=threads, progress=progress)
            _write_entry(cache / key, VECTORS_NAME, vectors, tokenizer, meta)
        table = table_from_vectors(vectors, dims)
        sizes = {"dims": dims, "vocab_size": int(table.shape[0]), "sif_coefficient": SIF_COEFFICIENT}
        _write_entry(target, TABLE_NAME, table, tokenizer, {**meta, **sizes})
    assert table is not None
    return StaticTable(embeddings=table, tokenizer_path=target / TOKENIZER_NAME, source_model=str(folder),
                       source_digest=key, dims=dims, cached=cached)
