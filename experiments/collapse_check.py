"""Does the student collapse onto the teacher's majority label? k-fold check on one recorded teacher.

Trains `llm2edge.hub.train.train` on the recorded LLM labels of every fold but one and scores it against
gold on the held-out fold, next to the teacher's own labels on the same rows (issue 10, item 4):

    .venv/bin/python experiments/collapse_check.py --dataset cmv_persuasion --teacher chatgpt \
        --folds 5 --only 0 1 --set epochs=3 lr=1e-4 class_weight=none

`--set key=value` passes TrainConfig fields (numbers and booleans are parsed); `--freeze` trains only the
head on frozen embeddings (fast). One line per fold, then the mean, on stdout; --csv appends them to a file.
Recorded teacher files are internal research data (../shared/recorded_teacher): never ship them.
"""

from __future__ import annotations

import argparse
import ast
import csv
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

RECORDED = Path(os.environ.get("LLM2EDGE_RECORDED_TEACHER",
                               Path(__file__).resolve().parents[2] / "shared" / "recorded_teacher"))


def _value(text: str) -> object:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cmv_persuasion")
    parser.add_argument("--teacher", default="chatgpt")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", type=int, nargs="*", help="fold numbers to run (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fold split (as the experiment's)")
    parser.add_argument("--freeze", action="store_true", help="head only, on frozen embeddings")
    parser.add_argument("--set", nargs="*", default=[], help="TrainConfig fields, key=value")
    parser.add_argument("--csv", type=Path, help="append the per-fold rows to this CSV")
    parser.add_argument("--tag", default="", help="a name for this setting in the CSV")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from llm2edge.hub.train import TrainConfig, train
    from llm2edge.metrics import classification_report
    from llm2edge.pipeline.experiment.sources import fold_of as experiment_folds
    from llm2edge.records import iter_rows, stable_id

    rows = [r for _, r in iter_rows(RECORDED / f"{args.dataset}__{args.teacher}.csv")]
    labels = sorted({r["gold_label"] for r in rows})
    ids = [stable_id(n, r["text"]) for n, r in enumerate(rows)]  # the folds `llm2edge experiment` uses
    by_id = experiment_folds(ids, args.folds, args.seed, args.dataset)
    fold_of = {i: by_id[rid] for i, rid in enumerate(ids)}
    order = list(range(len(rows)))
    settings = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    out_rows = []
    for fold in args.only if args.only else range(args.folds):
        train_rows = [rows[i] for i in order if fold_of[i] != fold]
        test_rows = [rows[i] for i in order if fold_of[i] == fold]
        with tempfile.TemporaryDirectory() as tmp:
            tmpd = Path(tmp)
            for name, part, col in (("train.csv", train_rows, "llm_label"),
                                    ("test.csv", test_rows, "gold_label")):
                with (tmpd / name).open("w", encoding="utf-8", newline="") as fh:
                    w = csv.writer(fh)
                    w.writerow(["text", "label"])
                    w.writerows([r["text"], r[col]] for r in part)
            t0 = time.perf_counter()
            result = train(TrainConfig(data=tmpd / "train.csv", out=tmpd / "model",
                                       eval_data=tmpd / "test.csv", labels=labels, freeze_encoder=args.freeze,
                                       threads=1, progress=False, **settings))
            seconds = time.perf_counter() - t0
            m = result.metrics
            assert m is not None
            pred_counts = {lab: sum(row[j] for row in m["confusion"]) for j, lab in enumerate(m["labels"])}
        gold = [r["gold_label"] for r in test_rows]
        teacher = classification_report(gold, [r["llm_label"] for r in test_rows], labels)
        top = max(pred_counts.values()) / max(1, sum(pred_counts.values()))
        out = {"tag": args.tag, "dataset": args.dataset, "teacher": args.teacher, "fold": fold,
               "freeze": args.freeze, "settings": " ".join(args.set), "n_train": len(train_rows),
               "n_test": len(test_rows), "llm_majority_share": round(max(Counter(
                   r["llm_label"] for r in train_rows).values()) / len(train_rows), 3),
               "teacher_acc": round(teacher.accuracy, 4), "teacher_wf1": round(teacher.weighted_f1, 4),
               "student_acc": round(m["accuracy"], 4), "student_wf1": round(m["weighted_f1"], 4),
               "student_top_share": round(top, 3), "collapsed": m.get("collapsed"),
               "seconds": round(seconds, 1)}
        out_rows.append(out)
        print(" ".join(f"{k}={v}" for k, v in out.items()), flush=True)
    n = len(out_rows)
    mean = {k: round(sum(r[k] for r in out_rows) / n, 4) for k in
            ("teacher_acc", "teacher_wf1", "student_acc", "student_wf1", "student_top_share", "seconds")}
    print("mean " + " ".join(f"{k}={v}" for k, v in mean.items()), flush=True)
    if args.csv:
        new = not args.csv.is_file()
        with args.csv.open("a", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(out_rows[0]))
            if new:
                w.writeheader()
            w.writerows(out_rows)


if __name__ == "__main__":
    sys.exit(main())
