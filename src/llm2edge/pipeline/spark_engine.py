"""Spark: an edge bundle as a Spark column function (the `spark` extra), built on pyspark's
`predict_batch_udf`.

    from llm2edge.pipeline.spark_engine import predict_udf

    classify = predict_udf("/Volumes/main/default/models/bundle", batch_size=256)
    df.withColumn("pred", classify("text")).select("id", "pred.label", "pred.p_funny")

Each Python worker loads and verifies the bundle once (cached by pyspark between batches and tasks) with one
onnxruntime thread (`threads`), and returns a struct per row: `label` (string) and one `p_<label>` (float)
per label, as in `llm2edge predict`'s CSV. The bundle path must be readable on every executor: on
Databricks a Unity Catalog Volume (/Volumes/...) or DBFS through its FUSE mount (/dbfs/...), not a
dbfs:/ URI. Executors must run the Python this extra is installed in (PYSPARK_PYTHON). README
"Scaling out" has the Databricks recipe (one task per core: spark.task.cpus=1, OMP_NUM_THREADS=1).
Importing this module without the extra raises MissingExtraError with the pip command.
"""

from __future__ import annotations

import importlib.util

from llm2edge.errors import ConfigError, MissingExtraError

# The `spark` extra, checked by import rather than by installed metadata (llm2edge.extras.require): a
# Databricks runtime ships pyspark on its path without pip's metadata, and pip-installing pyspark there
# would shadow the runtime's own.
for _module in ("pyspark", "pandas", "pyarrow"):
    if importlib.util.find_spec(_module) is None:
        raise MissingExtraError("spark", _module)

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from pyspark.ml.functions import predict_batch_udf  # noqa: E402
from pyspark.sql.types import FloatType, StringType, StructField, StructType  # noqa: E402

from llm2edge.checks import at_least, check_threads  # noqa: E402
from llm2edge.defaults import LABEL_COL, PREDICT_BATCH_SIZE, PROVIDER, WORKER_THREADS  # noqa: E402
from llm2edge.edge.bundle import read_bundle  # noqa: E402
from llm2edge.pipeline.predictor import BundlePredictor, probability_col  # noqa: E402

__all__ = ["predict_udf", "prediction_schema"]


def prediction_schema(labels: list[str], prediction_col: str = LABEL_COL) -> StructType:
    """The struct `predict_udf` returns: the label (string), then p_<label> (float) per label."""
    # Nullable fields: pandas UDFs hand Spark nullable Arrow columns, and a stricter schema is refused.
    return StructType([StructField(prediction_col, StringType()),
                       *(StructField(probability_col(name), FloatType()) for name in labels)])


def _local_path(bundle: str | Path) -> str:
    """The bundle as an absolute local path; ConfigError for a URI (dbfs:/, s3://), which onnxruntime
    cannot open."""
    text = str(bundle)
    if "://" in text or text.startswith("dbfs:"):
        raise ConfigError(f"{text}: give the bundle as a local path every executor can read (Databricks: "
                          "/Volumes/... or /dbfs/...), not a URI")
    return str(Path(text).expanduser().absolute())


def predict_udf(bundle: str | Path, *, batch_size: int = PREDICT_BATCH_SIZE, threads: int = WORKER_THREADS,
                prediction_col: str = LABEL_COL, provider: str = PROVIDER) -> Callable[..., Any]:
    """A Spark column function that classifies a string column with the bundle.

    `batch_size`: rows per predict call (Arrow batches are cut to it); `threads`: onnxruntime threads per
    Python worker (match spark.task.cpus); `prediction_col`: the name of the label field; `provider`: cpu,
    cuda or cuda:N. The labels are read from the bundle's manifest here, on the driver; each worker checks
    the bundle's checksums when it loads it. A null text fails the task with a DataError naming its row.
    """
    at_least("batch_size", batch_size)
    check_threads(threads)
    path = _local_path(bundle)
    labels = list(read_bundle(path, verify=False).labels)
    schema = prediction_schema(labels, prediction_col)

    def make_predict_fn() -> Callable[[np.ndarray], dict[str, np.ndarray]]:
        predictor = BundlePredictor(path, threads=threads, batch_size=batch_size,
                                    prediction_col=prediction_col, provider=provider)

        def predict(texts: np.ndarray) -> dict[str, np.ndarray]:
            return predictor.predict_arrays(texts.tolist())

        return predict

    return predict_batch_udf(make_predict_fn, return_type=schema, batch_size=batch_size)
