"""A review.csv with duplicate ids: agreeing lines merge, disagreeing lines follow --on-conflict."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from llm2edge.errors import DataError
from llm2edge.hub.curate.experts import MergeConfig, merge_experts
from llm2edge.hub.curate.reviews import LABELED, Vote, decide
from llm2edge.records import read_jsonl

RECORDED = Path(__file__).resolve().parent / "fixtures" / "label_studio"


def _review(tmp_path: Path, answers: list[tuple[str, str]]) -> Path:
    """The fixture review.csv, then extra lines (id, expert_label) appended: duplicates of sampled items."""
    folder = tmp_path / "review"
    folder.mkdir()
    shutil.copy(RECORDED / "labels.jsonl", tmp_path / "labels.jsonl")
    with (RECORDED / "review.csv").open(encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))
    by_id = {line["id"]: line for line in lines}
    with (folder / "review.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(lines[0]))
        writer.writeheader()
        writer.writerows(lines)
        writer.writerows({**by_id[item], "expert_label": label} for item, label in answers)
    return folder


def _merge(tmp_path: Path, folder: Path, **kwargs) -> dict[str, str]:
    merge_experts(MergeConfig(labels=tmp_path / "labels.jsonl", reviewed=folder, out=tmp_path / "m.jsonl",
                              **kwargs))
    return {r["id"]: r["label"] for r in read_jsonl(tmp_path / "m.jsonl") if r["source"] == "expert"}


def test_duplicate_ids_with_conflicting_labels(tmp_path, cli, capsys):
    # review.csv lines 2-9 are the sampled items (empty expert_label); lines 10-12 annotate s6 twice
    # (disagreeing) and s3. Before: exit 0, the later line silently won.
    folder = _review(tmp_path, [("s6", "AGAINST"), ("s3", "NONE"), ("s6", "FAVOR")])
    assert cli("merge-experts", "--labels", tmp_path / "labels.jsonl", "--reviewed", folder,
               "--out", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "review.csv: 1 item(s) where annotations disagree: " in err
    assert "item s6: AGAINST (line 10), FAVOR (line 12)" in err
    assert not (tmp_path / "m.jsonl").exists()
    # latest = the later line (a review.csv has no timestamps); a tie has no majority
    assert _merge(tmp_path, folder, on_conflict="latest") == {"s6": "FAVOR", "s3": "NONE"}
    with pytest.raises(DataError, match=r"1 item\(s\) where no majority \(a tie\): item s6"):
        _merge(tmp_path, folder, on_conflict="majority")


def test_duplicate_ids_majority_and_agreement(tmp_path):
    folder = _review(tmp_path, [("s6", "AGAINST"), ("s6", "FAVOR"), ("s6", "AGAINST"), ("s3", "NONE"),
                                ("s3", "NONE")])
    assert _merge(tmp_path, folder, on_conflict="majority") == {"s6": "AGAINST", "s3": "NONE"}
    # agreeing duplicates are no conflict, whatever the policy; an empty duplicate is not a vote
    (tmp_path / "b").mkdir()
    folder2 = _review(tmp_path / "b", [("s3", "NONE"), ("s3", "NONE"), ("s1", "")])
    res = merge_experts(MergeConfig(labels=tmp_path / "b" / "labels.jsonl", reviewed=folder2,
                                    out=tmp_path / "m2.jsonl"))
    assert res.n_expert == 1 and res.n_reviewed == 8 and res.conflicts == []


def test_latest_needs_distinct_timestamps():
    def vote(label, at, n):
        where = f"export.json: task 1, annotation {n} (item x)"
        return Vote("x", label, LABELED, where, f"annotation {n}", at, n)

    assert decide([vote("A", "2026-01-01T10:00:00Z", 1), vote("B", "2026-01-01T09:00:00Z", 2)],
                  "latest").labels == {"x": "A"}
    with pytest.raises(DataError, match="the newest annotations disagree"):
        decide([vote("A", "2026-01-01T10:00:00Z", 1), vote("B", "2026-01-01T10:00:00+00:00", 2)], "latest")
    with pytest.raises(DataError, match=r"annotation 2 \(item x\): no created_at"):
        decide([vote("A", "2026-01-01T10:00:00Z", 1), vote("B", "", 2)], "latest")
    with pytest.raises(DataError, match=r"annotation 2 \(item x\): created_at 'yesterday' is not an ISO"):
        decide([vote("A", "2026-01-01T10:00:00Z", 1), vote("B", "yesterday", 2)], "latest")
