"""Train one student on an intervention's rows and score it on a split's test rows.

- "transformer" and "static" students train with `llm2edge.hub.train.train` (the StudentSpec's training
  settings, any TrainConfig field, the test rows as --eval); with `evaluate = "edge"` the model is
  exported to an ONNX bundle and the edge Classifier is scored too.
- "head" students are a linear head (`hub.train.static.fit_head`: standardized features, AdamW, the same
  class-weight rule as `train`) on cached frozen sentence embeddings of the encoder: seconds per run, so
  a grid of hundreds of runs fits a CPU; scored in numpy, never exported.

Every result carries the confusion matrices, so cross-validation folds pool into one report.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.hashing import digest
from llm2edge.hub.curate.rows import Row, write_json, write_rows
from llm2edge.metrics import classification_report
from llm2edge.pipeline.experiment.sources import Split, student_text, write_test
from llm2edge.pipeline.experiment.specs import DatasetSpec, ExperimentConfig, StudentSpec


def student_threads(student: StudentSpec, config: ExperimentConfig) -> int | None:
    """The student's threads when it sets them, else the experiment's (None: `resolve_threads`)."""
    return student.threads if student.threads is not None else config.threads


class EmbeddingCache:
    """Frozen sentence embeddings of texts (the student's encoder), kept on disk by text: every fold,
    intervention and labeler of a data set reuses them."""

    def __init__(self, folder: Path, dataset: DatasetSpec, student: StudentSpec, config: ExperimentConfig):
        self.base = folder / f"{dataset.name}-{student.name}"
        self.student, self.config = student, config
        self.key = digest({"model": student.model, "max_length": student.max_length})
        self._index: dict[str, int] = {}
        self._vectors = np.zeros((0, 0), dtype=np.float32)
        meta = self.base.with_suffix(".json")
        if meta.is_file():
            info = json.loads(meta.read_text(encoding="utf-8"))
            if info.get("key") == self.key and isinstance(info.get("texts"), list):
                self._vectors = np.load(self.base.with_suffix(".npy"), allow_pickle=False)
                self._index = {t: i for i, t in enumerate(info["texts"])}

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """The embeddings of `texts` (rows in order), embedding and saving the ones not cached yet."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._index))
        if missing:
            from llm2edge.hub.curate.embed import embed_texts

            new = embed_texts(missing, model=self.student.model, max_length=self.student.max_length,
                              threads=student_threads(self.student, self.config), progress=True)
            self._vectors = new if not self._index else np.concatenate([self._vectors, new])
            start = len(self._index)
            self._index.update({t: start + i for i, t in enumerate(missing)})
            self.base.parent.mkdir(parents=True, exist_ok=True)
            np.save(self.base.with_suffix(".npy"), self._vectors, allow_pickle=False)
            write_json(self.base.with_suffix(".json"), {"key": self.key, "texts": list(self._index)})
        return self._vectors[[self._index[t] for t in texts]]


def embeddings(dataset: DatasetSpec, rows: Sequence[Row], student: StudentSpec, out: Path,
               config: ExperimentConfig) -> np.ndarray:
    """Frozen student embeddings of labels rows as the student reads them (cached by text)."""
    return EmbeddingCache(out / "embeddings", dataset, student, config).vectors(
        [student_text(r, dataset) for r in rows])


def _targets(rows: Sequence[Row], labels: Sequence[str], soft: bool) -> Any:
    """Class indices (hard) or the rows' normalized `probs` (soft), as a torch tensor."""
    import torch

    index = {name: i for i, name in enumerate(labels)}
    if not soft:
        return torch.tensor([index[r["label"]] for r in rows], dtype=torch.long)
    return torch.tensor([[float((r.get("probs") or {r["label"]: 1.0}).get(name, 0.0)) for name in labels]
                         for r in rows], dtype=torch.float32)


def _head_run(rows: Sequence[Row], soft: bool, labels: Sequence[str], dataset: DatasetSpec,
              student: StudentSpec, config: ExperimentConfig, run_dir: Path, split: Split, out: Path,
              extra: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """The "head" student: a linear head on cached embeddings, scored on the test rows in numpy.
    `extra`: (embeddings, soft targets) of pool rows trained on beside `rows` (with the pool's noise)."""
    import torch

    from llm2edge.hub.train import TrainConfig
    from llm2edge.hub.train.batches import class_weights
    from llm2edge.hub.train.guard import check_collapse
    from llm2edge.hub.train.static import fit_head

    cache = EmbeddingCache(out / "embeddings", dataset, student, config)
    x = cache.vectors([student_text(r, dataset) for r in rows])
    x_test = cache.vectors([student_text(r, dataset) for r in split.test])
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    y = _targets(rows, labels, soft)
    noise = 0.0
    if extra is not None and len(extra[0]):
        x = np.concatenate([x, extra[0]])
        y = torch.cat([y, torch.from_numpy(extra[1].astype(np.float32))])
        noise = config.pool.noise
    settings = TrainConfig(data=run_dir / "train.jsonl", out=run_dir / "model", seed=config.seed,
                           **student.train)
    weight = class_weights(y, len(labels), student.class_weight)
    w, b, _ = fit_head(x, y, len(labels), settings, weight, noise=noise)
    pred = [labels[i] for i in (x_test @ w.T + b).argmax(axis=1)]
    report = classification_report(split.gold_test, pred, labels).to_dict()
    collapsed = check_collapse({"test": report})["collapsed"]
    return {"torch_acc": report["accuracy"], "torch_wf1": report["weighted_f1"], "torch_confusion":
            report["confusion"], "edge_acc": report["accuracy"], "edge_wf1": report["weighted_f1"],
            "edge_confusion": report["confusion"], "evaluated_with": "numpy-head", "collapsed": collapsed,
            "train_seconds": round(time.perf_counter() - t0, 2)}


def train_student(rows: Sequence[Row], labels: Sequence[str], dataset: DatasetSpec, student: StudentSpec,
                  config: ExperimentConfig, run_dir: Path, split: Split, *, soft: bool = False,
                  multi_label: bool = False) -> tuple[Any, Path, list[str]]:
    """Write the run's train.jsonl and test.csv and train the student into run_dir/model with `llm2edge
    train` (multi_label: label sets); (the TrainResult, the test.csv, the test texts as the student reads
    them)."""
    from llm2edge.hub.train import TrainConfig, train

    train_path = run_dir / "train.jsonl"
    write_rows(train_path, [{"id": r["id"], "text": student_text(r, dataset), "label": r["label"],
                             "probs": r.get("probs"), "source": r.get("source", "llm")} for r in rows])
    test_csv = run_dir / "test.csv"
    texts = write_test(test_csv, split, dataset)
    result = train(TrainConfig(
        data=train_path, out=run_dir / "model", eval_data=test_csv, seed=config.seed, soft_labels=soft,
        multi_label=multi_label, threads=student_threads(student, config), labels=list(labels),
        progress=True, **student.train_kwargs()))
    return result, test_csv, texts


def train_and_evaluate(rows: Sequence[Row], soft: bool, labels: Sequence[str], dataset: DatasetSpec,
                       student: StudentSpec, config: ExperimentConfig, run_dir: Path, split: Split,
                       out: Path, *, extra: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, Any]:
    """Train the student on `rows`, score it on the split's test rows; metrics with confusion matrices.
    `extra`: the head student's pool rows as (embeddings, soft targets); other students get pool rows in
    `rows`."""
    if student.student == "head":
        return _head_run(rows, soft, labels, dataset, student, config, run_dir, split, out, extra)
    from llm2edge.hub.train.guard import slice_collapse

    result, test_csv, texts = train_student(rows, labels, dataset, student, config, run_dir, split, soft=soft)
    model_dir = run_dir / "model"
    m = result.metrics or {}
    metrics = {"torch_acc": m["accuracy"], "torch_wf1": m["weighted_f1"], "torch_confusion": m["confusion"],
               "collapsed": bool(m.get("collapsed")), "train_seconds": round(result.seconds, 2)}
    fallback = m.get("fallback")
    if fallback is not None:  # the fine-tuned weights were replaced: keep their scores for the record
        tuned = fallback.get("fine_tuned_eval") or {}
        metrics.update(fell_back=True, tuned_confusion=tuned.get("confusion"),
                       tuned_collapsed=bool(tuned) and slice_collapse(tuned, "test")["collapsed"])
    if config.evaluate == "edge":
        metrics.update(_edge_metrics(model_dir, run_dir / "bundle", test_csv, texts, split.gold_test, labels,
                                     config))
    else:
        metrics.update(edge_acc=metrics["torch_acc"], edge_wf1=metrics["torch_wf1"],
                       edge_confusion=metrics["torch_confusion"], evaluated_with="torch")
    return metrics


def _edge_metrics(model_dir: Path, bundle: Path, test_csv: Path, texts: Sequence[str], gold: Sequence[str],
                  labels: Sequence[str], config: ExperimentConfig) -> dict[str, Any]:
    """Export the model to an ONNX bundle and score the edge Classifier on the test texts."""
    from llm2edge.edge import Classifier
    from llm2edge.export import ExportConfig, export_bundle

    info = export_bundle(ExportConfig(model=model_dir, out=bundle, quantize=config.quantize,
                                      validate=test_csv, threads=config.threads, verbose=False))
    clf = Classifier.load(bundle, threads=config.threads)
    report = classification_report(list(gold), list(clf.predict(list(texts))), list(labels))
    return {"edge_acc": report.accuracy, "edge_wf1": report.weighted_f1, "edge_confusion": report.confusion,
            "evaluated_with": f"edge-{info.quantization}", "export_seconds": round(info.seconds, 1)}
