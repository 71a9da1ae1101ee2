"""The stored hashes: file checksums and short object digests keep the exact format already on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath

from llm2edge.hashing import digest, sha256_file, sha256_text


def test_sha256_file_streams_files_larger_than_a_chunk(tmp_path):
    data = bytes(range(256)) * 20_000  # > the 1 MiB default chunk
    (tmp_path / "f").write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(tmp_path / "f") == expected
    assert sha256_file(str(tmp_path / "f"), chunk=7) == expected


def test_sha256_file_of_an_empty_file(tmp_path):
    (tmp_path / "e").write_bytes(b"")
    assert sha256_file(tmp_path / "e") == hashlib.sha256(b"").hexdigest()


def test_digest_is_the_sorted_json_hash_stamps_and_fingerprints_stored():
    obj = {"b": [1, 2], "a": {"z": 1, "y": "é"}, "p": _unencodable()}
    blob = json.dumps(obj, sort_keys=True, default=str).encode("utf-8")
    assert digest(obj) == hashlib.sha256(blob).hexdigest()[:16]
    reordered = {"a": {"y": "é", "z": 1}, "p": _unencodable(), "b": [1, 2]}
    assert digest(reordered) == digest(obj)  # key order is ignored
    assert digest(obj) != digest({**obj, "b": [2, 1]})


def test_digest_keeps_utf8_text_and_length_for_prompt_hashes_and_label_keys():
    parts = ["naïve café", [["f", "ü"]], "task", 3, True]
    blob = json.dumps(parts, ensure_ascii=False).encode("utf-8")
    assert digest(parts, length=24, ensure_ascii=False) == hashlib.sha256(blob).hexdigest()[:24]
    assert digest(parts, ensure_ascii=False) != digest(parts)  # non-ASCII hashes differently when escaped


def test_sha256_text_full_and_cut():
    full = hashlib.sha256(b"gguf|12|34").hexdigest()
    assert sha256_text("gguf|12|34") == full
    assert sha256_text("gguf|12|34", 16) == full[:16]


def _unencodable() -> PurePosixPath:
    """A value JSON cannot encode (hashed as its str)."""
    return PurePosixPath("/data/x.csv")
