"""The expert-review round trip through Label Studio, on exports recorded from Label Studio 1.23.2.

fixtures/label_studio/ holds what fixtures/record_label_studio.py downloaded from a live server (see its
README): llm2edge's import file, and JSON / JSON_MIN / CSV / TSV exports of projects with disagreeing,
skipped, multi-choice and malformed annotations and a renamed control. With LLM2EDGE_LABEL_STUDIO_URL and
LLM2EDGE_LABEL_STUDIO_TOKEN set, every test also runs on exports recorded fresh from that server.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from llm2edge.errors import ConfigError, DataError
from llm2edge.hub.curate.experts import MergeConfig, SampleConfig, merge_experts, sample_experts
from llm2edge.records import read_jsonl

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECORDED = FIXTURES / "label_studio"
#: What the clean project's annotators chose (fixtures/record_label_studio.py): s6 has AGAINST, AGAINST,
#: then FAVOR (newest); s3 two agreeing NONE; s2 skipped; s8 and s4 not annotated.
CLEAN = {"s7": "NONE", "s3": "NONE", "s1": "AGAINST", "s5": "AGAINST"}
FORMATS = ("clean.json", "clean.min.json", "clean.csv", "clean.tsv")
LIVE = bool(os.environ.get("LLM2EDGE_LABEL_STUDIO_URL") and os.environ.get("LLM2EDGE_LABEL_STUDIO_TOKEN"))


@pytest.fixture(scope="module", params=["recorded", "live"] if LIVE else ["recorded"])
def ls(request, tmp_path_factory) -> Path:
    """The folder of Label Studio exports: the committed recording, or one made now from a live server."""
    return exports(request, tmp_path_factory, "record", "live_label_studio")


def exports(request, tmp_path_factory, record: str, folder: str) -> Path:
    """RECORDED for the "recorded" param; for "live", exports made now in a fresh `folder` by
    fixtures/record_label_studio.py's function `record`."""
    if request.param == "recorded":
        return RECORDED
    spec = importlib.util.spec_from_file_location("record_label_studio", FIXTURES / "record_label_studio.py")
    recorder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recorder)
    return getattr(recorder, record)(tmp_path_factory.mktemp(folder))


def _task_id(ls: Path, item: str, name: str = "clean.json") -> int:
    """Label Studio's task id of an item in a recorded JSON export."""
    return next(t["id"] for t in json.loads((ls / name).read_text()) if t["data"]["item_id"] == item)


def _merge(ls: Path, tmp_path: Path, name: str, **kwargs) -> dict[str, str]:
    """Merge an export into the fixture labels; the expert labels by id."""
    merge_experts(MergeConfig(labels=ls / "labels.jsonl", reviewed=ls / name, out=tmp_path / "m.jsonl",
                              **kwargs))
    return {r["id"]: r["label"] for r in read_jsonl(tmp_path / "m.jsonl") if r["source"] == "expert"}


@pytest.mark.parametrize("name", FORMATS)
def test_disagreeing_annotations_are_an_error_by_default(ls, tmp_path, cli, capsys, name):
    # before: JSON took the last annotation (FAVOR), JSON_MIN the first (AGAINST, it lists newest first),
    # both exit 0; CSV/TSV were refused for a missing expert_label column
    assert cli("merge-experts", "--labels", ls / "labels.jsonl", "--reviewed", ls / name,
               "--out", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{name}: 1 item(s) where annotations disagree: item s6" in err
    assert f"task {_task_id(ls, 's6')}, annotation" in err and "--on-conflict latest|majority" in err
    assert not (tmp_path / "m.jsonl").exists()


@pytest.mark.parametrize("name", FORMATS)
def test_latest_and_majority_decide_by_created_at_not_file_order(ls, tmp_path, name):
    assert _merge(ls, tmp_path, name, on_conflict="latest") == {**CLEAN, "s6": "FAVOR"}
    assert _merge(ls, tmp_path, name, on_conflict="majority") == {**CLEAN, "s6": "AGAINST"}


def test_latest_ignores_the_order_of_annotations(ls, tmp_path):
    tasks = json.loads((ls / "clean.json").read_text())
    for task in tasks:
        task["annotations"].reverse()  # newest first, as JSON_MIN lists them
    (tmp_path / "reversed.json").write_text(json.dumps(tasks))
    shutil.copy(ls / "labels.jsonl", tmp_path / "labels.jsonl")
    assert _merge(tmp_path, tmp_path, "reversed.json", on_conflict="latest") == {**CLEAN, "s6": "FAVOR"}


def test_summary_lists_skipped_and_unannotated(ls, tmp_path, cli, capsys):
    assert cli("merge-experts", "--labels", ls / "labels.jsonl", "--reviewed", ls / "clean.json",
               "--out", tmp_path / "m.jsonl", "--on-conflict", "latest") == 0
    out = capsys.readouterr().err  # the summary line goes to stderr
    assert "5 expert labels" in out and "of 8 reviewed items" in out
    assert "1 with disagreeing annotations decided by latest (s6)" in out
    assert "skipped 1 (s2)" in out and "not annotated 2 (s8, s4)" in out
    # JSON_MIN and CSV leave skipped tasks out: the summary says so instead of pretending there were none
    assert cli("merge-experts", "--labels", ls / "labels.jsonl", "--reviewed", ls / "clean.min.json",
               "--out", tmp_path / "m.jsonl", "--on-conflict", "latest") == 0
    out = capsys.readouterr().err  # the summary line goes to stderr
    assert "skipped tasks are not in JSON_MIN exports (export JSON to list them)" in out
    assert "not annotated 2 (s8, s4)" in out
    res = merge_experts(MergeConfig(labels=ls / "labels.jsonl", reviewed=ls / "clean.csv", out=tmp_path / "m",
                                    on_conflict="majority"))
    assert res.kind == "CSV" and res.conflicts == ["s6"] and res.unannotated == ["s8", "s4"]


@pytest.mark.parametrize("name", ["renamed.json", "renamed.min.json", "renamed.csv"])
def test_choice_is_read_by_control_name(ls, tmp_path, cli, capsys, name):
    # the project names its control `stance`, with an extra `quality` control before it. Before: JSON read
    # the first Choices result ('unsure' is not a label), JSON_MIN merged 0 labels with exit 0
    assert cli("merge-experts", "--labels", ls / "labels.jsonl", "--reviewed", ls / name,
               "--out", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip()
    task = _task_id(ls, "s7", "renamed.json")
    assert "\n" not in err and f"task {task}, annotation" in err and "(item s7)" in err
    assert "no choice under control 'label'" in err and "quality, stance" in err and "--control NAME" in err
    assert _merge(ls, tmp_path, name, control="stance") == {"s7": "NONE", "s6": "AGAINST", "s3": "FAVOR"}


@pytest.mark.parametrize("name", ["multi.json", "multi.min.json", "multi.csv"])
def test_several_choices_are_an_error(ls, tmp_path, name):
    # before: JSON said "annotation 49: 2 choices" (no file, task or item); JSON_MIN dropped it silently
    task = _task_id(ls, "s6", "multi.json")
    with pytest.raises(DataError, match=rf"{name}(:\d+)?: task {task}, annotation \d+ \(item s6\): 2 choices "
                                        r"\(AGAINST, FAVOR\) under control 'label'"):
        _merge(ls, tmp_path, name)


def test_malformed_result_is_one_line(ls, tmp_path, cli, capsys):
    # a choices result whose value is a string: before, an AttributeError traceback (JSON) or silently
    # dropped (JSON_MIN, where Label Studio leaves it out)
    task = _task_id(ls, "s6", "malformed.json")
    assert cli("merge-experts", "--labels", ls / "labels.jsonl", "--reviewed", ls / "malformed.json",
               "--out", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert f"malformed.json: task {task}, annotation" in err and "(item s6): malformed choices result" in err
    assert cli("merge-experts", "--labels", ls / "labels.jsonl", "--reviewed", ls / "malformed.min.json",
               "--out", tmp_path / "m.jsonl") == 2
    err = capsys.readouterr().err.strip()
    assert f"task {task}, annotation" in err and "no choice under control 'label'" in err
    assert "export JSON to see it" in err
    no_list = [{"type": "choices", "from_name": "label", "value": {"choices": 3}}]
    for bad in ("a string", [["nested"]], no_list):
        tasks = json.loads((ls / "malformed.json").read_text())
        tasks[0]["annotations"][0]["result"] = bad
        (tmp_path / "bad.json").write_text(json.dumps(tasks))
        with pytest.raises(DataError, match=rf"bad.json: task {tasks[0]['id']}, annotation \d+ \(item s7\): "
                                            "malformed"):
            merge_experts(MergeConfig(labels=ls / "labels.jsonl", reviewed=tmp_path / "bad.json",
                                      out=tmp_path / "m"))


def test_import_file_and_empty_exports_are_refused(ls, tmp_path, cli, capsys):
    # before: the import file merged "0 expert labels" with exit 0, and so did an export without annotations
    cases = {"label_studio.json": "8 tasks with predictions and no 'annotations' field: this is an import "
                                  "file",
             "empty.json": "no expert labels in it (8 items: 0 skipped, 8 not annotated)",
             "empty_default.json": "an empty export (no tasks"}
    for name, message in cases.items():
        assert cli("merge-experts", "--labels", ls / "labels.jsonl", "--reviewed", ls / name,
                   "--out", tmp_path / "m.jsonl") == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and f"{name}: {message}" in err
    assert not (tmp_path / "m.jsonl").exists()


def test_sample_writes_least_confident_first_with_the_chosen_score(ls, tmp_path):
    rows = {r["id"]: r for r in read_jsonl(ls / "labels.jsonl")}
    for by in ("confidence", "margin"):
        out = tmp_path / by
        sample_experts(SampleConfig(labels=ls / "labels.jsonl", out=out, fraction=1.0, by=by))
        key = "margin_logprob" if by == "margin" else "confidence"
        tasks = json.loads((out / "label_studio.json").read_text())
        scores = [t["predictions"][0]["score"] for t in tasks]
        assert scores == sorted(scores) == [round(rows[t["data"]["item_id"]][key], 6) for t in tasks]
        with (out / "review.csv").open(encoding="utf-8", newline="") as handle:
            review = list(csv.DictReader(handle))
        assert [r["id"] for r in review] == [t["data"]["item_id"] for t in tasks]
        assert [float(r[by]) for r in review] == pytest.approx(scores)
    # the committed import file is what sample-experts writes today (so the recording matches the code)
    for name in ("label_studio.json", "label_config.xml", "review.csv"):
        assert (tmp_path / "confidence" / name).read_bytes() == (RECORDED / name).read_bytes(), name


def test_label_studio_serves_file_order_with_blind_review(ls):
    # recorded: Sequential sampling serves the file order (sample-experts: least confident first), even
    # when that is not the score order; Uncertainty sampling serves the lowest score, but only with
    # "Use predictions to prelabel tasks" on: switching it off clears the model version (then random)
    served = json.loads((ls / "sampling.json").read_text())["first_served"]
    assert served["sequential, prelabel off"] == "s7"  # the least confident item, first in the file
    assert served["sequential, prelabel off, reversed import"] == "s4"  # the most confident, first in file
    assert served["uncertainty, prelabel on, reversed import"] == "s7"
    assert served["model_version with prelabel off"] == ""


def test_bad_on_conflict_and_control(ls, tmp_path):
    paths = {"labels": ls / "labels.jsonl", "reviewed": ls / "clean.json", "out": tmp_path / "m"}
    with pytest.raises(ConfigError, match="on_conflict must be one of error, latest, majority, got 'newest'"):
        MergeConfig(**paths, on_conflict="newest")
    with pytest.raises(ConfigError, match="control"):
        MergeConfig(**paths, control=" ")
