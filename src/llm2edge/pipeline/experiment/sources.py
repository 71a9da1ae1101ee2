"""Where an experiment's LLM labels come from, and the splits a student trains and is scored on.

- A live labeler: the data set's train and test files are sampled (`prepare_split`) and labeled by the LLM
  (`label_split`: the resumable labels store).
- A recorded labeler: `<recorded>/<dataset>__<model>.csv` holds an LLM's recorded answers next to gold;
  it is brought in with `import-labels` (one-hot rows, `prob_source: answer`) and joined to gold by id.

`load_source` turns either into `Split`s: the train/test split (folds = 0; a recorded file says which rows
are which in `csv_split`), or k folds over every labeled row (each row scored exactly once, by a student
trained on the other folds' LLM labels; the teacher is scored on the same rows).
"""

from __future__ import annotations

import csv
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from llm2edge.console import say
from llm2edge.errors import ConfigError, DataError, TaskError
from llm2edge.hub.curate.rows import LabeledRows, Row, load_labels
from llm2edge.labelsets import join_label_set
from llm2edge.metrics import Report, classification_report
from llm2edge.pipeline.experiment.specs import DatasetSpec, ExperimentConfig, LabelerSpec
from llm2edge.records import default_id_col, iter_records, iter_rows, stable_id

#: The teacher's "label" of an item it failed on (counted as wrong).
NO_LABEL = "<no label>"


@dataclass(frozen=True)
class Split:
    """What one student run trains on and is scored on."""

    name: str  # "test", or "fold-1" ... "fold-k"
    train: LabeledRows  # the LLM labels the student learns from
    gold_train: dict[str, str]  # id -> gold label of the training rows (simulated experts)
    test: list[Row]  # the rows scored (id, text, fields)
    gold_test: list[str]  # their gold labels, in order
    teacher_test: list[str | None]  # the LLM's label of each test row (None: the LLM failed on it)

    def teacher_report(self, labels: Sequence[str]) -> Report:
        """The teacher against gold on the test rows (a failed item counts as wrong)."""
        return classification_report(self.gold_test, [t or NO_LABEL for t in self.teacher_test],
                                     [*labels, NO_LABEL])


@dataclass(frozen=True)
class Source:
    """The splits of one (data set, labeler) pair and how long getting its labels took."""

    splits: list[Split]
    label_seconds: float


def student_text(row: Row | dict[str, Any], dataset: DatasetSpec) -> str:
    """The text the student reads: the dataset's template over `text` and the per-item fields."""
    fields = row.get("fields") or {}
    try:
        return dataset.student_template.format(text=row["text"], **fields)
    except KeyError as exc:
        raise TaskError(f"data set '{dataset.name}': student_template uses {exc}, which the item lacks"
                        ) from None


# ------------------------------------------------------------------ a live labeler


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
    gold = _gold_cells(rows, src, dataset)
    content = [[r.id, r.text, *(r.fields[f] for f in dataset.fields), g] for r, g in zip(rows, gold)]
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


def task_labels(dataset: DatasetSpec) -> list[str]:
    """The data set's label set: its `labels`, else its task's."""
    if dataset.labels:
        return list(dataset.labels)
    from llm2edge.hub.label.task import load_task

    return list(load_task(dataset.task).label_names)


def is_multi_label(dataset: DatasetSpec) -> bool:
    """Whether the data set's gold labels are sets: its task is multi-label (a data set that lists its
    `labels` has no task file and is single-label)."""
    if dataset.labels:
        return False
    from llm2edge.hub.label.task import load_task

    return load_task(dataset.task).multi_label


def _gold_cells(records: Sequence[Any], src: Path, dataset: DatasetSpec) -> list[str]:
    """The sampled rows' gold labels as written: as read, or for a multi-label task each set parsed (a
    DataError naming the file, row and value) and written in the task's order (`a;b`)."""
    if is_multi_label(dataset):
        from llm2edge.hub.label.task import load_task

        task = load_task(dataset.task)
        return [join_label_set(task.label_set(r.label, f"{src}:{r.line}")) for r in records]
    return [r.label for r in records]


def _prepared(path: Path, dataset: DatasetSpec) -> tuple[list[Row], dict[str, str]]:
    """The rows (id, text, fields) and gold labels by id of a prepared split."""
    rows, gold = [], {}
    for r in iter_records(path, id_col="id", label_col="label", fields=dataset.fields, require_label=True):
        rows.append({"id": r.id, "text": r.text, "fields": dict(r.fields)})
        gold[r.id] = str(r.label)
    return rows, gold


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
        say(f"experiment: {out}: {summary.failed} items failed after all retries (rerun to retry them)")
    return summary.labeled


def _live(dataset: DatasetSpec, labeler: LabelerSpec, labels: Sequence[str], config: ExperimentConfig,
          out: Path) -> tuple[LabeledRows, dict[str, str], LabeledRows, list[Row], dict[str, str]]:
    """Label the sampled train and test items; (train labels, train gold, test labels, test rows, test
    gold)."""
    train_csv = prepare_split(dataset, "train", out, seed=config.seed)
    test_csv = prepare_split(dataset, "test", out, seed=config.seed)
    _, gold_train = _prepared(train_csv, dataset)
    test_rows, gold_test = _prepared(test_csv, dataset)
    label_dir = out / "labels" / dataset.name / labeler.name
    say(f"experiment: {dataset.name}: labeling {len(gold_train)} train + {len(gold_test)} test items with "
        f"'{labeler.name}' (cached items are skipped)")
    fresh = sum(label_split(dataset, labeler, path, label_dir / f"{split}.jsonl", threads=config.threads)
                for split, path in (("train", train_csv), ("test", test_csv)))
    say(f"experiment: {dataset.name}: {fresh} items newly labeled")
    return (load_labels(label_dir / "train.jsonl", labels), gold_train,
            load_labels(label_dir / "test.jsonl", labels), test_rows, gold_test)


# ------------------------------------------------------------------ a recorded labeler


def recorded_file(dataset: DatasetSpec, labeler: LabelerSpec) -> Path | None:
    """The recorded answers of a (data set, labeler) pair (the data set's folder wins), None if live."""
    folder = dataset.recorded or labeler.recorded
    if folder is None:
        return None
    if not labeler.model:
        raise ConfigError(f"data set '{dataset.name}': recorded answers need the labeler's `model`")
    return Path(folder) / f"{dataset.name}__{labeler.model}.csv"


def check_recorded(config: ExperimentConfig) -> None:
    """ConfigError naming the first (data set, labeler) pair whose recorded answers are missing."""
    for dataset in config.datasets:
        for labeler in config.labelers:
            path = recorded_file(dataset, labeler)
            if path is not None and not path.is_file():
                raise ConfigError(f"{config.source}: data set '{dataset.name}', labeler '{labeler.name}': "
                                  f"recorded answers {path} do not exist")


#: Columns of a recorded file that are not per-item fields (besides the labeler's label and gold columns).
RECORDED_COLUMNS = ("text", "id", "csv_split")


def load_recorded(path: Path, dataset: DatasetSpec, labeler: LabelerSpec, labels: Sequence[str], out: Path
                  ) -> tuple[LabeledRows, dict[str, str], dict[str, str]]:
    """Import recorded answers as labels.jsonl; (labels, gold by id, csv_split by id). The file's other
    columns (e.g. a stance file's `target`) become each item's fields, for `student_template`."""
    from llm2edge.hub.label.importer import ImportConfig, import_labels

    header = next(iter(iter_rows(path)), (0, {}))[1]
    known = {*RECORDED_COLUMNS, labeler.recorded_label_col, labeler.recorded_gold_col}
    id_col = default_id_col(path)
    target = out / "labels" / dataset.name / labeler.name / "recorded.jsonl"
    import_labels(ImportConfig(data=path, out=target, labels=",".join(labels), id_col=id_col,
                               label_col=labeler.recorded_label_col, model_name=labeler.model,
                               fields=tuple(str(c) for c in header if c not in known)))
    gold, split = {}, {}
    for n, (line, row) in enumerate(iter_rows(path)):
        rid = str(row[id_col]).strip() if id_col else stable_id(n, str(row["text"]))  # as the import did
        value = str(row.get(labeler.recorded_gold_col) or "").strip()
        if value not in labels:
            raise DataError(f"{path}:{line}: gold label '{value}' in column '{labeler.recorded_gold_col}' is "
                            f"not one of {', '.join(labels)}")
        gold[rid], split[rid] = value, str(row.get("csv_split") or "train")
    return load_labels(target, labels), gold, split


# ------------------------------------------------------------------ splits


def _sample(rows: list[Row], limit: int | None, seed: int, name: str) -> list[Row]:
    """At most `limit` rows, a seeded sample in the original order."""
    if not limit or len(rows) <= limit:
        return rows
    keep = set(random.Random(f"{seed}:{name}:limit").sample(range(len(rows)), limit))
    return [r for i, r in enumerate(rows) if i in keep]


def fold_of(ids: Sequence[str], folds: int, seed: int, name: str) -> dict[str, int]:
    """Each id's fold (0..folds-1): the sorted ids shuffled with a seed per data set, dealt round-robin,
    so every labeler of a data set with the same rows gets the same folds."""
    order = sorted(ids)
    random.Random(f"{seed}:{name}:folds").shuffle(order)
    return {rid: pos % folds for pos, rid in enumerate(order)}


def fold_splits(pool: LabeledRows, gold: dict[str, str], folds: int, seed: int, name: str) -> list[Split]:
    """k splits over the labeled rows of `pool`: fold f is scored, the others train."""
    which = fold_of([r["id"] for r in pool.rows], folds, seed, name)
    splits = []
    for f in range(folds):
        train = [r for r in pool.rows if which[r["id"]] != f]
        test = [r for r in pool.rows if which[r["id"]] == f]
        gold_train = {r["id"]: gold[r["id"]] for r in train}
        splits.append(Split(f"fold-{f + 1}", replace(pool, rows=train), gold_train, test,
                            [gold[r["id"]] for r in test], [r["label"] for r in test]))
    return splits


def load_source(dataset: DatasetSpec, labeler: LabelerSpec, labels: Sequence[str], config: ExperimentConfig,
                out: Path) -> Source:
    """The splits of a (data set, labeler) pair: labeled live or read from recorded answers."""
    t0 = time.perf_counter()
    path = recorded_file(dataset, labeler)
    if path is not None:
        pool, gold, split = load_recorded(path, dataset, labeler, labels, out)
        if config.folds:
            pool = replace(pool, rows=_sample(pool.rows, dataset.limit, config.seed, dataset.name))
            return Source(fold_splits(pool, gold, config.folds, config.seed, dataset.name),
                          time.perf_counter() - t0)
        train = [r for r in pool.rows if split[r["id"]] != "test"]
        test = [r for r in pool.rows if split[r["id"]] == "test"]
        return Source([Split("test", replace(pool, rows=train), {r["id"]: gold[r["id"]] for r in train}, test,
                             [gold[r["id"]] for r in test], [r["label"] for r in test])],
                      time.perf_counter() - t0)
    train, gold_train, test_labels, test_rows, gold_test = _live(dataset, labeler, labels, config, out)
    if config.folds:
        rows = _sample([*train.rows, *test_labels.rows], dataset.limit, config.seed, dataset.name)
        pool = replace(train, rows=rows)
        return Source(fold_splits(pool, {**gold_train, **gold_test}, config.folds, config.seed, dataset.name),
                      time.perf_counter() - t0)
    by_id = {r["id"]: r["label"] for r in test_labels.rows}
    split_ = Split("test", train, gold_train, test_rows, [gold_test[r["id"]] for r in test_rows],
                   [by_id.get(r["id"]) for r in test_rows])
    return Source([split_], time.perf_counter() - t0)


def write_test(path: Path, split: Split, dataset: DatasetSpec) -> list[str]:
    """The split's test rows as the student sees them (text, gold label) in a CSV; returns the texts."""
    texts = [student_text(r, dataset) for r in split.test]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, split.gold_test))
    return texts


def error_counts(llm: Sequence[str], gold: Sequence[str | None], picked: Sequence[int], seed: int
                 ) -> dict[str, int]:
    """The LLM's errors (`llm[i] != gold[i]`, label cells or `a;b` sets) inside the expert sample `picked`,
    overall and in a seeded random sample of the same size: results.csv's err_ counts."""
    from llm2edge.hub.curate.gold import sample_error_rates

    rates = sample_error_rates(llm, gold, picked, seed=seed)
    return {"err_rows": rates.rows, "err_sampled": rates.sampled, "err_errors": rates.errors,
            "err_errors_sampled": rates.errors_sampled,
            "err_errors_random": round(rates.rate_random * rates.sampled)}
