"""Multi-label data sets in the experiment grid (a data set whose task declares `multi_label = true`).

Gold labels are label *sets* (`llm2edge.labelsets`: cells `a;b`, parsed when the split is sampled, so a bad
cell is a DataError naming the data file, row and value); the labeler's labels.jsonl holds lists with
per-label probabilities; the student is trained with `TrainConfig.multi_label` (set here, not by the user);
teacher and student are scored with `labelsets.multilabel_report` (micro-F1, macro-F1, subset accuracy,
Hamming loss) from the predictions each run writes (`predictions.csv`: id, gold, teacher, student sets).

What runs on a multi-label data set (`check_multi_label`, when the config is loaded, before any labeling):
the interventions made of `naive`, the expert steps (`experts_confidence`: the least certain label decision
first, `experts_random`, `experts_crossval`: the least out-of-fold-supported decision first), `cleanlab`
(cleanlab's multi-label issues, `hub.curate.multilabel`) and `soft` (per-label soft targets,
`hub.curate.soft.build_multi_soft`) and `pool` (the unlabeled pool labeled per label from the run's own
training rows, as `train --unlabeled` does on label sets), in that order as in the single-label grid;
"transformer" students; the train/test split with a live labeler. Anything else ("head"/"static" students,
`folds`, recorded answers) is a ConfigError naming the data set, never a silent single-label run.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say, warn
from llm2edge.errors import ConfigError, DataError
from llm2edge.hashing import digest
from llm2edge.hub.curate.rows import Row
from llm2edge.labelsets import (
    decide,
    join_label_set,
    multilabel_report,
    parse_label_set,
    sets_of,
    thresholds_array,
)
from llm2edge.pipeline.experiment.sources import Split, error_counts, is_multi_label
from llm2edge.pipeline.experiment.specs import (
    EXPERT_STEPS,
    DatasetSpec,
    ExperimentConfig,
    StudentSpec,
    parse_intervention,
)

#: The multi-label metrics of a results row, each as llm_<m>, torch_<m> and edge_<m>.
METRICS = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss")
#: The intervention steps a multi-label data set runs: the LLM's sets as they are; a share of the train rows
#: replaced by their gold sets (simulated experts), picked by `hub.curate.select.select_multi`: the least
#: certain label decision first (`[curate] by = "confidence"`; "margin" has no multi-label meaning), the
#: least out-of-fold support first (`experts_crossval`) or random; cleanlab's multi-label drops; soft targets;
#: the data set's unlabeled pool labeled per label from the run's own rows (`pool`, `hub.train.pool_labels`).
SUPPORTED_STEPS = ("naive", "experts_confidence", "experts_random", "experts_crossval", "cleanlab", "soft",
                   "pool")
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
            for step in parse_intervention(name):
                if step not in SUPPORTED_STEPS:
                    raise ConfigError(f"{where}: intervention '{name}': step '{step}' is not supported on a "
                                      f"multi-label data set (supported: {', '.join(SUPPORTED_STEPS)})")
            if "experts_confidence" in parse_intervention(name) and config.curate.by != "confidence":
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


def _oof(rows: Sequence[Row], labels: Sequence[str], features: np.ndarray, config: ExperimentConfig,
         memo: dict[str, Any]) -> np.ndarray:
    """(n, k) out-of-fold per-label probabilities of the rows' own sets on their embeddings
    (`multilabel.crossval_label_probs`); `memo` keeps them for the same rows and sets (the interventions
    of one split share them)."""
    from llm2edge.hub.curate.multilabel import crossval_label_probs, label_matrix

    cur = config.curate
    key = digest(["multi", [[r["id"], list(r["label"])] for r in rows], list(labels), cur.folds, config.seed,
                  cur.oof_class_weight])
    if key not in memo:
        memo[key] = crossval_label_probs(features, label_matrix(rows, labels), folds=cur.folds,
                                         seed=config.seed, class_weight=cur.oof_class_weight)
    return memo[key]


def training_rows(steps: Sequence[str], split: Split, labels: Sequence[str], config: ExperimentConfig,
                  features: np.ndarray | None, memo: dict[str, Any] | None = None, *,
                  where: str = "experiment") -> tuple[list[Row], dict[str, Any]]:
    """The training rows of a multi-label intervention, as the single-label grid builds them: experts merged
    (their rows take the gold set), then cleanlab's multi-label drops (never an expert row), then per-label
    soft targets; with the counts (`n_experts`, `n_dropped`, the expert sample's error counts).
    `features`: the train rows' embeddings (needed by experts_crossval, cleanlab with `probs = "crossval"`
    and soft targets not from the LLM); `memo` shares out-of-fold probabilities between interventions;
    `where` starts the lines it logs (a cleanlab drop that loses a label or leaves one set: a warning)."""
    from llm2edge.hub.curate.confident import drop_skew, drop_skew_line
    from llm2edge.hub.curate.merge_multi import apply_expert_sets
    from llm2edge.hub.curate.multilabel import find_multi_issues, label_confidence, label_matrix
    from llm2edge.hub.curate.select import multi_scores, select_multi
    from llm2edge.hub.curate.soft import build_multi_soft

    memo = {} if memo is None else memo
    rows: list[Row] = [dict(r) for r in split.train.rows]
    stats: dict[str, Any] = {"n_experts": 0, "n_dropped": 0}
    cur = config.curate
    expert_ids: set[str] = set()
    for step in (s for s in EXPERT_STEPS if s in steps):
        strategy = "random" if step == "experts_random" else "confidence"
        scores = None
        if step == "experts_crossval":  # as `sample-experts --by crossval`: the least supported decision
            oof = _oof(rows, labels, features, config, memo)
            scores = [float(v) for v in label_confidence(label_matrix(rows, labels), oof).min(axis=1)]
        elif strategy == "confidence":
            scores = multi_scores(rows, labels, cur.by)
        picked = select_multi(rows, labels, scores, fraction=cur.expert_fraction, strategy=strategy,
                              stratify=cur.stratify, seed=config.seed)
        stats.update(error_counts([join_label_set(r["label"]) for r in rows],  # sets as canonical `a;b`
                                  [split.gold_train.get(r["id"]) for r in rows], picked, config.seed))
        expert = {rows[i]["id"]: split.gold_train[rows[i]["id"]] for i in picked}
        rows, _ = apply_expert_sets(rows, labels, expert)
        expert_ids = set(expert)
        stats["n_experts"] = len(expert)
    if "cleanlab" in steps:
        oof = _oof(rows, labels, features, config, memo) if cur.probs == "crossval" else None
        try:
            issues = find_multi_issues(rows, labels, probs=cur.probs, oof=oof, filter_by=cur.filter_by)
        except DataError as exc:  # e.g. no row carries a label: nothing to compare
            say(f"{where}: cleanlab skipped ({exc})")
            flagged: set[str] = set()
        else:
            flagged = {rows[i]["id"] for i in np.flatnonzero(issues.flagged)} - expert_ids  # experts kept
        skew = drop_skew(rows, np.array([r["id"] in flagged for r in rows], dtype=bool))
        if skew:
            weight = cur.oof_class_weight if oof is not None else None
            warn(f"{where}: cleanlab {drop_skew_line(skew, weight)}")
        keep = [i for i, r in enumerate(rows) if r["id"] not in flagged]
        rows = [rows[i] for i in keep]
        features = None if features is None else features[keep]
        stats["n_dropped"] = len(flagged)
    if "soft" in steps:
        oof = _oof(rows, labels, features, config, memo) if cur.soft_from != "llm" else None
        rows = build_multi_soft(rows, labels, cur.soft_smoothing, source=cur.soft_from, oof=oof)
    return rows, stats


def needs_features(steps: Sequence[str], config: ExperimentConfig) -> bool:
    """Whether an intervention's steps need the train rows' embeddings (out-of-fold probabilities)."""
    cur = config.curate
    return ("experts_crossval" in steps or ("cleanlab" in steps and cur.probs == "crossval")
            or ("soft" in steps and cur.soft_from != "llm"))


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
                   student: StudentSpec, config: ExperimentConfig, run_dir: Path, out: Path,
                   memo: dict[str, Any] | None = None, source: Any = None) -> dict[str, Any]:
    """One multi-label student run: train on the intervention's label sets (`training_rows`, then the pool's
    rows with `pool`), score the teacher and the student against the gold sets; the results row."""
    from llm2edge.pipeline.experiment.students import embeddings, train_student
    from llm2edge.pipeline.experiment.unlabeled import load_pool, pool_rows, pool_train_rows

    t1 = time.perf_counter()
    memo = {} if memo is None else memo
    steps = parse_intervention(intervention)
    features = embeddings(dataset, split.train.rows, student, out, config) \
        if needs_features(steps, config) else None
    rows, stats = training_rows(steps, split, labels, config, features, memo,
                                where=f"experiment: {dataset.name}")
    if "pool" in steps:  # labeled per label from this run's own rows (never gold, never the LLM)
        pool = load_pool(dataset, student, source, config, out, memo)
        x = embeddings(dataset, rows, student, out, config)
        picked, targets, pool_stats = pool_rows(pool, x, rows, labels, student, config.pool, config,
                                                multi_label=True)
        stats.update(pool_stats)
        rows = [*rows, *pool_train_rows(pool, picked, targets, labels, multi_label=True)]
    result, test_csv, texts = train_student(rows, labels, dataset, student, config, run_dir, split,
                                            soft="soft" in steps or "pool" in steps, multi_label=True)
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
            **stats, "n_test": len(split.test),
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
    loss (%; Hamming loss: lower is better), the training rows / expert sets / cleanlab drops, and for
    expert runs the share of wrong LLM sets inside the expert sample against overall (%)."""
    multi = [r for r in rows if r.get("multi_label")]
    if not multi:
        return []
    head = " | ".join(f"{who} {m.replace('_', ' ')}" for who in ("LLM", "student") for m in METRICS)
    lines = ["## Multi-label data sets (%; Hamming loss: lower is better)", "",
             "Scored with `multilabel_report` on the same test items (an item the LLM failed on counts as "
             "the empty set). Rows: training rows (pool rows included) / expert sets / dropped by cleanlab. "
             "Wrong sets: the LLM's sets that are not the gold set, inside the expert sample / over all "
             "training rows. On label "
             "sets, experts_confidence sends the rows with the least certain label decision first, "
             "experts_crossval the rows with the least out-of-fold support for one of their decisions; "
             "cleanlab is its multi-label filter; soft targets are per label.", "",
             f"| dataset | labeler | student | intervention | {head} | rows | wrong sets |",
             "|---|---|---|---|" + "---:|" * (2 * len(METRICS)) + "---|---|"]
    for r in multi:
        cells = [f"{100 * float(r[f'{who}_{m}']):.1f}" for who in ("llm", "edge") for m in METRICS]
        counts = f"{r.get('n_train')} / {r.get('n_experts', 0)} / {r.get('n_dropped', 0)}"
        wrong = (f"{100 * r['err_errors_sampled'] / r['err_sampled']:.0f} / "
                 f"{100 * r['err_errors'] / r['err_rows']:.0f}" if r.get("err_sampled") and r.get("err_rows")
                 else "–")
        lines.append(f"| {r['dataset']} | {r['labeler']} | {r['student']} | {r['intervention']} | "
                     + " | ".join(cells) + f" | {counts} | {wrong} |")
    return [*lines, ""]
