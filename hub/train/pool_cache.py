"""An unlabeled pool on disk: reading it (`pool_texts`), its checksum, and its embeddings cached in chunks
(`PoolCache`, `open_pool`), so a pool of any size streams and a crashed run resumes (`hub.train.pool`).

Rows are matched against labeled rows by a 64-bit hash of their whitespace-collapsed text (`text_hash`),
kept per chunk beside the embeddings: the cache does not depend on which rows a run skips.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say
from llm2edge.errors import DataError
from llm2edge.hashing import digest, sha256_file
from llm2edge.records import input_files, iter_rows


def normalize(text: str) -> str:
    """The text as pools are matched against labeled rows: whitespace collapsed."""
    return " ".join(text.split())


# ------------------------------------------------------------------ reading the pool


def text_hash(text: str) -> int:
    """A 64-bit hash of the text as pools are matched against labeled rows (`normalize`)."""
    return int.from_bytes(hashlib.blake2b(normalize(text).encode("utf-8"), digest_size=8).digest(), "little")


def hashes(texts: Iterable[str]) -> np.ndarray:
    """`text_hash` of each text, as a sorted uint64 array (for np.isin)."""
    return np.unique(np.fromiter((text_hash(t) for t in texts), dtype=np.uint64))


def pool_texts(spec: str | Path, text_col: str, counts: dict[str, int] | None = None
               ) -> Iterator[tuple[str, str]]:
    """(where, text) of the pool's rows with a text, streaming, in file and row order; blank cells are
    skipped and counted in `counts["empty"]` (`counts["read"]`: every row).

    A missing text column or a non-text cell is a DataError naming the file, row and column."""
    counts = counts if counts is not None else {}
    counts.setdefault("read", 0)
    counts.setdefault("empty", 0)
    for path in input_files(str(spec)):
        checked = False
        for line, row in iter_rows(path, text_col=text_col):
            if not checked:
                if text_col not in row:
                    have = ", ".join(map(str, row)) or "none"
                    raise DataError(f"{path}: the unlabeled pool has no column '{text_col}' "
                                    f"(columns: {have}; --unlabeled-text-col names it)")
                checked = True
            counts["read"] += 1
            value = row.get(text_col)
            if value is None or (isinstance(value, str) and not value.strip()):
                counts["empty"] += 1
                continue
            if not isinstance(value, str):
                raise DataError(f"{path}:{line}: column '{text_col}' of the unlabeled pool holds "
                                f"{type(value).__name__} {value!r}, not text")
            yield f"{path}:{line}", value


class PoolCache:
    """A pool's embeddings on disk (the user cache, `cache_dir()/pool/<key>/`, shared by every run on the
    same pool, encoder and max_length), one chunk of `chunk_size` rows at a time: chunk-N.npy (embeddings)
    and hash-N.npy (`text_hash` per row), each written whole, then renamed. A run that stops part-way
    resumes at the first missing chunk; done.json (written last) lets later runs skip reading the pool."""

    def __init__(self, folder: Path, key: dict[str, Any]) -> None:
        self.folder = folder
        self.key = digest(key)
        self.info: dict[str, Any] = {}
        done = folder / "done.json"
        if done.is_file():
            try:
                info = json.loads(done.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                info = {}
            if info.get("key") == self.key:
                self.info = info
        self.rows = int(self.info.get("rows", 0))
        self.n_chunks = int(self.info.get("chunks", 0))
        self.meta = key

    @property
    def complete(self) -> bool:
        """True when every chunk of this pool is cached."""
        return bool(self.info)

    def _path(self, kind: str, index: int) -> Path:
        return self.folder / f"{kind}-{index:06d}.npy"

    def build(self, texts: Iterator[tuple[str, str]], chunk_size: int,
              encode: Callable[[list[str]], np.ndarray], *, counts: dict[str, int] | None = None,
              progress: bool = True) -> None:
        """Embed the texts chunk by chunk (cached chunks are reused, not re-embedded)."""
        from tqdm.auto import tqdm

        if self.complete:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        rows = chunks = reused = 0
        bar = tqdm(desc="pool: embed", unit="row", file=sys.stderr, disable=not progress)
        while True:
            chunk = [t for _, (_, t) in zip(range(chunk_size), texts)]
            if not chunk:
                break
            emb, hsh = self._path("chunk", chunks), self._path("hash", chunks)
            if emb.is_file() and hsh.is_file() and len(np.load(hsh)) == len(chunk):
                reused += 1
            else:
                tmp = emb.with_name(emb.stem + ".tmp.npy")
                np.save(tmp, encode(chunk).astype(np.float32), allow_pickle=False)
                tmp.replace(emb)
                tmp = hsh.with_name(hsh.stem + ".tmp.npy")
                np.save(tmp, np.fromiter((text_hash(t) for t in chunk), dtype=np.uint64), allow_pickle=False)
                tmp.replace(hsh)
            rows += len(chunk)
            chunks += 1
            bar.update(len(chunk))
        bar.close()
        if reused:
            say(f"llm2edge: pool: {reused} of {chunks} chunks were cached already ({self.folder})")
        self.rows, self.n_chunks = rows, chunks
        self.info = {"key": self.key, "rows": rows, "chunks": chunks, **(counts or {}), **self.meta}
        (self.folder / "done.json").write_text(json.dumps(self.info, indent=1, default=str), encoding="utf-8")

    def chunks(self, skip: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(row indices, embeddings) of each chunk in order, one chunk in memory at a time; rows whose
        text hash is in `skip` (sorted uint64) are left out."""
        start = 0
        for i in range(self.n_chunks):
            x = np.load(self._path("chunk", i), allow_pickle=False)
            index = np.arange(start, start + len(x))
            start += len(x)
            if skip is not None and len(skip):
                keep = ~np.isin(np.load(self._path("hash", i), allow_pickle=False), skip)
                x, index = x[keep], index[keep]
            yield index, x

    def count(self, skip: np.ndarray) -> int:
        """How many cached rows have a text hash in `skip`."""
        if not len(skip):
            return 0
        return sum(int(np.isin(np.load(self._path("hash", i)), skip).sum()) for i in range(self.n_chunks))

    def first(self, hits: np.ndarray) -> int | None:
        """The first row whose text hash is in `hits`, else None."""
        start = 0
        for i in range(self.n_chunks):
            row_hashes = np.load(self._path("hash", i))
            found = np.flatnonzero(np.isin(row_hashes, hits))
            if len(found):
                return start + int(found[0])
            start += len(row_hashes)
        return None

    def chunk_path(self, index: int) -> Path:
        """Where chunk `index`'s embeddings are kept."""
        return self._path("chunk", index)


def open_pool(spec: str | Path, text_col: str, *, model: str | None, max_length: int, chunk_size: int,
              encode: Callable[[list[str]], np.ndarray], progress: bool = True,
              cache_root: Path | None = None) -> PoolCache:
    """The pool's embedding cache, built (or resumed) from the pool file(s) when not complete."""
    if cache_root is None:
        from llm2edge.hub.models import cache_dir

        cache_root = cache_dir() / "pool"
    key = {"pool": pool_digest(spec), "text_col": text_col, "model": model, "max_length": max_length,
           "chunk_size": chunk_size}
    cache = PoolCache(cache_root / digest(key), key)
    if cache.complete:
        say(f"llm2edge: pool: {cache.rows} rows, embeddings cached in {cache.folder}")
    else:
        counts: dict[str, int] = {}
        cache.build(pool_texts(spec, text_col, counts), chunk_size, encode, counts=counts, progress=progress)
    return cache


def pool_digest(spec: str | Path) -> str:
    """A checksum of the pool: its file's, or a folder's files' (names and contents)."""
    files = input_files(str(spec))
    if len(files) == 1 and Path(spec).is_file():
        return sha256_file(files[0])
    return digest([[f.name, sha256_file(f)] for f in files])


def gather(cache: PoolCache, rows: np.ndarray) -> np.ndarray:
    """The cached embeddings of the given (sorted) pool rows ((0, d) for none); only the chunks that hold
    them are read."""
    size = int(cache.meta["chunk_size"])
    parts, width = [], 0
    for i in np.unique(rows // size).tolist() or [0]:
        if i >= cache.n_chunks:
            break
        x = np.load(cache.chunk_path(i), mmap_mode="r")
        width = x.shape[1]
        mine = rows[(rows >= i * size) & (rows < i * size + len(x))] - i * size
        if len(mine):
            parts.append(np.asarray(x[mine]))
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)


def texts_of(spec: str | Path, text_col: str, rows: np.ndarray) -> list[str]:
    """The texts of the given pool rows (a second streaming pass)."""
    wanted = set(rows.tolist())
    out = []
    if not wanted:
        return out
    for i, (_, text) in enumerate(pool_texts(spec, text_col)):
        if i in wanted:
            out.append(text)
            if len(out) == len(wanted):
                break
    return out


def where_of(spec: str | Path, text_col: str, row: int) -> str:
    """file:line of a pool row (for an error message)."""
    for i, (where, _) in enumerate(pool_texts(spec, text_col)):
        if i == row:
            return where
    return str(spec)


