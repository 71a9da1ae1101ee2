"""Folder mode of `llm2edge predict` on the local engine, and BundlePredictor, with a tiny real bundle.

No cluster engine here: these run on the base install plus pyarrow/pandas (the Ray and Spark runs are in
test_ray_engine.py and test_spark_engine.py).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from llm2edge.edge.classifier import Classifier
from llm2edge.errors import ConfigError, DataError
from llm2edge.pipeline.folders import PredictJob, input_files, names_many, run_job
from llm2edge.pipeline.predictor import BundlePredictor

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
LABELS = ["negative", "neutral", "positive"]


def read_folder(folder: Path) -> list[dict[str, object]]:
    """Every row of the Parquet parts in `folder`, parts in name order."""
    return [row for part in sorted(folder.glob("*.parquet")) for row in pq.read_table(part).to_pylist()]


@pytest.fixture(scope="module")
def parts_4k(engines, tiny: Path, tmp_path_factory: pytest.TempPathFactory):
    """4,000 example texts in 4 parts (the last two with an id column) and single-process predict's rows."""
    root = tmp_path_factory.mktemp("parts4k")
    parts = engines.write_parts(root / "in", 4000, 4)
    return root / "in", parts, engines.single_process(tiny, parts, root / "expected")


def test_folder_mode_equals_single_process_predict_row_for_row(engines, cli, tiny, parts_4k, tmp_path,
                                                               capsys):
    folder, _, expected = parts_4k
    assert cli("predict", "-b", tiny, "--input", folder, "--output", tmp_path / "out") == 0
    rows = read_folder(tmp_path / "out")
    assert list(rows[0]) == ["id", "label", *(f"p_{n}" for n in LABELS)]
    engines.assert_same_predictions(rows, expected, LABELS)
    assert rows[0]["id"].startswith("r0-") and rows[-1]["id"] == "doc-3-999"  # hashed ids, then given ids
    assert "4,000 rows from 4 file(s)" in capsys.readouterr().err


def test_a_glob_with_text_and_defer(engines, cli, tiny, parts_4k, tmp_path):
    folder, parts, expected = parts_4k
    out = tmp_path / "out"
    assert cli("predict", "-b", tiny, "--engine", "local", "--input", f"{folder}/part-[23].parquet",
               "--output", out, "--with-text", "--defer", "0.9") == 0
    rows = read_folder(out)
    assert list(rows[0]) == ["id", "text", "label", "deferred", *(f"p_{n}" for n in LABELS)]
    assert rows[0]["text"] == pq.read_table(parts[2]).column("text")[0].as_py()
    tail = expected[2000:]
    engines.assert_same_predictions(rows, tail, LABELS)
    top = [max(float(r[f"p_{n}"]) for n in LABELS) for r in tail]
    assert [r["deferred"] for r in rows] == [p < 0.9 for p in top]
    assert 0 < sum(r["deferred"] for r in rows) < len(rows)


def test_input_files_and_folder_detection(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.csv", "a.parquet", "sub/c.jsonl", "_SUCCESS", ".hidden.csv", "notes.txt"):
        (tmp_path / name).write_text("text\nx\n")
    (tmp_path / "_temporary").mkdir()
    (tmp_path / "_temporary" / "d.csv").write_text("text\nx\n")
    assert [p.relative_to(tmp_path).as_posix() for p in input_files(str(tmp_path))] == [
        "a.parquet", "b.csv", "sub/c.jsonl"]
    assert input_files(str(tmp_path / "*.csv")) == [tmp_path / "b.csv"]
    assert names_many(str(tmp_path)) and names_many(f"{tmp_path}/*.csv")
    assert not names_many(str(tmp_path / "b.csv")) and not names_many("-") and not names_many(None)
    with pytest.raises(DataError, match="matches no file"):
        input_files(str(tmp_path / "*.tsv"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("not data\n")
    with pytest.raises(DataError, match="no data files"):
        input_files(str(tmp_path / "docs"))


@pytest.mark.parametrize(("args", "message"), [
    (["--resume"], "takes no --resume"),
    (["--format", "csv"], "takes no --format"),
    (["--workers", "2"], "--address and --workers need --engine ray"),
    (["--engine", "local", "--address", "auto"], "--address and --workers need --engine ray"),
])
def test_options_that_do_not_apply_are_refused(cli, tiny, parts_4k, tmp_path, capsys, args, message):
    folder, _, _ = parts_4k
    assert cli("predict", "-b", tiny, "--input", folder, "--output", tmp_path / "out", *args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_an_output_folder_with_files_is_refused(cli, tiny, parts_4k, tmp_path, capsys):
    folder, _, _ = parts_4k
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.parquet").write_bytes(b"x")
    assert cli("predict", "-b", tiny, "--input", folder, "--output", tmp_path / "out") == 2
    assert "the output folder is not empty" in capsys.readouterr().err


def test_a_bad_row_names_the_file_and_leaves_no_parts(cli, tiny, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text("text\nhello\nworld\n")
    (tmp_path / "in" / "b.jsonl").write_text('{"text": "ok"}\n{"text": 5}\n')
    assert cli("predict", "-b", tiny, "--input", tmp_path / "in", "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err
    bad = tmp_path / "in" / "b.jsonl"
    assert err == f"llm2edge: error: {bad}:2: column 'text' holds a number, not a string\n"
    assert list((tmp_path / "out").iterdir()) == []


def test_predict_job_checks_its_arguments(tiny, tmp_path):
    with pytest.raises(ConfigError, match="engine must be one of local, ray"):
        PredictJob(bundle=tiny, inputs=str(tmp_path), output=tmp_path / "o", engine="dask")
    with pytest.raises(ConfigError, match="chunk_size must be at least 1"):
        PredictJob(bundle=tiny, inputs=str(tmp_path), output=tmp_path / "o", chunk_size=0)
    with pytest.raises(DataError, match="unknown format 'xml'"):
        PredictJob(bundle=tiny, inputs=str(tmp_path), output=tmp_path / "o", input_format="xml")
    with pytest.raises(DataError, match="no such file or folder"):
        run_job(PredictJob(bundle=tiny, inputs=str(tmp_path / "missing.csv"), output=tmp_path / "o"))


# ----------------------------------------------------------------------------------------- BundlePredictor


@pytest.fixture(scope="module")
def texts(engines) -> list[str]:
    return engines.example_texts(300)


def test_bundle_predictor_keeps_every_column_in_each_batch_kind(tiny, texts):
    pd = pytest.importorskip("pandas")
    predictor = BundlePredictor(tiny)
    proba = Classifier.load(tiny, threads=1).predict_proba(texts)
    labels = [LABELS[i] for i in proba.argmax(axis=1)]
    source = {"text": texts, "n": list(range(len(texts))), "label_gold": ["x"] * len(texts)}

    table = predictor(pa.table(source))
    assert table.column_names == ["text", "n", "label_gold", "label", *(f"p_{n}" for n in LABELS)]
    assert table.column("label").to_pylist() == labels
    assert table.schema.field("p_neutral").type == pa.float32()
    np.testing.assert_array_equal(table.column("p_positive").to_numpy(), proba[:, 2])

    frame = predictor(pd.DataFrame(source))
    assert list(frame.columns) == table.column_names and frame["n"].tolist() == source["n"]
    assert frame["label"].tolist() == labels
    np.testing.assert_array_equal(frame["p_negative"].to_numpy(), proba[:, 0])

    arrays = predictor({k: np.asarray(v) for k, v in source.items()})
    assert list(arrays) == table.column_names and arrays["label"].tolist() == labels
    assert predictor(pa.table({"text": pa.array([], type=pa.string())})).num_rows == 0


def test_bundle_predictor_pickles_as_its_arguments(tiny, texts):
    predictor = BundlePredictor(tiny, defer=0.6, prediction_col="pred")
    copy = pickle.loads(pickle.dumps(predictor))
    assert copy is not predictor and copy.classifier is not predictor.classifier
    assert copy.columns == ["pred", "deferred", *(f"p_{n}" for n in LABELS)]
    got, want = copy.predict_arrays(texts), predictor.predict_arrays(texts)
    assert got.keys() == want.keys()
    for name in got:
        np.testing.assert_array_equal(got[name], want[name])
    assert "defer=0.6" in repr(copy)


def test_bundle_predictor_errors_are_one_line(tiny):
    predictor = BundlePredictor(tiny)
    with pytest.raises(DataError, match=r"the batch already has a column 'label'; rename it or pass "):
        predictor(pa.table({"text": ["a"], "label": ["gold"]}))
    assert BundlePredictor(tiny, prediction_col="pred")(pa.table({"text": ["a"], "label": ["gold"]})
                                                         ).column_names[:3] == ["text", "label", "pred"]
    with pytest.raises(DataError, match=r"the batch has no column 'text' \(columns: body\)"):
        predictor(pa.table({"body": ["a"]}))
    with pytest.raises(DataError, match=r"row 1 of the batch: column 'text' holds null, not a string"):
        predictor(pa.table({"text": ["a", None]}))
    with pytest.raises(ConfigError, match="clashes with a probability column"):
        BundlePredictor(tiny, prediction_col="p_neutral")
    with pytest.raises(TypeError, match="not list"):
        predictor(["a"])


def test_bundle_predictor_on_a_static_student_graph(engines, tmp_path, texts):
    """A static student's graph takes no token_type_ids (input_ids and attention_mask only)."""
    edge = engines.edge_fixtures()
    edge.build_bundle(tmp_path / "static", token_type=False)
    out = BundlePredictor(tmp_path / "static")(pa.table({"text": texts}))
    expected = Classifier.load(tmp_path / "static", threads=1).predict(texts)
    assert out.column("label").to_pylist() == expected
