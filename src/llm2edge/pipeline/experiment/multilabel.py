"""Multi-label data sets in the experiment grid (a data set whose task declares `multi_label = true`).

Gold labels are label *sets* (`llm2edge.labelsets`: cells `a;b`, parsed when the split is sampled, so a bad
cell is a DataError naming the data file, row and value); the labeler's labels.jsonl holds lists with
per-label probabilities; the student is trained with `TrainConfig.multi_label` (set here, not by the user);
teacher and student are scored with `labelsets.multilabel_report` (micro-F1, macro-F1, subset accuracy,
Hamming loss) from the predictions each run writes (`predictions.csv`: id, gold, teacher, student sets).

What runs on a multi-label data set (`check_multi_label`, when the config is loaded, before any labeling):
the `naive`, `experts_confidence` and `experts_random` interventions (`training_rows`: the multi-label
selection and merge of `sample-experts`/`merge-experts`), "transformer" students, the train/test split with
a live labeler. Anything else (cleanlab, soft, experts_crossval, pool, "head"/"static" students, `folds`,
recorded answers) is a ConfigError naming the data set, never a silent single-label run.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm2edge.errors import ConfigError
from llm2edge.hub.curate.rows import Row
from llm2edge.labelsets import (
    decide,
    join_label_set,
    multilabel_report,
    parse_label_set,
    sets_of,
    thresholds_array,
)
from llm2edge.pipeline.experiment.sources import Split, is_multi_label
from llm2edge.pipeline.experiment.specs import DatasetSpec, ExperimentConfig, StudentSpec

#: The multi-label metrics of a results row, each as llm_<m>, torch_<m> and edge_<m>.
METRICS = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")
#: The interventions a multi-label data set runs: the LLM's sets as they are, or a share of the train rows
#: replaced by their gold sets (simulated experts), picked by `hub.curate.select.select_multi`: the least
#: certain label decision first (`[curate] by = "confidence"`; "margin" has no multi-label meaning) or random.
SUPPORTED_INTERVENTIONS = ("naive", "experts_confidence", "experts_random")
#: The students a multi-label data set trains.
SUPPORTED_STUDENTS = ("transformer",)
#: results.csv's extra columns when a multi-label data set is in the grid.
COLUMNS = ("multi_label", *(f"{who}_{m}" for who in ("llm", "edge") for m in METRICS))


def check_multi_label(config: ExperimentConfig) -> None:
    """ConfigError naming the first multi-label data set and what of the grid it cannot run."""
    for dataset in config.datasets:
        if not is_multi_label(dataset):
            continue
        where = f"{config.source}: data set '{dataset.name}' (multi-label task '{dataset.task}')"
        for name in config.interventions:
            if name not in SUPPORTED_INTERVENTIONS:
                raise ConfigError(f"{where}: intervention '{name}' is not supported on a multi-label data "
                                  f"set (supported: {', '.join(SUPPORTED_INTERVENTIONS)})")
            if name == "experts_confidence" and config.curate.by != "confidence":
                raise ConfigError(f"{where}: experts_confidence with [curate] by = '{config.curate.by}': a "
                                  "label set has no log-prob margin; use by = \"confidence\"")
        for student in config.students:
            if student.student not in SUPPORTED_STUDENTS:
                raise ConfigError(f"{where}: student '{student.name}' is a '{student.student}' student; a "
                                  f"multi-label data set trains {', '.join(SUPPORTED_STUDENTS)} students")
        if config.folds:
            raise ConfigError(f"{where}: folds = {config.folds} is not supported on a multi-label data set "
                              "(use its train/test split)")
        for labeler in config.labelers:
            if labeler.recorded is not None or dataset.recorded is not None:
                raise ConfigError(f"{where}: labeler '{labeler.name}' reads recorded answers, which are "
                                  "single-label; a multi-label data set needs a live labeler")


def _sets(cells: Sequence[str], labels: Sequence[str]) -> list[tuple[str, ...]]:
    """The sets of canonical `a;b` cells (the sampled splits were parsed and checked when written)."""
    return [parse_label_set(c, labels, where="prepared split", allow_empty=True) for c in cells]


def training_rows(intervention: str, split: Split, labels: Sequence[str], config: ExperimentConfig
                  ) -> tuple[list[Row], int]:
    """The training rows of a multi-label intervention and how many carry simulated expert (gold) sets."""
    from llm2edge.hub.curate.merge_multi import apply_expert_sets
    from llm2edge.hub.curate.select import multi_scores, select_multi

    rows: list[Row] = [dict(r) for r in split.train.rows]
    if intervention == "naive":
        return rows, 0
    strategy = "random" if intervention == "experts_random" else "confidence"
    cur = config.curate
    scores = multi_scores(rows, labels, cur.by) if strategy == "confidence" else None
    picked = select_multi(rows, labels, scores, fraction=cur.expert_fraction, strategy=strategy,
                          stratify=cur.stratify, seed=config.seed)
    expert = {rows[i]["id"]: split.gold_train[rows[i]["id"]] for i in picked}
    rows, _ = apply_expert_sets(rows, labels, expert)
    return rows, len(expert)


def _scores(prefix: str, gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], labels: Sequence[str]
            ) -> dict[str, float]:
    """`multilabel_report`'s headline numbers as prefix_<metric>."""
    report = multilabel_report(gold, pred, labels)
    return {f"{prefix}_{m}": float(getattr(report, m)) for m in METRICS}


def _torch_sets(model_dir: Path, texts: Sequence[str], labels: Sequence[str], student: StudentSpec
                ) -> list[tuple[str, ...]]:
    """The trained model's label sets (config.json's label_thresholds) on `texts`, in torch."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from llm2edge.hub.train.evaluation import predict_logits
    from llm2edge.hub.train.multilabel import sigmoid

    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    cuts = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))["label_thresholds"]
    logits = predict_logits(model, tokenizer, texts, max_length=student.max_length,
                            batch_size=max(student.batch_size, 32))
    return sets_of(decide(sigmoid(logits.numpy()), thresholds_array(cuts, labels)), labels)


def _edge_sets(model_dir: Path, bundle: Path, test_csv: Path, texts: Sequence[str], config: ExperimentConfig
               ) -> tuple[list[tuple[str, ...]], dict[str, Any]]:
    """Export the model to an ONNX bundle; the edge Classifier's label sets on `texts` and the export info."""
    from llm2edge.edge import Classifier
    from llm2edge.export import ExportConfig, export_bundle

    info = export_bundle(ExportConfig(model=model_dir, out=bundle, quantize=config.quantize,
                                      validate=test_csv, threads=config.threads, verbose=False))
    clf = Classifier.load(bundle, threads=config.threads)
    sets = [tuple(s) for s in clf.predict(list(texts))]
    return sets, {"evaluated_with": f"edge-{info.quantization}", "export_seconds": round(info.seconds, 1)}


def write_predictions(path: Path, split: Split, teacher: Sequence[Sequence[str]],
                      student: Sequence[Sequence[str]]) -> None:
    """predictions.csv: each test row's id, gold, teacher and student sets (`a;b`)."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "gold", "teacher", "student"])
        for row, gold, t, s in zip(split.test, split.gold_test, teacher, student):
            writer.writerow([row["id"], gold, join_label_set(t), join_label_set(s)])


def multilabel_run(split: Split, intervention: str, labels: list[str], dataset: DatasetSpec, labeler: str,
                   student: StudentSpec, config: ExperimentConfig, run_dir: Path) -> dict[str, Any]:
    """One multi-label student run: train on the intervention's label sets (`training_rows`), score the
    teacher and the student against the gold sets; the results row."""
    from llm2edge.pipeline.experiment.students import train_student

    t1 = time.perf_counter()
    rows, n_experts = training_rows(intervention, split, labels, config)
    result, test_csv, texts = train_student(rows, labels, dataset, student, config, run_dir, split,
                                            multi_label=True)
    model_dir = run_dir / "model"
    extra: dict[str, Any] = {"evaluated_with": "torch"}
    if config.evaluate == "edge":
        predicted, extra = _edge_sets(model_dir, run_dir / "bundle", test_csv, texts, config)
    else:
        predicted = _torch_sets(model_dir, texts, labels, student)
    gold = _sets(split.gold_test, labels)
    teacher = [tuple(t or ()) for t in split.teacher_test]  # an item the LLM failed on: the empty set
    write_predictions(run_dir / "predictions.csv", split, teacher, predicted)
    m = result.metrics or {}
    return {"dataset": dataset.name, "labeler": labeler, "intervention": intervention,
            "student": student.name, "split": split.name, "multi_label": True, "n_train": len(rows),
            "n_experts": n_experts, "n_dropped": 0, "n_test": len(split.test),
            **_scores("llm", gold, teacher, labels),
            **{f"torch_{k}": m.get(k) for k in METRICS}, **_scores("edge", gold, predicted, labels), **extra,
            "collapsed": bool(m.get("collapsed")), "train_seconds": round(result.seconds, 2),
            "seconds": round(time.perf_counter() - t1, 1)}


def headline(row: dict[str, Any]) -> str:
    """A run's numbers for the progress line."""
    if row.get("multi_label"):
        return f"edge micro-F1 {row['edge_micro_f1']:.3f} (LLM labels {row['llm_micro_f1']:.3f})"
    return f"edge acc {row['edge_acc']:.3f} (LLM labels {row['llm_acc']:.3f})"


def markdown_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The multi-label table of results.md: teacher and student micro/macro-F1, subset accuracy, Hamming
    loss (%; Hamming loss: lower is better)."""
    multi = [r for r in rows if r.get("multi_label")]
    if not multi:
        return []
    head = " | ".join(f"{who} {m.replace('_', ' ')}" for who in ("LLM", "student") for m in METRICS)
    lines = ["## Multi-label data sets (%; Hamming loss: lower is better)", "",
             "Scored with `multilabel_report` on the same test items (an item the LLM failed on counts as "
             "the empty set).", "", f"| dataset | labeler | student | intervention | {head} |",
             "|---|---|---|---|" + "---:|" * (2 * len(METRICS))]
    for r in multi:
        cells = [f"{100 * float(r[f'{who}_{m}']):.1f}" for who in ("llm", "edge") for m in METRICS]
        lines.append(f"| {r['dataset']} | {r['labeler']} | {r['student']} | {r['intervention']} | "
                     + " | ".join(cells) + " |")
    return [*lines, ""]
