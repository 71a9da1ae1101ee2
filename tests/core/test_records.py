"""llm2edge.records: CSV/JSONL/Parquet/TXT streams with errors that name file and line."""

from __future__ import annotations

import csv
import io

import pytest

from llm2edge.errors import DataError
from llm2edge.records import (
    Record,
    chunked,
    detect_format,
    iter_records,
    read_jsonl,
    read_records,
    stable_id,
    write_jsonl_line,
)


def test_csv_with_bom_and_crlf(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufefftext,label\r\nhello,pos\r\nworld,neg\r\n".encode())
    recs = read_records(p, label_col="label", require_label=True)
    assert [(r.text, r.label) for r in recs] == [("hello", "pos"), ("world", "neg")]


def test_multiline_quoted_fields_keep_text_and_start_line(tmp_path):
    p = tmp_path / "multi.csv"
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label"])
        w.writerow(["a", "line one\nline two, with comma\nline \"three\"", "x"])
        w.writerow(["b", "single", "y"])
    recs = read_records(p, label_col="label", id_col="id")
    assert recs[0].text == "line one\nline two, with comma\nline \"three\""
    assert [(r.id, r.line) for r in recs] == [("a", 2), ("b", 5)]


#: Malformed files: (name, bytes, the error naming file and line).
MALFORMED = [
    ("bad.csv", b"text,label\nok,x\ntoo,many,fields\n", r"bad\.csv:3: expected 2 fields, found 3"),
    ("latin.csv", b"text\nfine\ncaf\xe9\n", r"latin\.csv:3: not valid UTF-8"),
    ("bad.jsonl", b'{"text": "ok"}\n{"text": \n', r"bad\.jsonl:2: not valid JSON"),
    ("bad.jsonl", b'{"text": "ok"}\n["a list"]\n', r"bad\.jsonl:2: expected a JSON object"),
    ("quote.csv", b'text\nfirst\n"second\nthird\nfourth\n',
     r"quote\.csv:3: a quoted field opened in this row is never closed"),
    ("quote.csv", b'text,label\nok,x\n"a" b,y\n', r"quote\.csv:3: malformed CSV"),
    ("dup.csv", b"text,text,label\na,b,x\n", r"dup\.csv:1: the header names column 'text' twice"),
    ("dup.jsonl", b'{"text": "a"}\n{"text": "a", "text": "b"}\n',
     r"dup\.jsonl:2: the object names key 'text' twice"),
]


@pytest.mark.parametrize(("name", "content", "error"), MALFORMED)
def test_malformed_files_name_file_and_line(tmp_path, name, content, error):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(DataError, match=error):
        read_records(p)


def test_missing_column_lists_the_columns(tmp_path):
    p = tmp_path / "cols.csv"
    p.write_text("body,label\nhello,x\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"cols\.csv: missing column\(s\) text \(columns: body, label\)"):
        read_records(p)
    with pytest.raises(DataError, match=r"missing column\(s\) target"):
        read_records(p, text_col="body", fields=["target"])


def test_empty_text_and_label_errors(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("text,label\nhello,x\n   ,y\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.csv:3: empty text in column 'text'"):
        read_records(p)
    assert [r.text for r in read_records(p, allow_empty=True)] == ["hello", "   "]
    q = tmp_path / "nolabel.csv"
    q.write_text("text,label\nhello,\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"nolabel\.csv:2: empty label in column 'label'"):
        read_records(q, label_col="label", require_label=True)


def test_stable_ids_are_deterministic_and_distinct(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("text\nsame\nsame\nother\n", encoding="utf-8")
    first = [r.id for r in read_records(p)]
    assert first == [r.id for r in read_records(p)]
    assert len(set(first)) == 3  # same text on two rows still gets two ids
    assert first[0] == stable_id(0, "same")
    assert stable_id(0, "a") != stable_id(0, "b")


def test_given_ids_and_extra_fields(tmp_path):
    p = tmp_path / "s.jsonl"
    p.write_text('{"id": 7, "text": "hi", "target": "cats", "label": "favor"}\n\n'
                 '{"id": 8, "text": "yo", "target": "dogs", "label": "against"}\n', encoding="utf-8")
    recs = read_records(p, id_col="id", fields=["target"], label_col="label")
    assert recs == [Record("7", "hi", "favor", {"target": "cats"}, 1),
                    Record("8", "yo", "against", {"target": "dogs"}, 3)]


def test_read_jsonl_skips_a_torn_last_line_only(tmp_path):
    p = tmp_path / "labels.jsonl"
    p.write_bytes(b'{"id": "a"}\n{"id": "b"}\n{"id": "c", "lab')
    assert read_jsonl(p) == [{"id": "a"}, {"id": "b"}]
    p.write_bytes(b'{"id": "a"}\n{"id": "b\n{"id": "c"}\n')
    with pytest.raises(DataError, match=r"labels\.jsonl:2: not a valid JSON line"):
        read_jsonl(p)


def test_write_jsonl_line_round_trip(tmp_path):
    p = tmp_path / "out.jsonl"
    with p.open("w", encoding="utf-8") as f:
        write_jsonl_line(f, {"id": "1", "text": "naïve café 🙂"})
        write_jsonl_line(f, {"id": "2", "probs": {"a": 0.5}})
    assert "naïve" in p.read_text(encoding="utf-8")  # not \\u-escaped
    assert read_jsonl(p) == [{"id": "1", "text": "naïve café 🙂"}, {"id": "2", "probs": {"a": 0.5}}]


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(pa.table({"text": ["a", "b", "c"], "label": ["x", "y", "x"], "n": [1, 2, 3]}), p)
    recs = read_records(p, label_col="label", id_col="n")
    assert [(r.id, r.text, r.label, r.line) for r in recs] == [("1", "a", "x", 1), ("2", "b", "y", 2),
                                                               ("3", "c", "x", 3)]
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: not a readable Parquet file"):
        read_records(tmp_path / "bad.parquet")


def test_txt_and_stdin(tmp_path, monkeypatch):
    p = tmp_path / "t.txt"
    p.write_text("one\ntwo\r\nthree", encoding="utf-8")
    assert [r.text for r in read_records(p)] == ["one", "two", "three"]

    class Stdin(io.TextIOWrapper):
        pass

    monkeypatch.setattr("sys.stdin", Stdin(io.BytesIO(b"x\ny\n")))
    assert [r.text for r in read_records("-")] == ["x", "y"]


def test_tsv_and_formats(tmp_path):
    p = tmp_path / "t.tsv"
    p.write_text("text\tlabel\nhello, world\tx\n", encoding="utf-8")
    assert read_records(p, label_col="label")[0].text == "hello, world"
    assert detect_format("a.NDJSON") == "jsonl" and detect_format("-") == "txt"
    assert detect_format("x.data", "csv") == "csv"
    with pytest.raises(DataError, match="cannot tell the format"):
        detect_format("x.xlsx")
    with pytest.raises(DataError, match="unknown format 'xml'"):
        detect_format("x.csv", "xml")
    with pytest.raises(DataError, match="no such file"):
        read_records(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        read_records(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("text\n", encoding="utf-8")
    with pytest.raises(DataError, match="no rows"):
        read_records(tmp_path / "header.csv")


def test_streaming_is_lazy(tmp_path):
    p = tmp_path / "big.txt"
    p.write_bytes(b"first\nsecond\nbad \xff byte\n")
    it = iter_records(p)
    assert next(it).text == "first"  # a later bad line does not fail the first records
    with pytest.raises(DataError, match=r"big\.txt:3"):
        list(it)
    assert [r.text for r in next(chunked(iter_records(p), 2))] == ["first", "second"]


# -- bad input is an error naming file, line and column, never a silent wrong (issue 14) -------------------
def test_cr_only_line_endings_are_lines(tmp_path):
    p = tmp_path / "mac.csv"
    p.write_bytes(b'id,text\r1,hello\r2,"two\rlines"\r3,world\r')
    recs = read_records(p, id_col="id")
    assert [(r.id, r.text, r.line) for r in recs] == [("1", "hello", 2), ("2", "two\rlines", 3),
                                                      ("3", "world", 5)]
    t = tmp_path / "mac.txt"
    t.write_bytes(b"one\rtwo\r\nthree\n")
    assert [r.text for r in read_records(t)] == ["one", "two", "three"]


@pytest.mark.parametrize("value, kind", [(5, "a number"), (1.5, "a number"), (["a"], "a list"),
                                         ({"a": 1}, "an object"), (True, "a boolean")])
def test_jsonl_text_must_be_a_string(tmp_path, value, kind):
    import json

    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"text": "fine"}) + "\n" + json.dumps({"text": value}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"t\.jsonl:2: column 'text' holds {kind}, not a string"):
        read_records(p)


def test_jsonl_labels_and_ids_may_be_integers_not_floats(tmp_path):
    p = tmp_path / "ints.jsonl"
    p.write_text('{"id": 7, "text": "a", "label": 1}\n', encoding="utf-8")
    assert [(r.id, r.label) for r in read_records(p, id_col="id", label_col="label")] == [("7", "1")]
    p.write_text('{"id": 7.0, "text": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"ints\.jsonl:1: column 'id' holds a number, not a string or an "
                                        r"integer"):
        read_records(p, id_col="id")


@pytest.mark.parametrize("column, kind", [([1, 2], "a number"), ([b"a", b"b"], "bytes"),
                                          ([["a"], ["b"]], "a list")])
def test_parquet_text_column_of_another_type_names_the_column(tmp_path, column, kind):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "typed.parquet"
    pq.write_table(pa.table({"text": column}), p)
    with pytest.raises(DataError, match=rf"typed\.parquet:1: column 'text' holds {kind}"):
        read_records(p)


def test_parquet_duplicate_column_names(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a"]), pa.array(["b"])], names=["text", "text"]), p)
    with pytest.raises(DataError, match=r"dup\.parquet: the file has two columns named 'text'"):
        read_records(p)


@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_id_is_an_error_not_replaced_or_kept(tmp_path, blank):
    p = tmp_path / "ids.csv"
    p.write_text(f"id,text\na,first\n{blank},second\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"ids\.csv:3: blank id in column 'id'"):
        read_records(p, id_col="id")
    j = tmp_path / "ids.jsonl"
    j.write_text('{"id": "a", "text": "first"}\n{"id": null, "text": "second"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"ids\.jsonl:2: blank id in column 'id'"):
        read_records(j, id_col="id")
    assert [r.id for r in read_records(p)] == [stable_id(0, "first"), stable_id(1, "second")]  # no id column


def test_closed_stdin_is_an_error(monkeypatch):
    monkeypatch.setattr("sys.stdin", None)
    with pytest.raises(DataError, match="standard input is closed"):
        read_records("-")
