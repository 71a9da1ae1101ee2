"""merge-experts on a multi-label file: the Label Studio round trip with a choice="multiple" project, on
exports recorded from a live Label Studio 1.23.2 (fixtures/label_studio/multilabel*, see its README), and
every bad input as one line, exit 2. With LLM2EDGE_LABEL_STUDIO_URL and LLM2EDGE_LABEL_STUDIO_TOKEN set,
every test also runs on exports recorded fresh from that server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llm2edge.records import read_jsonl

from .test_label_studio import LIVE, RECORDED, exports

FORMATS = ("multilabel.json", "multilabel.min.json", "multilabel.csv")
#: What the annotators chose (fixtures/record_label_studio.py, record_multilabel): e6 the same set twice in
#: two orders, e1 joy then joy;surprise (newest), e2 skipped, e3 and e7 not annotated.
AGREED = {"e8": ["anger", "disgust"], "e5": ["disgust"], "e6": ["fear", "surprise"],
          "e4": ["fear", "sadness"]}


@pytest.fixture(scope="module", params=["recorded", "live"] if LIVE else ["recorded"])
def mls(request, tmp_path_factory) -> Path:
    """The folder of multi-label exports: the committed recording, or one made now from a live server."""
    return exports(request, tmp_path_factory, "record_multilabel", "live_label_studio_multilabel")


def _merge(cli, tmp_path, name, *args, folder=RECORDED):
    out = tmp_path / "merged.jsonl"
    code = cli("merge-experts", "--labels", LABELS, "--reviewed", folder / name, "--out", out, *args)
    return code, ({r["id"]: r for r in read_jsonl(out)} if code == 0 else {})


#: The input every recording is made from (committed; a live recording copies it).
LABELS = RECORDED / "multilabel_labels.jsonl"


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_merges_label_sets(mls, tmp_path, cli, capsys, name):
    # the sample-experts files the project was made from are the ones written now
    assert cli("sample-experts", "--labels", LABELS, "--out", tmp_path / "s", "--fraction", "1") == 0
    for written in ("label_config.xml", "label_studio.json", "review.csv"):
        assert (tmp_path / "s" / written).read_text() == (mls / f"multilabel_{written}").read_text()
    code, rows = _merge(cli, tmp_path, name, "--on-conflict", "latest", "--label-config",
                        mls / "multilabel_label_config.xml", folder=mls)
    assert code == 0
    experts = {i: r["label"] for i, r in rows.items() if r["source"] == "expert"}
    assert experts == {**AGREED, "e1": ["joy", "surprise"]}
    llm = {r["id"]: r for r in read_jsonl(LABELS)}
    for item, row in rows.items():
        if item in experts:
            assert row["probs"] == {n: float(n in row["label"]) for n in llm[item]["probs"]}
            assert row["llm_label"] == llm[item]["label"] and row["confidence"] == 1.0
        else:
            assert row["label"] == llm[item]["label"] and row["source"] == "llm"
    summary = capsys.readouterr().err
    assert "1 changed" in summary and "decided by latest (e1)" in summary  # e4 gained fear
    report = json.loads((tmp_path / "merged.report.json").read_text())
    assert report["expert_labels"] == 5 and report["changed"] == 1


@pytest.mark.parametrize("name", FORMATS)
def test_disagreeing_sets_error_and_majority(mls, tmp_path, cli, capsys, name):
    # e6's two annotations chose the same set in another order: they agree; e1's differ
    assert _merge(cli, tmp_path, name, folder=mls)[0] == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "item e1: " in err and "joy;surprise" in err and "e6" not in err
    assert _merge(cli, tmp_path, name, "--on-conflict", "majority", folder=mls)[0] == 2  # a tie


def test_single_choice_control_for_a_multi_label_file(mls, tmp_path, cli, capsys):
    # the export of a single-radio project looks like the multiple one (a bare string per single choice):
    # only the project's config tells; with it the merge stops, naming the file, control and value
    single = json.loads((mls / "multilabel_single.min.json").read_text())
    assert [r["label"] for r in single if r.get("label")] == ["anger", "disgust"]
    config = mls / "multilabel_single_config.xml"
    assert _merge(cli, tmp_path, "multilabel_single.min.json", "--label-config", config, folder=mls)[0] == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(config) in err and 'choice="single-radio"' in err
    assert "multi-label" in err
    # and the reverse: a multiple-choice config for a single-label file
    assert cli("merge-experts", "--labels", RECORDED / "labels.jsonl", "--reviewed", RECORDED / "clean.json",
               "--out", tmp_path / "x.jsonl", "--label-config", RECORDED / "multilabel_label_config.xml") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'choice="multiple"' in err and "single-label" in err


def _task(folder: Path, item: str) -> str:
    """Label Studio's task id of an item in the recorded bad multi-label export (JSON)."""
    tasks = json.loads((folder / "multilabel_bad.json").read_text())
    return str(next(t["id"] for t in tasks if t["data"]["item_id"] == item))


@pytest.mark.parametrize("suffix", [".json", ".min.json", ".csv"])
def test_repeated_and_unknown_labels_name_the_task(mls, tmp_path, cli, capsys, suffix):
    name = f"multilabel_bad{suffix}"
    assert _merge(cli, tmp_path, name, folder=mls)[0] == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(mls / name) in err
    assert f"task {_task(mls, 'e8')}" in err and "'anger' given twice" in err
    # without e8's annotation, e5's unknown label is the first bad one
    copy = tmp_path / f"without_e8{suffix}"
    if suffix == ".csv":
        lines = (mls / name).read_text().splitlines(keepends=True)
        copy.write_text("".join(line for line in lines if '"e8"' not in line))
    elif suffix == ".json":
        tasks = [t for t in json.loads((mls / name).read_text()) if t["data"]["item_id"] != "e8"]
        copy.write_text(json.dumps(tasks))
    else:
        records = json.loads((mls / name).read_text())
        copy.write_text(json.dumps([t for t in records if t["item_id"] != "e8"]))
    assert cli("merge-experts", "--labels", LABELS, "--reviewed", copy, "--out", tmp_path / "y.jsonl") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(copy) in err
    assert f"task {_task(mls, 'e5')}" in err
    assert "unknown label 'rage'" in err


def test_review_csv_sets(tmp_path, cli, capsys):
    folder = tmp_path / "s"
    assert cli("sample-experts", "--labels", LABELS, "--out", folder, "--fraction", "0.5") == 0
    review = (folder / "review.csv").read_text().splitlines()
    first = review[1].split(",")[0]
    review[1] = review[1] + "surprise;joy"  # the annotator's set, in any order
    (folder / "review.csv").write_text("\n".join(review) + "\n")
    assert cli("merge-experts", "--labels", LABELS, "--reviewed", folder, "--out", tmp_path / "m.jsonl") == 0
    merged = {r["id"]: r for r in read_jsonl(tmp_path / "m.jsonl")}
    assert merged[first]["label"] == ["joy", "surprise"] and merged[first]["source"] == "expert"
    for bad, message in (("joy;joy", "'joy' given twice"), ("joy;rage", "unknown label 'rage'"),
                         (";", "empty name in label list")):
        review[1] = review[1].rsplit(",", 1)[0] + "," + bad
        (folder / "review.csv").write_text("\n".join(review) + "\n")
        capsys.readouterr()
        assert cli("merge-experts", "--labels", LABELS, "--reviewed", folder, "--out",
                   tmp_path / "b.jsonl") == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "review.csv:2" in err and message in err, err


def test_simulated_experts_from_a_gold_file(mls, tmp_path, cli, capsys):
    gold = tmp_path / "gold.csv"
    llm = read_jsonl(LABELS)
    gold.write_text("id,text,label\n" + "".join(
        f"{r['id']},\"{r['text']}\",{'neutral' if r['id'] == 'e2' else ';'.join(r['label'])}\n" for r in llm))
    shutil.copy(mls / "multilabel.json", tmp_path / "export.json")
    assert cli("merge-experts", "--labels", LABELS, "--reviewed", tmp_path / "export.json", "--out",
               tmp_path / "m.jsonl", "--on-conflict", "latest", "--simulate-from", gold,
               "--gold-id-col", "id") == 0
    merged = {r["id"]: r for r in read_jsonl(tmp_path / "m.jsonl")}
    # skipped e2 and unannotated e3, e7 filled from gold (e2's gold set differs from the LLM's)
    assert merged["e2"]["label"] == ["neutral"] and merged["e3"]["source"] == "expert"
    report = json.loads((tmp_path / "m.report.json").read_text())
    assert report["simulated"] == 3 and report["error_rates"]["errors"] == 1
