"""Run an experiment grid: labels once per data set x labeler (live or recorded), then train and score one
student per intervention (per fold with `folds`), caching everything so a rerun only does what is missing.

Layout of the output folder:

    data/<dataset>/{train,test}.csv            the sampled items (id, text, fields, gold label)
    labels/<dataset>/<labeler>/{train,test}.jsonl   LLM labels (the labeling store: resumable, keyed), or
    labels/<dataset>/<labeler>/recorded.jsonl  recorded answers brought in with import-labels
    embeddings/<dataset>-<student>.npy (+ .json)   frozen student embeddings by text (cleanlab, crossval
                                               experts and soft targets, the "head" student)
    runs/<dataset>/<labeler>/<student>/<intervention>/[fold-<k>/]  train.jsonl, result.json (model/ and
                                               bundle/ removed after evaluation unless keep_models)
    results.csv, results.md, results.png

The LLM is scored on the same items as the student: the test split, or with `folds` every labeled row
(each scored once, by a student trained on the other folds; the folds' confusion matrices are pooled).
The LLM's accuracy on the rows the student learns from is `llm_train_acc`. Expert labels are simulated from
gold, as RED-CT does; each expert run also records the LLM's error rate inside the expert sample, overall
and in a random sample of the same size (`hub.curate.gold.sample_error_rates`). A data set whose task is
multi-label runs `multilabel` (label sets; micro/macro-F1, subset accuracy, Hamming loss; experts, cleanlab
and soft targets per label).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.console import say, warn
from llm2edge.errors import DataError
from llm2edge.hashing import digest, file_digest
from llm2edge.hub.curate.experts import apply_expert_labels, select_experts
from llm2edge.hub.curate.rows import LabeledRows, Row, write_json
from llm2edge.hub.curate.soft import build_soft_labels
from llm2edge.metrics import report_from_confusion
from llm2edge.pipeline.experiment import multilabel as ml
from llm2edge.pipeline.experiment.config import load_config
from llm2edge.pipeline.experiment.report import results_markdown, results_plot, student_words, write_csv
from llm2edge.pipeline.experiment.sources import (
    NO_LABEL,
    Split,
    check_recorded,
    error_counts,
    load_source,
    task_labels,
)
from llm2edge.pipeline.experiment.specs import (
    EXPERT_STEPS,
    LATER_DATASET_FIELDS,
    DatasetSpec,
    ExperimentConfig,
    StudentSpec,
    curate_key,
    parse_intervention,
    student_key,
)
from llm2edge.pipeline.experiment.students import embeddings, train_and_evaluate
from llm2edge.pipeline.experiment.unlabeled import POOL_STEP, load_pool, pool_rows, pool_train_rows

#: The counts behind the expert-sample error rates, summed over folds.
ERROR_COUNTS = ("err_rows", "err_sampled", "err_errors", "err_errors_sampled", "err_errors_random")


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


# ------------------------------------------------------------------ interventions


def _oof(rows: Sequence[Row], labels: Sequence[str], features: np.ndarray, config: ExperimentConfig,
         memo: dict[str, Any] | None = None) -> Any:
    """Out-of-fold class probabilities of the rows' labels on their embeddings (curate.oof); `memo` keeps
    them for the same rows and labels (the interventions of one split share them)."""
    from llm2edge.hub.curate.oof import CrossvalConfig, oof_probs

    key = digest([[r["id"], r["label"]] for r in rows] + [list(labels), config.curate.folds, config.seed,
                                                        config.curate.oof_class_weight])
    if memo is not None and key in memo:
        return memo[key]
    settings = CrossvalConfig(folds=config.curate.folds, seed=config.seed,
                              oof_class_weight=config.curate.oof_class_weight)
    probs = oof_probs(rows, labels, settings, features=features)
    if memo is not None:
        memo[key] = probs
    return probs


def training_rows(steps: Sequence[str], labels: LabeledRows, gold: dict[str, str], config: ExperimentConfig,
                  dataset: DatasetSpec, student: StudentSpec, out: Path, *, memo: dict[str, Any] | None = None
                  ) -> tuple[list[Row], dict[str, int]]:
    """The training rows of an intervention: experts merged, then cleanlab drops, then soft targets.
    `memo` shares out-of-fold probabilities between the interventions of a split."""
    rows = [dict(r) for r in labels.rows]
    stats: dict[str, int] = {"n_experts": 0, "n_dropped": 0}
    cur = config.curate
    expert_ids: set[str] = set()
    needs_features = ("cleanlab" in steps and cur.probs == "crossval") or "experts_crossval" in steps or (
        "soft" in steps and cur.soft_from != "llm")
    features = embeddings(dataset, labels.rows, student, out, config) if needs_features else None
    for step in EXPERT_STEPS:
        if step not in steps:
            continue
        strategy = "random" if step == "experts_random" else "confidence"
        by = "crossval" if step == "experts_crossval" else cur.by
        scores = None
        if by == "crossval":  # as `sample-experts --by crossval`: the out-of-fold support of the label
            from llm2edge.hub.curate.oof import label_support

            probs = _oof(rows, labels.labels, features, config, memo)
            scores = [float(v) for v in label_support(rows, labels.labels, probs)]
        picked = select_experts(rows, labels.labels, fraction=cur.expert_fraction, strategy=strategy,
                                stratify=cur.stratify, by=by, seed=config.seed, scores=scores)
        stats.update(error_counts([r["label"] for r in rows], [gold.get(r["id"]) for r in rows], picked,
                                  config.seed))
        expert = {rows[i]["id"]: gold[rows[i]["id"]] for i in picked}
        rows, _ = apply_expert_labels(rows, labels.labels, expert)
        expert_ids = set(expert)
        stats["n_experts"] = len(expert)
    if "cleanlab" in steps:
        from llm2edge.hub.curate.confident import drop_skew, drop_skew_line, find_issues

        oof = _oof(rows, labels.labels, features, config, memo) if cur.probs == "crossval" else None
        oof_weight = cur.oof_class_weight if cur.probs == "crossval" else None
        try:
            issues = find_issues(rows, labels.labels, probs=cur.probs, oof=oof, filter_by=cur.filter_by)
        except DataError as exc:  # e.g. the LLM gave every item the same label: nothing to learn from
            _log(f"{dataset.name}: cleanlab skipped ({exc})")
            flagged: set[str] = set()
        else:
            flagged = {rows[i]["id"] for i in np.flatnonzero(issues.flagged)} - expert_ids  # experts kept
        dropped = np.array([r["id"] in flagged for r in rows], dtype=bool)
        keep = np.flatnonzero(~dropped)
        skew = drop_skew(rows, dropped)
        if skew:
            warn(f"experiment: {dataset.name}: cleanlab {drop_skew_line(skew, oof_weight)}")
        rows = [rows[i] for i in keep]
        if features is not None:
            features = features[keep]
        stats["n_dropped"] = len(flagged)
    if "soft" in steps:
        oof = _oof(rows, labels.labels, features, config, memo) if cur.soft_from != "llm" else None
        rows = build_soft_labels(rows, cur.soft_smoothing, labels.labels, source=cur.soft_from, oof=oof)
    return rows, stats


# ------------------------------------------------------------------ the grid


def run_experiment(config_path: str | Path, out: str | Path, *, quick: bool = False,
                   threads: int | None = None, only: dict[str, list[str]] | None = None) -> ExperimentResult:
    """Run (or resume) the grid of a config file; write results.csv, results.md and results.png.

    `threads` (e.g. `--threads`) replaces every thread count of the config: labelers, students, export and
    the edge classifier; None keeps the config's (whose own default is `resolve_threads`). `only` keeps
    some data sets, labelers or students (`load_config`).
    """
    config = load_config(config_path, quick=quick, only=only)
    if threads is not None:
        config = replace(config, threads=threads,
                         labelers=tuple(replace(x, threads=threads) for x in config.labelers),
                         students=tuple(replace(x, threads=threads) for x in config.students))
    return run_config(config, Path(out))


def run_config(config: ExperimentConfig, out: Path) -> ExperimentResult:
    """Run (or resume) an ExperimentConfig into `out`."""
    check_recorded(config)
    ml.check_multi_label(config)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    counts = {"runs": 0, "cached": 0}
    memo: dict[str, Any] = {}  # out-of-fold probabilities shared by the interventions of a split
    for dataset in config.datasets:
        labels = task_labels(dataset)
        for labeler in config.labelers:
            source = load_source(dataset, labeler, labels, config, out)
            for student in config.students:
                for intervention in config.interventions:
                    if POOL_STEP in parse_intervention(intervention) and dataset.unlabeled is None:
                        continue  # no pool: the pair keeps its other rows (logged once, below)
                    base = out / "runs" / dataset.name / labeler.name / student.name / intervention
                    runs = []
                    for split in source.splits:
                        run_dir = base / split.name if config.folds else base
                        runs.append(_run(split, intervention, labels, dataset, labeler.name, student, config,
                                         run_dir, out, counts, memo, source))
                    row = dict(runs[0]) if runs[0].get("multi_label") else pool_folds(runs, labels) \
                        if config.folds else {**runs[0], **collapse_counts(runs, labels)}
                    row["label_seconds"] = round(source.label_seconds, 1)
                    rows.append(row)
                    _log(f"{dataset.name} / {labeler.name} / {intervention}: {ml.headline(row)}")
                    _write_outputs(out, rows, config)
    _write_outputs(out, rows, config, plot=True)
    return ExperimentResult(out, counts["runs"], counts["cached"], rows)


def run_key(split: Split, intervention: str, dataset: DatasetSpec, labeler: str, student: StudentSpec,
            config: ExperimentConfig) -> str:
    """The cache key of one run: its result.json is reused while the key is unchanged.

    The data set's files enter by content, not location (`located`), so runs made on one machine (a GPU
    job, a CI checkout) are reused on another.
    """
    key = {"dataset": located(dataset), "labeler": labeler, "student": student_key(student),
           "curate": curate_key(config.curate), "intervention": intervention, "seed": config.seed,
           "evaluate": config.evaluate, "quantize": config.quantize, "split": split.name,
           "train_labels": digest(split.train.rows), "test": [r["id"] for r in split.test]}
    if POOL_STEP in parse_intervention(intervention):
        key["pool"] = asdict(config.pool)
    return digest(key)


def located(dataset: DatasetSpec) -> dict[str, Any]:
    """The data set's settings with each file replaced by its checksum and a folder by its name (what a
    recorded folder holds enters a run's key through its rows): nothing that depends on where they lie."""
    def portable(value: Any) -> Any:
        if not isinstance(value, Path):
            return value
        return file_digest(value) if value.is_file() else value.name

    return {name: portable(value) for name, value in asdict(dataset).items()
            if name not in LATER_DATASET_FIELDS or value != LATER_DATASET_FIELDS[name]}


def _run(split: Split, intervention: str, labels: list[str], dataset: DatasetSpec, labeler: str,
         student: StudentSpec, config: ExperimentConfig, run_dir: Path, out: Path, counts: dict[str, int],
         memo: dict[str, Any], source: Any = None) -> dict[str, Any]:
    """One student run on one split (from its result.json when the settings and labels are unchanged)."""
    steps = parse_intervention(intervention)
    key = run_key(split, intervention, dataset, labeler, student, config)
    counts["runs"] += 1
    result_path = run_dir / "result.json"
    if result_path.is_file():
        cached = json.loads(result_path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            counts["cached"] += 1
            return cached["row"]
    _fresh_run_dir(run_dir, key)
    _log(f"{dataset.name} / {labeler} / {student.name} / {intervention} / {split.name}: training")
    if split.train.multi_label:  # label sets: `multilabel`'s run (check_multi_label refused the rest)
        row = ml.multilabel_run(split, intervention, labels, dataset, labeler, student, config, run_dir, out,
                                memo, source)
        return _finish(row, key, result_path, run_dir, config)
    t1 = time.perf_counter()
    train_rows, stats = training_rows(steps, split.train, split.gold_train, config, dataset, student, out,
                                      memo=memo)
    soft, extra = "soft" in steps, None
    if POOL_STEP in steps:  # pool rows labeled from this run's own training rows (never gold, never the LLM)
        pool = load_pool(dataset, student, source, config, out, memo)
        x = embeddings(dataset, train_rows, student, out, config)
        picked, targets, pool_stats = pool_rows(pool, x, train_rows, labels, student, config.pool, config)
        stats.update(pool_stats)
        if student.student == "head":
            extra = (pool.vectors(picked), targets)
        else:
            train_rows = [*train_rows, *pool_train_rows(pool, picked, targets, labels)]
        soft = True
    metrics = train_and_evaluate(train_rows, soft, labels, dataset, student, config, run_dir, split, out,
                                 extra=extra)
    teacher = split.teacher_report(labels)
    train_teacher = sum(r["label"] == split.gold_train.get(r["id"]) for r in split.train.rows)
    row = {"dataset": dataset.name, "labeler": labeler, "intervention": intervention, "student": student.name,
           "split": split.name, "n_train": len(train_rows), **stats, "n_test": len(split.test),
           "llm_acc": teacher.accuracy, "llm_wf1": teacher.weighted_f1, "llm_confusion": teacher.confusion,
           "llm_train_acc": train_teacher / max(1, len(split.train.rows)),
           "seconds": round(time.perf_counter() - t1, 1), **metrics}
    return _finish(row, key, result_path, run_dir, config)


def _finish(row: dict[str, Any], key: str, result_path: Path, run_dir: Path, config: ExperimentConfig
            ) -> dict[str, Any]:
    """Record a run's row in its result.json; remove its model and bundle unless `keep_models`."""
    write_json(result_path, {"key": key, "row": row})
    if not config.keep_models:
        for sub in ("model", "bundle"):
            shutil.rmtree(run_dir / sub, ignore_errors=True)
    return row


def pool_folds(runs: Sequence[dict[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """One results row from the fold runs of an intervention: confusion matrices summed (every row scored
    once), counts summed, the LLM's accuracy on the training rows and the row counts per fold averaged."""
    first = runs[0]
    row = {k: first[k] for k in ("dataset", "labeler", "intervention", "student", "evaluated_with")}
    row.update(split=f"{len(runs)} folds", folds=len(runs),
               n_train=round(float(np.mean([r["n_train"] for r in runs]))),
               n_experts=sum(r["n_experts"] for r in runs), n_dropped=sum(r["n_dropped"] for r in runs),
               **({"n_pool": round(float(np.mean([r["n_pool"] for r in runs])))}
                  if "n_pool" in first else {}),
               n_test=sum(r["n_test"] for r in runs), collapsed=sum(bool(r.get("collapsed")) for r in runs),
               llm_train_acc=float(np.mean([r["llm_train_acc"] for r in runs])),
               seconds=round(sum(r["seconds"] for r in runs), 1))
    for prefix, order in (("llm", [*labels, NO_LABEL]), ("torch", labels), ("edge", labels)):
        report = report_from_confusion(np.sum([r[f"{prefix}_confusion"] for r in runs], axis=0), order)
        row.update({f"{prefix}_acc": report.accuracy, f"{prefix}_wf1": report.weighted_f1,
                    f"{prefix}_confusion": report.confusion})
    if any(r.get("fell_back") for r in runs):  # what on_collapse="keep" would have given, beside
        fell = [bool(r.get("fell_back") and r.get("tuned_confusion")) for r in runs]
        kept = [r["tuned_confusion"] if f else r["torch_confusion"] for r, f in zip(runs, fell)]
        report = report_from_confusion(np.sum(kept, axis=0), labels)
        row.update(fell_back=sum(fell), keep_acc=report.accuracy, keep_wf1=report.weighted_f1,
                   keep_collapsed=sum(bool(r.get("tuned_collapsed") if f else r.get("collapsed"))
                                      for r, f in zip(runs, fell)))
    if all(k in first for k in ERROR_COUNTS):
        row.update({k: sum(r[k] for r in runs) for k in ERROR_COUNTS})
    return {**row, **collapse_counts(runs, labels)}


def collapse_counts(runs: Sequence[dict[str, Any]], labels: Sequence[str]) -> dict[str, int]:
    """Whose collapse it is, per test slice (fold): `teacher_collapsed`, the folds where the teacher's own
    answers give one label to >= COLLAPSE_SHARE of the test rows (gold less skewed); `collapsed_alone`, the
    folds where the student's predictions do while its teacher's do not. A student that copies a constant
    teacher has learned its teacher; one that collapses alone has failed."""
    from llm2edge.hub.train.guard import slice_collapse

    def one_sided(confusion: list[list[int]], columns: Sequence[str]) -> bool:
        return slice_collapse({"labels": list(columns), "confusion": confusion}, "test")["collapsed"]

    teacher = [one_sided(r["llm_confusion"], [*labels, NO_LABEL]) for r in runs]
    student = [one_sided(r["edge_confusion"], labels) for r in runs]
    return {"teacher_collapsed": sum(teacher),
            "collapsed_alone": sum(s and not t for s, t in zip(student, teacher))}


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
        f"{config.folds}-fold cross-validation over the labeled rows: every row is scored once, by a student "
        "trained on the other folds' LLM labels; the LLM is scored on the same rows (folds pooled)."
        if config.folds else
        "LLM labels and edge models are scored on the same test items (test_limit per data set).",
        "students: " + "; ".join(f"`{s.name}` = {student_words(s)}" for s in config.students) + ".",
    ]
    if steps & set(EXPERT_STEPS):
        notes.append(f"experts: {cur.expert_fraction:.0%} of the train items, simulated from gold; "
                     f"confidence = least confident by {cur.by}; crossval = lowest out-of-fold support of "
                     f"the LLM label (its probability over the label's mean; logistic regression on frozen "
                     f"student embeddings, {cur.folds} folds)"
                     f"{'; per LLM label (RED-CT)' if cur.stratify else ''}; random = seeded sample.")
    if "cleanlab" in steps:
        notes.append(f"cleanlab: {cur.probs} probabilities ({cur.folds} folds), action {cur.action}; "
                     "expert rows are kept.")
    oof_used = steps & {"cleanlab", "experts_crossval"} or ("soft" in steps and cur.soft_from != "llm")
    if cur.oof_class_weight != "none" and oof_used:
        notes.append(f"out-of-fold model: class weights {cur.oof_class_weight} (each LLM label weighted by "
                     "the inverse of its share).")
    if "soft" in steps:
        source = {"llm": "the LLM's label distribution", "crossval": "out-of-fold probabilities (frozen "
                  "embeddings, logistic regression)", "mix": "the mean of the LLM's and out-of-fold "
                  "probabilities"}[cur.soft_from]
        notes.append(f"soft: {source} as the target (expert rows one-hot, smoothing {cur.soft_smoothing}).")
    single = [r for r in rows if not r.get("multi_label")]
    text = results_markdown(single, config.interventions, title=config.name, notes=notes)
    (out / "results.md").write_text("\n".join([text, *ml.markdown_lines(rows)]), encoding="utf-8")
    if plot and single:
        results_plot(out / "results.png", single, config.interventions, title=config.name)

