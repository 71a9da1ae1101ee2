"""`BundlePredictor`: an edge bundle as a batch function for data engines (Ray Data, Spark, a plain loop).

    ds.map_batches(BundlePredictor, fn_constructor_kwargs={"bundle": "/shared/bundle"},
                   compute=ray.data.ActorPoolStrategy(size=4), batch_size=2048, batch_format="pyarrow")

Each instance loads and verifies the bundle once (one onnxruntime thread by default: one worker per CPU),
classifies a batch's text column and returns the batch with every input column kept plus `label`
(`deferred` with a defer threshold) and one `p_<label>` (float32) per label. For a multi-label bundle
`label` is the set of labels that apply joined with `;` (as in predict's CSV; '' for none), `p_<label>` each
label's own (sigmoid) probability, and `deferred` the band rule of llm2edge.edge.defer. A batch is a
pyarrow Table, a pandas DataFrame or a dict of numpy arrays, and comes back as the same kind. An instance
pickles as its arguments (the bundle is loaded again where it is unpickled), so it can be shipped to
workers. Needs only the base install (pyarrow or pandas for those batch kinds); the engines' own code is in
`ray_engine` and `spark_engine`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.defaults import LABEL_COL, PREDICT_BATCH_SIZE, PROVIDER, TEXT_COL, WORKER_THREADS
from llm2edge.edge.classifier import Classifier
from llm2edge.edge.defer import deferred_mask, resolve_defer
from llm2edge.errors import ConfigError, DataError
from llm2edge.labelsets import decide, join_label_set, sets_of

#: The column that marks deferred predictions (only with a defer threshold).
DEFERRED_COL = "deferred"
#: Environment of a worker process that runs one predictor with one thread per CPU it was given.
WORKER_ENV = {"TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def probability_col(label: str) -> str:
    """The column holding the probability of `label` (as in predict's CSV output)."""
    return f"p_{label}"


class BundlePredictor:
    """Classify the text column of batches with an edge bundle, adding the prediction columns.

    `bundle`: the bundle folder (a path every worker can read); `text_col`: the column holding the texts;
    `threads`: onnxruntime threads of this instance (default 1); `batch_size`: texts per model call on a
    GPU (on CPU each text runs alone); `defer`: "none", "auto" or a probability: adds a `deferred` column
    (top probability under the threshold); `prediction_col`: the name of the predicted-label column (use
    another one when the input already has a `label` column); `provider`: cpu, cuda or cuda:N.
    """

    def __init__(self, bundle: str | Path, *, text_col: str = TEXT_COL, threads: int | None = WORKER_THREADS,
                 batch_size: int = PREDICT_BATCH_SIZE, defer: str | float | None = None,
                 prediction_col: str = LABEL_COL, provider: str = PROVIDER) -> None:
        self._args = {"bundle": str(bundle), "text_col": text_col, "threads": threads,
                      "batch_size": batch_size, "defer": defer, "prediction_col": prediction_col,
                      "provider": provider}
        if threads == 1:  # one thread per worker: no tokenizer thread pool either (set before its first use)
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.text_col = text_col
        self.batch_size = batch_size
        self.prediction_col = prediction_col
        self.classifier = Classifier.load(bundle, threads=threads, providers=[provider])
        self.threshold = resolve_defer(self.classifier.info, defer)
        self.labels = self.classifier.labels
        self.columns = [prediction_col, *([DEFERRED_COL] if self.threshold is not None else []),
                        *(probability_col(name) for name in self.labels)]
        if len(set(self.columns)) != len(self.columns):
            raise ConfigError(f"prediction_col '{prediction_col}' clashes with a probability column "
                              f"({', '.join(self.columns[1:])})")

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle as the constructor's arguments: the unpickled copy loads the bundle again."""
        return _rebuild, (self._args,)

    def __repr__(self) -> str:
        return f"BundlePredictor({', '.join(f'{k}={v!r}' for k, v in self._args.items())})"

    def predict_arrays(self, texts: Sequence[object]) -> dict[str, np.ndarray]:
        """The prediction columns for `texts`, in order: labels (object array of str), deferred (bool, with
        a threshold) and one float32 probability array per label."""
        items = list(texts)
        bad = next((i for i, t in enumerate(items) if not isinstance(t, str)), None)
        if bad is not None:
            what = "null" if _is_null(items[bad]) else type(items[bad]).__name__
            raise DataError(f"row {bad} of the batch: column '{self.text_col}' holds {what}, not a string")
        proba = self.classifier.predict_proba(items, batch_size=self.batch_size)
        cuts = self.classifier.info.threshold_array if self.classifier.multi_label else None
        out: dict[str, np.ndarray] = {self.prediction_col: self._label_column(proba, cuts)}
        if self.threshold is not None:
            out[DEFERRED_COL] = deferred_mask(proba, self.threshold, cuts)
        for k, name in enumerate(self.labels):
            out[probability_col(name)] = np.ascontiguousarray(proba[:, k])
        return out

    def _label_column(self, proba: np.ndarray, cuts: np.ndarray | None) -> np.ndarray:
        """The predicted-label column (object array of str): the argmax name, or the joined label set."""
        if not len(proba):
            return np.empty(0, dtype=object)
        if cuts is None:
            return np.asarray(self.labels, dtype=object)[proba.argmax(axis=1)]
        joined = np.empty(len(proba), dtype=object)
        joined[:] = [join_label_set(s) for s in sets_of(decide(proba, cuts), self.labels)]
        return joined

    def _check_columns(self, names: Sequence[str]) -> None:
        """DataError unless the batch has the text column and none of the prediction columns."""
        if self.text_col not in names:
            have = ", ".join(names) or "none"
            raise DataError(f"the batch has no column '{self.text_col}' (columns: {have})")
        clash = next((c for c in self.columns if c in names), None)
        if clash is not None:
            raise DataError(f"the batch already has a column '{clash}'; rename it or pass "
                            "prediction_col='...' so the prediction does not overwrite it")

    def __call__(self, batch: Any) -> Any:
        """`batch` (pyarrow Table, pandas DataFrame or dict of numpy arrays) plus the prediction columns."""
        if isinstance(batch, dict):
            self._check_columns(list(batch))
            return {**batch, **self.predict_arrays(batch[self.text_col].tolist())}
        if hasattr(batch, "append_column") and hasattr(batch, "schema"):  # pyarrow.Table
            import pyarrow as pa

            self._check_columns(batch.column_names)
            for name, values in self.predict_arrays(batch.column(self.text_col).to_pylist()).items():
                kind = pa.string() if name == self.prediction_col else None
                batch = batch.append_column(name, pa.array(values, type=kind))
            return batch
        if hasattr(batch, "assign") and hasattr(batch, "columns"):  # pandas.DataFrame
            self._check_columns([str(c) for c in batch.columns])
            return batch.assign(**self.predict_arrays(batch[self.text_col].tolist()))
        raise TypeError(f"BundlePredictor takes a pyarrow Table, a pandas DataFrame or a dict of numpy "
                        f"arrays, not {type(batch).__name__}")


def _is_null(value: object) -> bool:
    """True for a missing value as batches carry it: None, NaN (pandas' null in an object column), pd.NA."""
    return value is None or (isinstance(value, float) and value != value) or type(value).__name__ == "NAType"


def _rebuild(args: dict[str, Any]) -> BundlePredictor:
    """Unpickle a BundlePredictor: build it again from its arguments."""
    return BundlePredictor(**args)
