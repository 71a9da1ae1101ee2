"""Run an experiment grid: label once per data set x labeler, then train and evaluate one student per
intervention, caching everything so a rerun only does what is missing.

Layout of the output folder:

    data/<dataset>/{train,test}.csv            the sampled items (id, text, fields, gold label)
    labels/<dataset>/<labeler>/{train,test}.jsonl   LLM labels (the labeling store: resumable, keyed)
    embeddings/<dataset>.npy (+ .json)         frozen student embeddings of the train items (cleanlab)
    runs/<dataset>/<labeler>/<student>/<intervention>/  train.jsonl, result.json (model/ and bundle/
                                               removed after evaluation unless keep_models)
    results.csv, results.md, results.png

The LLM is evaluated on the *test* split: the same items the edge model is scored on, so "the edge model
beats its teacher" compares like with like (the source README compares on test too). The LLM's accuracy
on the train split (the labels the student learns from) is reported as `llm_train_acc`.
Expert labels are simulated from the gold labels of the sampled train items, as RED-CT does.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say
from llm2edge.errors import DataError, TaskError
from llm2edge.hashing import digest
from llm2edge.hub.curate.experts import apply_expert_labels, select_experts
from llm2edge.hub.curate.rows import LabeledRows, Row, load_labels, write_json, write_rows
from llm2edge.hub.curate.soft import build_soft_labels
from llm2edge.metrics import classification_report
from llm2edge.pipeline.experiment.config import (
    DatasetSpec,
    ExperimentConfig,
    LabelerSpec,
    StudentSpec,
    load_config,
    parse_intervention,
)
from llm2edge.pipeline.experiment.report import results_markdown, results_plot, write_csv
from llm2edge.records import iter_records


@dataclass(frozen=True)
class ExperimentResult:
    """What run_experiment did: the output folder, how many runs (and how many came from the cache)."""

    out: Path
    n_runs: int
    n_cached: int
    rows: list[dict[str, Any]]


def _log(message: str) -> None:
    """A progress line on stderr."""
    say(f"experiment: {message}")


# ------------------------------------------------------------------ data


def prepare_split(dataset: DatasetSpec, split: str, out: Path, *, seed: int) -> Path:
    """Write a seeded random sample of a split (id, text, fields, label); reuse it if already written."""
    src = dataset.train if split == "train" else dataset.test
    limit = dataset.train_limit if split == "train" else dataset.test_limit
    records = list(iter_records(src, text_col=dataset.text_col, label_col=dataset.label_col,
                                fields=dataset.fields, require_label=True))
    if not records:
        raise DataError(f"{src}: no rows")
    order = list(range(len(records)))
    random.Random(f"{seed}:{dataset.name}:{split}").shuffle(order)
    if limit:
        order = sorted(order[:limit])
    path = out / "data" / dataset.name / f"{split}.csv"
    rows = [records[i] for i in order]
    header = ["id", "text", *dataset.fields, "label"]
    content = [[r.id, r.text, *(r.fields[f] for f in dataset.fields), r.label] for r in rows]
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as handle:
            existing = list(csv.reader(handle))
        if existing == [header, *content]:
            return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(content)
    tmp.replace(path)
    return path


def _gold(path: Path, dataset: DatasetSpec) -> dict[str, str]:
    """Gold labels by id of a prepared split."""
    return {r.id: str(r.label) for r in iter_records(path, id_col="id", label_col="label",
                                                     fields=dataset.fields, require_label=True)}


def student_text(row: Row | dict[str, Any], dataset: DatasetSpec) -> str:
    """The text the student reads: the dataset's template over `text` and the per-item fields."""
    fields = row.get("fields") or {}
    try:
        return dataset.student_template.format(text=row["text"], **fields)
    except KeyError as exc:
        raise TaskError(f"data set '{dataset.name}': student_template uses {exc}, which the item lacks"
                        ) from None


# ------------------------------------------------------------------ labeling


def label_split(dataset: DatasetSpec, labeler: LabelerSpec, data: Path, out: Path, *,
                threads: int | None = None) -> int:
    """Label a prepared split with the LLM into `out` (resumable); returns the number newly labeled.
    `threads`: the labeler's when it sets them, else these (None: `resolve_threads`)."""
    from llm2edge.hub.label.runner import LabelConfig, label_file

    out.parent.mkdir(parents=True, exist_ok=True)
    summary = label_file(LabelConfig(
        data=data, task=dataset.task, out=out, backend=labeler.backend, model=labeler.model,
        base_url=labeler.base_url, shots=labeler.shots, calibrate=labeler.calibrate, cot=labeler.cot,
        batch_size=labeler.batch_size, threads=labeler.threads if labeler.threads is not None else threads,
        id_col="id", text_col="text"))
    if summary.failed:
        _log(f"{out}: {summary.failed} items failed after all retries (rerun to retry them)")
    return summary.labeled


def llm_scores(labels: LabeledRows, gold: dict[str, str], task_labels: Sequence[str]) -> tuple[float, float]:
    """Accuracy and weighted F1 of the LLM labels against gold (items the LLM failed on count as wrong)."""
    by_id = {r["id"]: r["label"] for r in labels.rows}
    golds = list(gold.values())
    preds = [by_id.get(i) for i in gold]
    missing = "<no label>"
    order = [*task_labels, missing]
    report = classification_report(golds, [p if p is not None else missing for p in preds], order)
    return report.accuracy, report.weighted_f1


# ------------------------------------------------------------------ interventions


def _student_threads(student: StudentSpec, config: ExperimentConfig) -> int | None:
    """The student's threads when it sets them, else the experiment's (None: `resolve_threads`)."""
    return student.threads if student.threads is not None else config.threads


def _embeddings(dataset: DatasetSpec, rows: Sequence[Row], student: StudentSpec, out: Path,
                config: ExperimentConfig) -> np.ndarray:
    """Frozen student embeddings of the training rows (cached per data set and encoder)."""
    from llm2edge.hub.curate.embed import embed_texts

    texts = [student_text(r, dataset) for r in rows]
    key = digest({"texts": texts, "model": student.model, "max_length": student.max_length})
    base = out / "embeddings" / f"{dataset.name}-{student.name}"
    meta = base.with_suffix(".json")
    if meta.is_file() and json.loads(meta.read_text())["key"] == key:
        return np.load(base.with_suffix(".npy"), allow_pickle=False)
    feats = embed_texts(texts, model=student.model, max_length=student.max_length,
                        threads=_student_threads(student, config), progress=True)
    base.parent.mkdir(parents=True, exist_ok=True)
    np.save(base.with_suffix(".npy"), feats, allow_pickle=False)
    write_json(meta, {"key": key, "n": len(texts)})
    return feats


def training_rows(steps: Sequence[str], labels: LabeledRows, gold: dict[str, str], config: ExperimentConfig,
                  dataset: DatasetSpec, student: StudentSpec, out: Path) -> tuple[list[Row], dict[str, int]]:
    """The training rows of an intervention: experts merged, then cleanlab drops, then soft targets."""
    rows = [dict(r) for r in labels.rows]
    stats = {"n_experts": 0, "n_dropped": 0}
    cur = config.curate
    expert_ids: set[str] = set()
    for strategy in ("confidence", "random"):
        if f"experts_{strategy}" in steps:
            picked = select_experts(rows, labels.labels, fraction=cur.expert_fraction, strategy=strategy,
                                    stratify=cur.stratify, by=cur.by, seed=config.seed)
            expert = {rows[i]["id"]: gold[rows[i]["id"]] for i in picked}
            rows, _ = apply_expert_labels(rows, labels.labels, expert)
            expert_ids = set(expert)
            stats["n_experts"] = len(expert)
    if "cleanlab" in steps:
        from llm2edge.hub.curate.confident import find_issues

        features = None
        if cur.probs == "crossval":
            all_feats = _embeddings(dataset, labels.rows, student, out, config)
            features = all_feats  # rows keep the order of labels.rows
        try:
            issues = find_issues(rows, labels.labels, probs=cur.probs, features=features, folds=cur.folds,
                                 seed=config.seed, filter_by=cur.filter_by)
        except DataError as exc:  # e.g. the LLM gave every item the same label: nothing to learn from
            _log(f"{dataset.name}: cleanlab skipped ({exc})")
            flagged = set()
        else:
            flagged = {rows[i]["id"] for i in np.flatnonzero(issues.flagged)} - expert_ids  # experts kept
        if cur.action == "drop":
            rows = [r for r in rows if r["id"] not in flagged]
        stats["n_dropped"] = len(flagged)
    if "soft" in steps:
        rows = build_soft_labels(rows, cur.soft_smoothing, labels.labels)
    return rows, stats


# ------------------------------------------------------------------ training and evaluation


def _write_test(path: Path, data: Path, dataset: DatasetSpec) -> tuple[list[str], list[str]]:
    """The test split as the student sees it (text, label); returns (texts, gold labels)."""
    texts, gold = [], []
    for rec in iter_records(data, id_col="id", label_col="label", fields=dataset.fields, require_label=True):
        texts.append(student_text({"text": rec.text, "fields": rec.fields}, dataset))
        gold.append(str(rec.label))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, gold))
    return texts, gold


def train_and_evaluate(rows: Sequence[Row], soft: bool, task_labels: Sequence[str], dataset: DatasetSpec,
                       student: StudentSpec, config: ExperimentConfig, run_dir: Path, test_csv: Path,
                       test_texts: Sequence[str], test_gold: Sequence[str]) -> dict[str, Any]:
    """Train the student on `rows`, evaluate it on the test split (edge bundle or torch); the metrics."""
    from llm2edge.hub.train import TrainConfig, train

    train_path = run_dir / "train.jsonl"
    write_rows(train_path, [{"id": r["id"], "text": student_text(r, dataset), "label": r["label"],
                             "probs": r.get("probs"), "source": r.get("source", "llm")} for r in rows])
    model_dir = run_dir / "model"
    result = train(TrainConfig(
        data=train_path, out=model_dir, eval_data=test_csv, model=student.model, epochs=student.epochs,
        max_length=student.max_length, batch_size=student.batch_size, lr=student.lr, seed=config.seed,
        val_fraction=0.0, freeze_encoder=student.freeze_encoder, head_epochs=student.head_epochs,
        soft_labels=soft, threads=_student_threads(student, config), labels=list(task_labels), progress=True))
    metrics = {"torch_acc": result.metrics["accuracy"], "torch_wf1": result.metrics["weighted_f1"],
               "train_seconds": round(result.seconds, 2)}
    if config.evaluate == "edge":
        metrics.update(_edge_metrics(model_dir, run_dir / "bundle", test_csv, test_texts, test_gold,
                                     task_labels, config))
    else:
        metrics.update(edge_acc=metrics["torch_acc"], edge_wf1=metrics["torch_wf1"], evaluated_with="torch")
    return metrics


def _edge_metrics(model_dir: Path, bundle: Path, test_csv: Path, texts: Sequence[str], gold: Sequence[str],
                  task_labels: Sequence[str], config: ExperimentConfig) -> dict[str, Any]:
    """Export the model to an ONNX bundle and score the edge Classifier on the test texts."""
    from llm2edge.edge import Classifier
    from llm2edge.export import ExportConfig, export_bundle

    info = export_bundle(ExportConfig(model=model_dir, out=bundle, quantize=config.quantize,
                                      validate=test_csv, threads=config.threads, verbose=False))
    clf = Classifier.load(bundle, threads=config.threads)
    pred = clf.predict(list(texts))
    report = classification_report(list(gold), list(pred), list(task_labels))
    return {"edge_acc": report.accuracy, "edge_wf1": report.weighted_f1,
            "evaluated_with": f"edge-{info.quantization}", "export_seconds": round(info.seconds, 1)}


# ------------------------------------------------------------------ the grid


def run_experiment(config_path: str | Path, out: str | Path, *, quick: bool = False,
                   threads: int | None = None) -> ExperimentResult:
    """Run (or resume) the grid of a config file; write results.csv, results.md and results.png.

    `threads` (e.g. `--threads`) replaces every thread count of the config: labelers, students, export and
    the edge classifier; None keeps the config's (whose own default is `resolve_threads`).
    """
    config = load_config(config_path, quick=quick)
    if threads is not None:
        config = replace(config, threads=threads,
                         labelers=tuple(replace(x, threads=threads) for x in config.labelers),
                         students=tuple(replace(x, threads=threads) for x in config.students))
    return run_config(config, Path(out))


def run_config(config: ExperimentConfig, out: Path) -> ExperimentResult:
    """Run (or resume) an ExperimentConfig into `out`."""
    from llm2edge.hub.label.task import load_task

    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    n_runs = n_cached = 0
    for dataset in config.datasets:
        task = load_task(dataset.task)
        task_labels = list(task.label_names)
        train_csv = prepare_split(dataset, "train", out, seed=config.seed)
        test_csv = prepare_split(dataset, "test", out, seed=config.seed)
        gold_train, gold_test = _gold(train_csv, dataset), _gold(test_csv, dataset)
        for labeler in config.labelers:
            label_dir = out / "labels" / dataset.name / labeler.name
            t0 = time.perf_counter()
            _log(f"{dataset.name}: labeling {len(gold_train)} train + {len(gold_test)} test items with "
                 f"'{labeler.name}' (cached items are skipped)")
            fresh = sum(label_split(dataset, labeler, csv_path, label_dir / f"{split}.jsonl",
                                    threads=config.threads)
                        for split, csv_path in (("train", train_csv), ("test", test_csv)))
            _log(f"{dataset.name}: {fresh} items newly labeled")
            train_labels = load_labels(label_dir / "train.jsonl", task_labels)
            test_labels = load_labels(label_dir / "test.jsonl", task_labels)
            label_seconds = time.perf_counter() - t0
            llm_acc, llm_wf1 = llm_scores(test_labels, gold_test, task_labels)
            llm_train_acc, _ = llm_scores(train_labels, gold_train, task_labels)
            for student in config.students:
                for intervention in config.interventions:
                    steps = parse_intervention(intervention)
                    run_dir = out / "runs" / dataset.name / labeler.name / student.name / intervention
                    key = digest({"dataset": asdict(dataset), "labeler": asdict(labeler),
                                  "student": asdict(student), "curate": asdict(config.curate),
                                  "intervention": intervention, "seed": config.seed,
                                  "evaluate": config.evaluate, "quantize": config.quantize,
                                  "train_labels": digest(train_labels.rows)})
                    result_path = run_dir / "result.json"
                    if result_path.is_file():
                        cached = json.loads(result_path.read_text(encoding="utf-8"))
                        if cached.get("key") == key:
                            rows.append(cached["row"])
                            n_runs += 1
                            n_cached += 1
                            _write_outputs(out, rows, config)
                            continue
                    _fresh_run_dir(run_dir, key)
                    _log(f"{dataset.name} / {labeler.name} / {student.name} / {intervention}: training")
                    t1 = time.perf_counter()
                    train_rows, stats = training_rows(steps, train_labels, gold_train, config, dataset,
                                                      student, out)
                    test_texts, test_gold = _write_test(run_dir / "test.csv", test_csv, dataset)
                    metrics = train_and_evaluate(train_rows, "soft" in steps, task_labels, dataset, student,
                                                 config, run_dir, run_dir / "test.csv", test_texts, test_gold)
                    row = {"dataset": dataset.name, "labeler": labeler.name, "intervention": intervention,
                           "student": student.name, "n_train": len(train_rows), **stats,
                           "n_test": len(gold_test), "llm_acc": llm_acc, "llm_wf1": llm_wf1,
                           "llm_train_acc": llm_train_acc, "seconds": round(time.perf_counter() - t1, 1),
                           "label_seconds": round(label_seconds, 1), **metrics}
                    write_json(result_path, {"key": key, "row": row})
                    if not config.keep_models:
                        for sub in ("model", "bundle"):
                            shutil.rmtree(run_dir / sub, ignore_errors=True)
                    rows.append(row)
                    n_runs += 1
                    _log(f"{dataset.name} / {intervention}: edge acc {row['edge_acc']:.3f} "
                         f"(LLM labels {llm_acc:.3f}) in {row['seconds']:.0f} s")
                    _write_outputs(out, rows, config)
    _write_outputs(out, rows, config, plot=True)
    return ExperimentResult(out, n_runs, n_cached, rows)


def _fresh_run_dir(run_dir: Path, key: str) -> None:
    """Keep a crashed run's checkpoints only if they belong to the same run settings (`key`)."""
    marker = run_dir / "run_key.txt"
    if run_dir.is_dir() and (not marker.is_file() or marker.read_text().strip() != key):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(key + "\n")


def _write_outputs(out: Path, rows: Sequence[dict[str, Any]], config: ExperimentConfig, *,
                   plot: bool = False) -> None:
    """Rewrite results.csv and results.md (and the plot at the end) from the rows so far."""
    write_csv(out / "results.csv", rows)
    cur = config.curate
    steps = {s for name in config.interventions for s in parse_intervention(name)}
    notes = [
        f"config: `{config.source}`; seed {config.seed}; evaluated with: "
        f"{', '.join(sorted({str(r.get('evaluated_with')) for r in rows})) or '–'}",
        "LLM labels and edge models are scored on the same test items (test_limit per data set).",
    ]
    if steps & {"experts_confidence", "experts_random"}:
        notes.append(f"experts: {cur.expert_fraction:.0%} of the train items, simulated from gold; "
                     f"confidence = least confident by {cur.by}"
                     f"{' per LLM label (RED-CT)' if cur.stratify else ''}; random = seeded sample.")
    if "cleanlab" in steps:
        notes.append(f"cleanlab: {cur.probs} probabilities ({cur.folds} folds), action {cur.action}; "
                     "expert rows are kept.")
    if "soft" in steps:
        notes.append(f"soft: the LLM's label distribution as the target (expert rows one-hot, smoothing "
                     f"{cur.soft_smoothing}).")
    (out / "results.md").write_text(results_markdown(rows, config.interventions, title=config.name,
                                                     notes=notes), encoding="utf-8")
    if plot and rows:
        results_plot(out / "results.png", rows, config.interventions, title=config.name)
