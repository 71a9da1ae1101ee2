"""What the out-of-fold model's class weights do to cleanlab and to crossval expert sampling, on the 32
recorded teachers (../shared/recorded_teacher), without training a student.

For every (data set, teacher) pair and every training fold of `recorded_teachers.toml` (the rows a student
would train on), the experiment's own intervention code (`runner.training_rows`) runs twice, with the
out-of-fold model unweighted (`oof_class_weight = "none"`, what the committed grids used) and class-balanced:

- cleanlab: rows dropped, how many of them the teacher had wrong (the drop's precision; the teacher's error
  rate over all rows is the chance level), how many it had right, and how often the drop left one label on
  >= 95% of the kept rows where the teacher's own answers were below that (the skew that made the
  fine-tuned student copy one label);
- experts_crossval: the teacher's error rate inside the 10% expert sample over its error rate overall.

    python experiments/oof_class_weight.py --out experiments/results/oof_class_weight

Writes results.csv (one row per pair and weighting, folds summed) and results.md (the table and totals).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from llm2edge.console import say
from llm2edge.defaults import COLLAPSE_SHARE
from llm2edge.hub.curate.confident import drop_skew
from llm2edge.pipeline.experiment.config import load_config
from llm2edge.pipeline.experiment.runner import training_rows
from llm2edge.pipeline.experiment.sources import load_source

CONFIG = Path(__file__).resolve().parent / "recorded_teachers.toml"
WEIGHTS = ("none", "balanced")
FIELDS = ("dataset", "teacher", "oof_class_weight", "rows", "teacher_err", "dropped", "dropped_wrong",
          "drop_precision", "skewed_folds", "expert_err", "err_ratio")


def pair_stats(config, dataset, labeler, out: Path) -> list[dict]:
    """The two weightings' cleanlab and expert-sample numbers for one pair, summed over its folds."""
    labels = list(dataset.labels)
    source = load_source(dataset, labeler, labels, config, out)
    student = config.students[0]
    rows_out = []
    for weight in WEIGHTS:
        cfg = replace(config, curate=replace(config.curate, oof_class_weight=weight))
        total = wrong = dropped = dropped_wrong = skewed = sampled = sampled_wrong = 0
        for split in source.splits:
            gold = split.gold_train
            train = split.train.rows
            total += len(train)
            wrong += sum(r["label"] != gold[r["id"]] for r in train)
            memo: dict = {}  # one out-of-fold model per fold, shared by the two interventions (as in a grid)
            kept, _ = training_rows(("cleanlab",), split.train, gold, cfg, dataset, student, out, memo=memo)
            kept_ids = {r["id"] for r in kept}
            gone = [r for r in train if r["id"] not in kept_ids]
            dropped += len(gone)
            dropped_wrong += sum(r["label"] != gold[r["id"]] for r in gone)
            skewed += drop_skew(train, np.array([r["id"] not in kept_ids for r in train])) is not None
            _, stats = training_rows(("experts_crossval",), split.train, gold, cfg, dataset, student, out,
                                     memo=memo)
            sampled += stats["err_sampled"]
            sampled_wrong += stats["err_errors_sampled"]
        err = wrong / total
        expert_err = sampled_wrong / max(1, sampled)
        rows_out.append({"dataset": dataset.name, "teacher": labeler.name, "oof_class_weight": weight,
                         "rows": total, "teacher_err": round(err, 4), "dropped": dropped,
                         "dropped_wrong": dropped_wrong,
                         "drop_precision": round(dropped_wrong / dropped, 4) if dropped else "",
                         "skewed_folds": skewed, "expert_err": round(expert_err, 4),
                         "err_ratio": round(expert_err / err, 3) if err else ""})
    return rows_out


def markdown(rows: list[dict]) -> str:
    """The per-pair table and the totals, unweighted vs balanced side by side."""
    by = {(r["dataset"], r["teacher"], r["oof_class_weight"]): r for r in rows}
    pairs = list(dict.fromkeys((r["dataset"], r["teacher"]) for r in rows))
    intro = ("Per pair, summed over the 5 training folds (4/5 of the rows each). **drop**: rows cleanlab "
             "drops; **prec**: share of them the teacher had wrong (its error rate over all rows is the "
             f"chance level); **skew**: folds where the drop left one label on >= {COLLAPSE_SHARE:.0%} of "
             "the kept rows (the teacher's answers were below that); **ratio**: the teacher's error rate "
             "in the 10% experts_crossval sample over its rate overall.")
    lines = ["# Out-of-fold model class weights: none vs balanced (recorded teachers, 5 folds, no training)",
             "", intro, "",
             "| data set | teacher | teacher err | drop (none / bal.) | prec (none / bal.) "
             "| skew (none / bal.) | ratio (none / bal.) |", "|---|---|---:|---:|---:|---:|---:|"]

    def pct(v) -> str:
        return f"{100 * v:.1f}" if v != "" else "–"

    for d, t in pairs:
        a, b = by[(d, t, "none")], by[(d, t, "balanced")]
        lines.append(f"| {d} | {t} | {pct(a['teacher_err'])} | {a['dropped']} / {b['dropped']} | "
                     f"{pct(a['drop_precision'])} / {pct(b['drop_precision'])} | {a['skewed_folds']} / "
                     f"{b['skewed_folds']} | {a['err_ratio']} / {b['err_ratio']} |")
    lines += ["", "| weighting | rows dropped | of them wrong | precision − teacher error (median, points) | "
              "skewed folds | ratio median | ratio > 1 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for w in WEIGHTS:
        sub = [r for r in rows if r["oof_class_weight"] == w]
        dropped = sum(r["dropped"] for r in sub)
        wrong = sum(r["dropped_wrong"] for r in sub)
        lift = statistics.median(100 * (r["drop_precision"] - r["teacher_err"]) for r in sub
                                 if r["drop_precision"] != "")
        ratios = [r["err_ratio"] for r in sub if r["err_ratio"] != ""]
        lines.append(f"| {w} | {dropped} | {wrong} ({100 * wrong / max(1, dropped):.1f}%) | {lift:+.1f} | "
                     f"{sum(r['skewed_folds'] for r in sub)} | {statistics.median(ratios):.2f} | "
                     f"{sum(x > 1 for x in ratios)} of {len(ratios)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run every pair (or `--only-datasets`) and write results.csv and results.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--work", type=Path, default=Path("runs/oof_class_weight"),
                        help="imported labels and cached embeddings")
    parser.add_argument("--only-datasets", default=None, help="comma-separated data set names")
    args = parser.parse_args(argv)
    only = {"students": ["minilm-head"]}
    if args.only_datasets:
        only["datasets"] = args.only_datasets.split(",")
    config = load_config(args.config, only=only)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for dataset in config.datasets:
        for labeler in config.labelers:
            rows += pair_stats(config, dataset, labeler, args.work)
            say(f"oof_class_weight: {dataset.name} / {labeler.name}: " + "; ".join(
                f"{r['oof_class_weight']}: drop {r['dropped']} prec {r['drop_precision']} skew "
                f"{r['skewed_folds']} ratio {r['err_ratio']}" for r in rows[-2:]))
    with (args.out / "results.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    (args.out / "results.md").write_text(markdown(rows), encoding="utf-8")
    say(f"oof_class_weight: wrote {args.out / 'results.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
