"""Reading labels.jsonl for curation: multi-label files told by the JSON type of `label`, bad rows named."""

from __future__ import annotations

import json

import pytest

from llm2edge.hub.curate.rows import load_labels


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_multi_label_file_is_read_as_sets_in_label_order(emotion_labels):
    path, rows, labels, _ = emotion_labels
    data = load_labels(path)
    assert data.multi_label and data.labels == tuple(labels)
    assert [r["label"] for r in data.rows] == [r["label"] for r in rows]
    assert data.label_counts() == {name: sum(name in r["label"] for r in rows) for name in labels}


def test_set_is_put_in_label_order(emotion_labels, tmp_path):
    _, rows, labels, _ = emotion_labels
    first = dict(rows[0], label=["surprise", "joy"], probs={**rows[0]["probs"], "joy": 0.9, "surprise": 0.8})
    data = load_labels(_write(tmp_path / "l.jsonl", [first, *rows[1:]]))
    assert data.rows[0]["label"] == ["joy", "surprise"]


BAD = [
    ("mixed", lambda r: dict(r, label="joy"),
     "row 2 (id g1): label \"joy\" is a string, but row 1's is a list"),
    ("repeated", lambda r: dict(r, label=["joy", "joy"]), "row 2 (id g1): label 'joy' given twice"),
    ("unknown", lambda r: dict(r, label=["joy", "rage"]),
     "row 2 (id g1): label 'rage' is missing from its own"),
    ("probability", lambda r: dict(r, probs={**r["probs"], "joy": 1.7}),
     "row 2 (id g1): probs['joy'] = 1.7"),
    ("not a name", lambda r: dict(r, label=["joy", 3]), "row 2 (id g1): label list holds 3"),
]


@pytest.mark.parametrize("case,change,message", BAD, ids=[b[0] for b in BAD])
def test_bad_rows_are_one_line_exit_2(emotion_labels, tmp_path, cli, capsys, case, change, message):
    _, rows, _, _ = emotion_labels
    path = _write(tmp_path / "bad.jsonl", [rows[0], change(rows[1]), *rows[2:]])
    capsys.readouterr()
    for command in (["curate", "--probs", "llm", "--out", tmp_path / "c"],
                    ["sample-experts", "--out", tmp_path / "s"],
                    ["soft-labels", "--out", tmp_path / "soft.jsonl"]):
        assert cli(command[0], "--labels", path, *command[1:]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and message in err, err
