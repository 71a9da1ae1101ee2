"""`llm2edge import-labels` for multi-label tasks: GoEmotions (ekman) gold sets as `a;b` cells, JSONL
lists, another separator, per-label probability columns that need not sum to 1, and every bad input as
one line naming file, line and value (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm2edge.hub.label.task import load_task
from llm2edge.labelsets import set_confidence
from llm2edge.records import iter_rows, read_jsonl, stable_id
from tests.helpers import write_csv, write_jsonl

TASK = load_task("emotions")
NAMES = TASK.label_names


@pytest.fixture(scope="module")
def gold(shared_data: Path) -> list[dict[str, str]]:
    """The first 300 GoEmotions test rows (text, labels: `;`-joined sets, some of several labels)."""
    rows = [row for _, (_, row) in zip(range(301), iter_rows(shared_data / "goemotions_ekman" / "test.csv"))]
    return rows[1:]  # (the first row iter_rows yields is the header)


def test_gold_sets_round_trip_in_task_order(gold, tmp_path: Path, cli, capsys) -> None:
    src = tmp_path / "gold.csv"
    write_csv(src, [{"text": r["text"], "labels": ";".join(reversed(r["labels"].split(";")))} for r in gold])
    out = tmp_path / "labels.jsonl"
    args = ("--task", "emotions", "--label-col", "labels")
    assert cli("import-labels", "--data", src, "--out", out, *args) == 0
    assert "imported 300 rows (answer probabilities)" in capsys.readouterr().out
    rows = read_jsonl(out)
    assert any(len(r["label"]) > 1 for r in rows)
    for n, (row, raw) in enumerate(zip(rows, gold)):
        want = [x for x in NAMES if x in raw["labels"].split(";")]
        assert row["label"] == want and row["id"] == stable_id(n, raw["text"])  # task order, label's ids
        assert row["probs"] == {x: float(x in want) for x in NAMES} and row["confidence"] is None
    # the written sets, joined again, import to the same file
    again = tmp_path / "again.csv"
    write_csv(again, [{"text": r["text"], "labels": ";".join(r["label"])} for r in rows])
    assert cli("import-labels", "--data", again, "--out", tmp_path / "again.jsonl", *args) == 0
    drop = ("raw",)  # the answer as written: reversed the first time
    assert [{k: v for k, v in r.items() if k not in drop} for r in read_jsonl(tmp_path / "again.jsonl")] == [
        {k: v for k, v in r.items() if k not in drop} for r in rows]


def test_jsonl_lists_another_separator_case_and_map(tmp_path: Path, cli) -> None:
    data = write_jsonl(tmp_path / "a.jsonl", [{"text": "one", "label": ["Sports", "tech"]},
                                               {"text": "two", "label": "politics"}])
    out = tmp_path / "a_labels.jsonl"
    assert cli("import-labels", "--data", data, "--out", out, "--labels", "tech,sports,politics",
               "--multi-label") == 0
    assert [r["label"] for r in read_jsonl(out)] == [["tech", "sports"], ["politics"]]
    data = write_csv(tmp_path / "b.csv", [{"text": "one", "label": "T | s"}, {"text": "two", "label": "P"}])
    assert cli("import-labels", "--data", data, "--out", out, "--labels", "tech,sports,politics",
               "--multi-label", "--label-sep", "|", "--map", "T=tech,s=sports,P=politics") == 0
    assert [r["label"] for r in read_jsonl(out)] == [["tech", "sports"], ["politics"]]


def test_probability_columns_are_per_label_and_need_not_sum_to_one(tmp_path: Path, cli, capsys) -> None:
    rows = [{"text": "a", "label": "", **{f"p_{x}": 0.9 if x in ("joy", "surprise") else 0.2 for x in NAMES}},
            {"text": "b", "label": "", **{f"p_{x}": 0.1 for x in NAMES}},
            {"text": "c", "label": "fear", **{f"p_{x}": 0.3 for x in NAMES}}]
    out = tmp_path / "labels.jsonl"
    assert cli("import-labels", "--data", write_csv(tmp_path / "p.csv", rows), "--out", out, "--task",
               "emotions", "--prob-prefix", "p_") == 0
    assert "imported 3 rows (given probabilities)" in capsys.readouterr().out
    got = read_jsonl(out)
    assert [r["label"] for r in got] == [["joy", "surprise"], ["anger"], ["fear"]]  # >= 0.5; else the top
    for row, src in zip(got, rows):
        probs = [float(src[f"p_{x}"]) for x in NAMES]
        assert row["probs"] == dict(zip(NAMES, probs)) and row["prob_source"] == "given"
        assert row["confidence"] == pytest.approx(float(set_confidence([probs])[0]))
    assert abs(sum(got[0]["probs"].values()) - 1.0) > 0.5


def test_an_empty_set_where_the_task_allows_none(tmp_path: Path, cli) -> None:
    task = tmp_path / "topics.toml"
    task.write_text('name = "topics"\ninstruction = "Topics?"\nlabels = ["a", "b"]\nmulti_label = true\n'
                    "allow_none = true\n", encoding="utf-8")
    data = write_jsonl(tmp_path / "d.jsonl", [{"text": "x", "label": []}, {"text": "y", "label": "b;a"}])
    out = tmp_path / "labels.jsonl"
    assert cli("import-labels", "--data", data, "--out", out, "--task", task) == 0
    assert [(r["label"], r["probs"]) for r in read_jsonl(out)] == [([], {"a": 0.0, "b": 0.0}),
                                                                    (["a", "b"], {"a": 1.0, "b": 1.0})]


@pytest.mark.parametrize("name, rows, args, message", [
    ("unknown.csv", [{"text": "x", "label": "joy"}, {"text": "y", "label": "joy;joyful"}],
     ("--task", "emotions"),
     ":3: column 'label': unknown label 'joyful' in 'joy;joyful'"),
    ("twice.csv", [{"text": "x", "label": "joy;fear;joy"}], ("--task", "emotions"),
     ":2: column 'label': label 'joy' given twice in 'joy;fear;joy'"),
    ("blank.csv", [{"text": "x", "label": "joy"}, {"text": "y", "label": ""}], ("--task", "emotions"),
     ":3: column 'label': empty label list, and the task does not allow none"),
    ("empty.jsonl", [{"text": "x", "label": []}], ("--task", "emotions"),
     ":1: column 'label': empty label list, and the task does not allow none"),
    ("gap.csv", [{"text": "x", "label": "joy;;fear"}], ("--task", "emotions"),
     ":2: column 'label': empty name in label list 'joy;;fear'"),
    ("single.csv", [{"text": "x", "label": "a"}, {"text": "y", "label": "a;b"}], ("--labels", "a,b,c"),
     ":3: column 'label': label 'a;b' is a list of labels, but the task is single-label"),
    ("single.jsonl", [{"text": "y", "label": ["a", "b"]}], ("--labels", "a,b,c"),
     ":1: label ['a', 'b'] in column 'label' is a list of labels, but the task is single-label"),
    ("over.csv", [{"text": "x", "label": "", "p_a": 1.5, "p_b": 0.2}], ("--labels", "a,b", "--multi-label",
                                                                          "--prob-prefix", "p_"),
     ":2: probability column 'p_a' holds 1.5: a label's probability must be in [0, 1]"),
])
def test_bad_input_is_one_line_naming_file_row_and_value(tmp_path: Path, cli, capsys, name, rows, args,
                                                         message) -> None:
    path = tmp_path / name
    (write_jsonl if name.endswith(".jsonl") else write_csv)(path, rows)
    out = tmp_path / "labels.jsonl"
    assert cli("import-labels", "--data", path, "--out", out, *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"llm2edge: error: {path}{message}"), err
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (("--task", "emotions", "--multi-label"), "--multi-label goes with --labels"),
    (("--labels", "a,b", "--multi-label", "--label-sep", ","), "--label-sep must be a separator other than"),
])
def test_bad_options_are_one_line(tmp_path: Path, cli, capsys, args, message) -> None:
    data = write_csv(tmp_path / "d.csv", [{"text": "x", "label": "a"}])
    assert cli("import-labels", "--data", data, "--out", tmp_path / "l.jsonl", *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
