"""`llm2edge import-labels` on real recorded LLM answers (../shared/recorded_teacher: gpt-3.5-turbo,
FLAN answers joined to gold), with renamed, unknown and empty labels and probability columns."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llm2edge.errors import ConfigError, DataError
from llm2edge.hub.curate.rows import load_labels
from llm2edge.hub.label.importer import PROB_TOLERANCE, ImportConfig, import_labels
from llm2edge.records import iter_rows, read_jsonl, stable_id
from tests.helpers import write_csv

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _rows(path: Path) -> list[dict[str, str]]:
    return [row for _, row in iter_rows(path)]


def _summary(recorded: Path, dataset: str, model: str) -> dict[str, str]:
    return next(r for r in _rows(recorded / "summary.csv") if r["dataset"] == dataset and r["model"] == model)


def test_recorded_answers_become_one_hot_rows_with_label_ids(recorded, tmp_path):
    src = recorded / "conv_go_awry__chatgpt.csv"
    out = tmp_path / "labels.jsonl"
    summary = import_labels(ImportConfig(data=src, out=out, labels="derailed,not_derailed",
                                         label_col="llm_label", model_name="gpt-3.5-turbo"))
    expected = json.loads(_summary(recorded, "conv_go_awry", "chatgpt")["llm_dist"])
    assert summary.rows == 500 and summary.skipped_empty == 0 and summary.distribution == expected
    assert summary.matched == {"exact": 500, "case": 0, "map": 0} and summary.prob_source == "answer"
    rows = read_jsonl(out)
    src_rows = _rows(src)
    for n, (row, raw) in enumerate(zip(rows, src_rows)):
        assert row["id"] == stable_id(n, raw["text"])  # the id `label` and `evaluate` derive
        assert row["label"] == raw["llm_label"] and row["probs"][row["label"]] == 1.0
        assert sum(row["probs"].values()) == 1.0 and row["prob_source"] == "answer"
        assert row["confidence"] is None and row["model"] == "gpt-3.5-turbo" and row["source"] == "llm"
    assert len({r["key"] for r in rows}) == 500
    assert load_labels(out).labels == ("derailed", "not_derailed")  # curation reads it


def test_imported_labels_join_evaluate_and_merge_experts(recorded, tmp_path, cli, capsys):
    src = recorded / "cmv_persuasion__flan-ul2.csv"
    labels = tmp_path / "labels.jsonl"
    assert cli("import-labels", "--data", src, "--out", labels, "--labels", "persuasive,not_persuasive",
               "--label-col", "llm_label") == 0
    capsys.readouterr()
    # evaluate joins the imported ids with the gold file's derived ids: the teacher's recorded accuracy
    assert cli("evaluate", "--pred", labels, "--gold", src, "--gold-col", "gold_label", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["joined_by"].startswith("id") and report["n"] == 434
    assert report["accuracy"] == pytest.approx(float(_summary(recorded, "cmv_persuasion", "flan-ul2")["acc"]),
                                               abs=1e-4)
    # merge-experts --simulate-from joins by the same ids and fills the sampled items from gold
    assert cli("sample-experts", "--labels", labels, "--out", tmp_path / "review", "--strategy", "random",
               "--fraction", "0.1") == 0
    merged = tmp_path / "merged.jsonl"
    assert cli("merge-experts", "--labels", labels, "--reviewed", tmp_path / "review", "--out", merged,
               "--simulate-from", src, "--gold-label-col", "gold_label") == 0
    gold = {stable_id(n, r["text"]): r["gold_label"] for n, r in enumerate(_rows(src))}
    experts = [r for r in read_jsonl(merged) if r["source"] == "expert"]
    assert len(experts) == 43 and all(r["label"] == gold[r["id"]] for r in experts)


def test_case_and_map_matching_with_one_summary_line(recorded, tmp_path):
    rows = _rows(recorded / "media_ideology__chatgpt.csv")[:60]
    renamed = {"left": "L", "center": "CENTER", "right": "right"}  # mapped, case-insensitive, exact
    data = write_csv(tmp_path / "answers.csv", [{"text": r["text"], "answer": renamed[r["llm_label"]]}
                                                 for r in rows])
    summary = import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels="left,center,right",
                                         label_col="answer", map="L=left"))
    counts = {k: sum(r["llm_label"] == k for r in rows) for k in renamed}
    assert summary.matched == {"exact": counts["right"], "case": counts["center"], "map": counts["left"]}
    assert summary.renamed == {"CENTER -> center": counts["center"], "L -> left": counts["left"]}
    line = summary.text().splitlines()[1]
    assert line == (f"labels matched: {counts['right']} exactly, {counts['center']} ignoring case, "
                    f"{counts['left']} through --map: " + ", ".join(
                        f"{k} ({v})" for k, v in sorted(summary.renamed.items(), key=lambda kv: -kv[1])))
    assert [r["label"] for r in read_jsonl(tmp_path / "l.jsonl")] == [r["llm_label"] for r in rows]


def test_unknown_label_is_one_line_naming_file_row_and_value(recorded, tmp_path, cli, capsys):
    rows = _rows(recorded / "tempowic__chatgpt.csv")[:20]
    rows[6]["llm_label"] = "Maybe"
    data = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError, match=r"bad\.csv:\d+: label 'Maybe' in column 'llm_label' is not one of"):
        import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", task=None, labels="same,different",
                                   label_col="llm_label"))
    code = cli("import-labels", "--data", data, "--out", tmp_path / "l.jsonl", "--labels", "same,different",
               "--label-col", "llm_label")
    err = capsys.readouterr().err
    line = next(n for n, (_, r) in enumerate(iter_rows(data)) if r["llm_label"] == "Maybe")
    start = [ln for ln, _ in iter_rows(data)][line]
    assert code == 2 and err.count("\n") == 1
    assert f"bad.csv:{start}: label 'Maybe'" in err and "--map 'Maybe=LABEL'" in err
    assert not (tmp_path / "l.jsonl").exists()  # nothing half-written


def test_empty_labels_are_skipped_and_counted_ids_stay_by_row(recorded, tmp_path):
    rows = _rows(recorded / "emotion_dair__flan-t5-xxl.csv")[:30]
    for i in (0, 7, 8):
        rows[i]["llm_label"] = "  "
    data = write_csv(tmp_path / "gaps.csv", rows)
    summary = import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels=",".join(
        ["anger", "fear", "joy", "love", "sadness", "surprise"]), label_col="llm_label"))
    assert summary.rows == 27 and summary.skipped_empty == 3
    assert "skipped 3 with an empty label" in summary.text()
    ids = [r["id"] for r in read_jsonl(tmp_path / "l.jsonl")]
    assert ids == [stable_id(n, r["text"]) for n, r in enumerate(rows) if n not in (0, 7, 8)]


def _with_probs(recorded: Path, tmp_path: Path, n: int = 40) -> tuple[Path, list[dict[str, object]]]:
    """Real recorded answers with probability columns: 0.8 on the answer, the rest spread."""
    rows = []
    for r in _rows(recorded / "media_ideology__flan-ul2.csv")[:n]:
        probs = {lab: (0.8 if lab == r["llm_label"] else 0.1) for lab in ("left", "center", "right")}
        rows.append({"text": r["text"], "label": r["llm_label"], **{f"p_{k}": v for k, v in probs.items()}})
    return write_csv(tmp_path / "probs.csv", rows), rows


def test_probability_columns_give_checked_probs(recorded, tmp_path):
    data, rows = _with_probs(recorded, tmp_path)
    summary = import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", task=None,
                                         labels="left,center,right", prob_prefix="p_"))
    assert summary.prob_source == "given"
    out = read_jsonl(tmp_path / "l.jsonl")
    assert all(r["prob_source"] == "given" for r in out)
    assert out[0]["probs"] == pytest.approx({k: rows[0][f"p_{k}"] for k in ("left", "center", "right")})
    assert out[0]["confidence"] == pytest.approx(0.7)


@pytest.mark.parametrize("probs, message", [
    ((0.5, 0.4, 0.3), r"the probabilities sum to 1\.2, not 1 \(tolerance 0\.001\)"),
    ((0.6, 0.6, -0.2), r"'p_right' holds '-0\.2': probabilities must be finite and non-negative"),
    (("high", 0.5, 0.5), r"'p_left' holds 'high', not a number"),
])
def test_probability_columns_that_are_not_a_distribution_name_the_row(recorded, tmp_path, probs, message):
    data, rows = _with_probs(recorded, tmp_path)
    rows[5].update(zip(("p_left", "p_center", "p_right"), probs))
    write_csv(data, rows)
    line = [ln for ln, _ in iter_rows(data)][5]
    with pytest.raises(DataError, match=rf"probs\.csv:{line}: probability column .*{message}|"
                                        rf"probs\.csv:{line}: {message}"):
        import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels="left,center,right",
                                   prob_prefix="p_"))


def test_probabilities_within_the_tolerance_are_renormalised(recorded, tmp_path):
    data, rows = _with_probs(recorded, tmp_path, n=5)
    rows[0]["p_left"] = float(rows[0]["p_left"]) + PROB_TOLERANCE / 2
    write_csv(data, rows)
    import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels="left,center,right",
                               prob_prefix="p_"))
    assert sum(read_jsonl(tmp_path / "l.jsonl")[0]["probs"].values()) == pytest.approx(1.0, abs=1e-12)


def test_probability_columns_must_be_one_per_label(recorded, tmp_path):
    data, rows = _with_probs(recorded, tmp_path, n=5)
    with pytest.raises(DataError, match=r"missing probability column\(s\) p_neutral"):
        import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels="left,center,right,neutral",
                                   prob_prefix="p_"))
    write_csv(data, [{**r, "p_other": 0.0} for r in rows])
    with pytest.raises(DataError, match=r"probability column 'p_other' names no label"):
        import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels="left,center,right",
                                   prob_prefix="p_"))


def test_probabilities_without_a_label_column_take_the_top_label(recorded, tmp_path):
    data, rows = _with_probs(recorded, tmp_path, n=12)
    write_csv(data, [{k: v for k, v in r.items() if k != "label"} for r in rows])
    import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels="left,center,right",
                               prob_prefix="p_"))
    assert [r["label"] for r in read_jsonl(tmp_path / "l.jsonl")] == [r["label"] for r in rows]


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of --task"),
    ({"task": "stance", "labels": "a,b"}, "exactly one of --task"),
    ({"labels": "a"}, "at least two labels"),
    ({"labels": "a,b,a"}, "'a' is given twice"),
    ({"labels": "a,b", "out": "labels.csv"}, "must end in .jsonl"),
    ({"labels": "a,b", "prob_prefix": " "}, "--prob-prefix must not be empty"),
])
def test_bad_arguments_are_config_errors(tmp_path, kwargs, message):
    args = {"data": tmp_path / "x.csv", "out": tmp_path / "l.jsonl", **kwargs}
    with pytest.raises(ConfigError, match=message):
        ImportConfig(**args)


@pytest.mark.parametrize("spec, message", [("A", "is not ANSWER=LABEL"), ("A=Nope", "'Nope' is not one of"),
                                           ("A=a,A=b", "'A' is mapped twice")])
def test_bad_map_is_a_config_error(recorded, tmp_path, spec, message):
    data = recorded / "tempowic__flan-ul2.csv"
    with pytest.raises(ConfigError, match=message):
        import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels="a,b", label_col="llm_label",
                                   map=spec))


# -- issue 24: what the file says is what is imported, or one line says why not ---------------------------
@pytest.mark.parametrize("cells, column", [
    (("", "", ""), "the probability columns (p_left, p_center, p_right) are empty"),
    (("0.9", "", "0.1"),
     "probability column 'p_center' is empty while the row's other probabilities are given"),
])
def test_a_row_with_empty_probability_cells_is_refused(recorded, tmp_path, cli, capsys, cells, column):
    data, rows = _with_probs(recorded, tmp_path)
    rows[6].update(zip(("p_left", "p_center", "p_right"), cells))
    write_csv(data, rows)
    out = tmp_path / "l.jsonl"
    assert cli("import-labels", "--data", data, "--out", out, "--labels", "left,center,right",
               "--prob-prefix", "p_") == 2
    err = capsys.readouterr().err
    line = [ln for ln, _ in iter_rows(data)][6]
    assert err.count("\n") == 1 and err.startswith(f"llm2edge: error: {data}:{line}: {column}"), err
    assert not out.exists()


def test_labels_that_contradict_their_own_probabilities_are_counted(recorded, tmp_path, cli, capsys):
    data, rows = _with_probs(recorded, tmp_path, n=12)
    for i in (2, 5):
        top = rows[i]["label"]
        rows[i]["label"] = next(lab for lab in ("left", "center", "right") if lab != top)
    write_csv(data, rows)
    out = tmp_path / "l.jsonl"
    assert cli("import-labels", "--data", data, "--out", out, "--labels", "left,center,right",
               "--prob-prefix", "p_") == 0
    captured = capsys.readouterr()
    line = [ln for ln, _ in iter_rows(data)][2]
    assert (f"llm2edge: warning: 2 row(s) have a label that is not the top of their own probabilities "
            f"(first: {data}:{line}); both are kept as given") in captured.err
    assert "2 row(s) have a label that is not the top of their own probabilities" in captured.out
    assert [r["label"] for r in read_jsonl(out)] == [r["label"] for r in rows]


def test_a_numeric_text_holds_a_number_as_train_says(tmp_path, cli, capsys):
    data = tmp_path / "n.jsonl"
    data.write_text('{"text": "fine", "label": "a"}\n{"text": 42, "label": "b"}\n', encoding="utf-8")
    assert cli("import-labels", "--data", data, "--out", tmp_path / "l.jsonl", "--labels", "a,b") == 2
    assert capsys.readouterr().err == (f"llm2edge: error: {data}:2: column 'text' holds a number, not a "
                                       "string\n")


def test_an_id_column_is_read_without_id_col_as_predict_reads_it(tmp_path):
    data = write_csv(tmp_path / "ids.csv", [{"id": "doc-7", "text": "one", "label": "a"},
                                             {"id": "doc-9", "text": "two", "label": "b"}])
    import_labels(ImportConfig(data=data, out=tmp_path / "l.jsonl", labels="a,b"))
    assert [r["id"] for r in read_jsonl(tmp_path / "l.jsonl")] == ["doc-7", "doc-9"]


BIG = 300_000


def _big_import(tmp_path: Path) -> tuple[subprocess.Popen, list[str], Path]:
    """An `import-labels` of BIG rows in a subprocess, returned once it holds its output's lock."""
    data = tmp_path / "big.csv"
    with data.open("w", encoding="utf-8") as fh:
        fh.write("text,label\n")
        fh.writelines(f"text number {i},{'ab'[i % 2]}\n" for i in range(BIG))
    out = tmp_path / "l.jsonl"
    args = [sys.executable, "-m", "llm2edge", "import-labels", "--data", str(data), "--out", str(out),
            "--labels", "a,b"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 120
    while not (tmp_path / "l.jsonl.lock").exists():  # the import has started
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    return proc, args, out


def test_two_imports_into_one_file_the_second_is_refused(tmp_path):
    first, args, out = _big_import(tmp_path)
    second = subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=120)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert second.returncode == 2
    assert second.stderr == (f"llm2edge: error: {out}: another import-labels run (pid {first.pid}) is "
                             "writing this file; wait for it to end, or use another --out\n")
    assert len(read_jsonl(out)) == BIG


def test_ctrl_c_is_one_line_and_exit_130_in_a_typer_command(tmp_path):
    """Issue 24: Ctrl-C on every command is one line, exit 130 (click printed 'Aborted!' and exited 1)."""
    proc, _, out = _big_import(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == "llm2edge: interrupted\n"
    assert not out.exists() and not (tmp_path / "l.jsonl.lock").exists()
