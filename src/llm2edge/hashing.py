"""The hashes llm2edge stores: file checksums (manifests, train data) and short digests of JSON-able objects.

Every cache key, stage stamp, checkpoint fingerprint and prompt hash is made here, so the same input
always hashes the same way and hashes already on disk keep matching.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

#: Bytes read per block when hashing a file.
CHUNK = 1 << 20
#: Hex digits kept by `digest` (64 bits: enough to tell cache entries apart, short enough to read).
DIGEST_LENGTH = 16


def sha256_file(path: str | Path, chunk: int = CHUNK) -> str:
    """The full hex SHA-256 of a file's bytes, read into one reused buffer of `chunk` bytes.

    This is what verifying a bundle costs at every start (bench/startup.py): hashing and nothing more, no
    per-block allocation (one bytearray, `readinto`, unbuffered file).
    """
    h = hashlib.sha256()
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    with Path(path).open("rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            h.update(view[:n])
    return h.hexdigest()


def sha256_text(text: str, length: int | None = None) -> str:
    """The hex SHA-256 of a string's UTF-8 bytes, cut to its first `length` digits (all 64 when None)."""
    hexdigest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return hexdigest if length is None else hexdigest[:length]


def digest(obj: Any, *, length: int = DIGEST_LENGTH, ensure_ascii: bool = True) -> str:
    """A short stable hash of a JSON-able object: sha256 of its key-sorted JSON, first `length` hex digits.

    Values JSON cannot encode are hashed as `str(value)`. `ensure_ascii=False` hashes non-ASCII text as
    UTF-8 rather than `\\u` escapes (the prompt hashes and label keys were first stored that way).
    """
    return sha256_text(json.dumps(obj, sort_keys=True, default=str, ensure_ascii=ensure_ascii), length)


def file_digest(path: str | Path) -> str:
    """A file's checksum as keys and stamps store it: the first DIGEST_LENGTH hex digits of its SHA-256.

    What is in the file, not where it is: a key made on one machine holds on another.
    """
    return sha256_file(path)[:DIGEST_LENGTH]
