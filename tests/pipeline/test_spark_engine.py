"""`predict_udf` on a real Spark in local[2] mode (Java 17+), against single-process `llm2edge predict`,
with a tiny real ONNX bundle.

Without the `spark` extra or Java these skip with the hint (fail under LLM2EDGE_REQUIRE_ENGINES=1, as in CI).
"""

from __future__ import annotations

import json
import os
import sys

import pytest

LABELS = ["negative", "neutral", "positive"]
HINT = "this needs the 'spark' extra (pyspark is not installed): pip install 'llm2edge[spark]'"
# pyspark 4.x warns on pandas 3 (which the hub extra installs); predict_batch_udf works with it (tested here).
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")


@pytest.fixture(scope="module")
def spark(engines):
    """A local[2] SparkSession bound to 127.0.0.1, its Python workers on this interpreter, UI off."""
    engines.require_engine("spark", java=True)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("llm2edge-tests")
               .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.shuffle.partitions", "2")
               .config("spark.task.cpus", "1").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def parts_20k(engines, tiny, tmp_path_factory):
    """20,000 example texts in 4 Parquet parts with an id column, and single-process predict's rows."""
    root = tmp_path_factory.mktemp("parts20k")
    parts = engines.write_parts(root / "in", 20_000, 4, ids_from=0)
    return parts, engines.single_process(tiny, parts, root / "expected")


@pytest.mark.slow
def test_predict_udf_equals_single_process_predict_on_20k_rows(engines, spark, tiny, parts_20k):
    from llm2edge.pipeline.spark_engine import predict_udf

    parts, expected = parts_20k
    df = spark.read.parquet(*(str(p) for p in parts)).repartition(2)
    classify = predict_udf(tiny, batch_size=512)
    got = df.withColumn("pred", classify("text")).select("id", "pred.*")
    assert got.columns == ["id", "label", *(f"p_{n}" for n in LABELS)]
    assert [f.dataType.simpleString() for f in got.schema.fields] == ["string", "string", "float", "float",
                                                                      "float"]
    rows = {r["id"]: r.asDict() for r in got.collect()}
    assert len(rows) == 20_000
    engines.assert_same_predictions([rows[r["id"]] for r in expected], expected, LABELS)


def test_a_null_text_fails_the_task_naming_the_row(spark, tiny):
    from llm2edge.pipeline.spark_engine import predict_udf

    df = spark.createDataFrame([("a", "fine"), ("b", None)], "id string, text string").coalesce(1)
    with pytest.raises(Exception, match=r"DataError: row 1 of the batch: column 'text' holds null"):
        df.withColumn("pred", predict_udf(tiny)("text")).collect()


def test_the_bundle_must_be_a_local_path(spark, tiny):
    from llm2edge.errors import BundleError, ConfigError
    from llm2edge.pipeline.spark_engine import predict_udf, prediction_schema

    with pytest.raises(ConfigError, match="give the bundle as a local path every executor can read"):
        predict_udf("dbfs:/models/bundle")
    with pytest.raises(BundleError):
        predict_udf(tiny.parent / "no-such-bundle")
    assert prediction_schema(["a", "b"], "pred").fieldNames() == ["pred", "p_a", "p_b"]


# ---------------------------------------------------------------------------- without the `spark` extra

IMPORT = """
import importlib.util, json, sys
from llm2edge.errors import MissingExtraError
assert importlib.util.find_spec("pyspark") is None, "pyspark is still importable"
try:
    import llm2edge.pipeline.spark_engine
    print(json.dumps("imported"))
except MissingExtraError as exc:
    print(json.dumps(str(exc)))
"""


def test_without_the_extra_the_module_names_the_pip_command(engines, tmp_path):
    proc = engines.run_in_site(engines.site_without("pyspark", tmp_path), IMPORT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == HINT
