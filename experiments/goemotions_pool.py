"""Multi-label students from an unlabeled pool (`train --unlabeled` on label sets): GoEmotions (Ekman's 7
labels, `../shared/data/goemotions_ekman`, CC BY 4.0).

The labeled rows are the 600 comments of `experiments/goemotions.py`'s sample (`--labeled`, its
`train.csv`), labeled by two teachers: gold (a stand-in for a strong LLM; the first 200 and all 600) and
the embedded SmolLM2-135M with `--calibrate` (`llm_cal_train.jsonl`; near chance on this task, as the
README says). The pool is `--pool` other comments of the train split (text only, none of the labeled
ones). Each student (static, frozen-encoder MiniLM, MiniLM fine-tuned 3 epochs) trains with and without
the pool (`--pool-method self`, 2 rounds, 4 pool rows per labeled row) for each seed, and is scored on
`--test` comments of the test split (train's `--eval` report at the tuned per-label thresholds:
micro/macro-F1).

    .venv/bin/python experiments/goemotions_pool.py --labeled runs/goemotions --work runs/goemotions_pool \
        --out experiments/results/goemotions_pool [--pool 4000] [--test 1000] [--seeds 0 1] \
        [--teachers gold-200 ...] [--students static frozen fine-tuned]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "goemotions_ekman"
STUDENTS = {"static": {"student": "static"}, "frozen": {"freeze_encoder": True}, "fine-tuned": {"epochs": 3}}
TEACHERS = ("gold-200", "gold-600", "smollm2-cal-600")


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def prepare(labeled: Path, work: Path, pool: int, test: int) -> dict[str, Path]:
    """The teachers' training files, the pool and the test comments under `work`."""
    work.mkdir(parents=True, exist_ok=True)
    train = _read(labeled / "train.csv")
    taken = {r["text"] for r in train}
    rest = [r for r in _read(DATA / "train.csv") if r["text"] not in taken]
    pool_rows = random.Random(7).sample(rest, pool)
    test_rows = random.Random(8).sample(_read(DATA / "test.csv"), test)
    llm = [json.loads(x) for x in (labeled / "llm_cal_train.jsonl").read_text(encoding="utf-8").splitlines()]
    llm = [r for r in llm if not r.get("error") and r.get("label") is not None]
    files = {"gold-200": _write(work / "gold200.csv", train[:200], ["text", "label"]),
             "gold-600": _write(work / "gold600.csv", train, ["text", "label"]),
             "smollm2-cal-600": work / "smol600.jsonl",
             "pool": _write(work / "pool.csv", pool_rows, ["text"]),
             "test": _write(work / "test.csv", [{"text": r["text"], "label": r["labels"]} for r in test_rows],
                            ["text", "label"])}
    with open(files["smollm2-cal-600"], "w", encoding="utf-8") as f:
        for r in llm:
            f.write(json.dumps({"id": r["id"], "text": r["text"], "label": r["label"]}) + "\n")
    return files


def run(files: dict[str, Path], work: Path, seeds: list[int], teachers: list[str], students: list[str]
        ) -> list[dict[str, Any]]:
    """Every teacher x student x pool x seed; the scores and the pool's story per run (a finished run's
    folder is reused: train resumes)."""
    from llm2edge.hub.train import PoolConfig, TrainConfig, train

    out: list[dict[str, Any]] = []
    for teacher in teachers:
        for student in students:
            settings = STUDENTS[student]
            for pooled in (False, True):
                for seed in seeds:
                    folder = work / "runs" / f"{teacher}-{student}-{'pool' if pooled else 'plain'}-{seed}"
                    result = train(TrainConfig(
                        data=files[teacher], out=folder, eval_data=files["test"], multi_label=True, seed=seed,
                        threads=1, progress=False, max_length=64, unlabeled=files["pool"] if pooled else None,
                        pool=PoolConfig(), **settings))
                    m = result.metrics or {}
                    meta = json.loads((folder / "train_meta.json").read_text(encoding="utf-8"))
                    pool = meta.get("pool") or {}
                    row = {"teacher": teacher, "student": student, "pool": pooled, "seed": seed,
                           "micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"],
                           "subset_accuracy": m["subset_accuracy"], "hamming_loss": m["hamming_loss"],
                           "pool_used": pool.get("used", 0), "kept_per_group": pool.get("kept_per_class"),
                           "seconds": round(result.seconds, 1)}
                    print(json.dumps(row), flush=True)
                    out.append(row)
    return out


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Mean micro/macro-F1 (%) over seeds without and with the pool per teacher x student."""
    lines = ["| teacher | student | seeds | micro-F1 | micro-F1 + pool | macro-F1 | macro-F1 + pool "
             "| pool rows |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    keys = list(dict.fromkeys((r["teacher"], r["student"]) for r in rows))
    for teacher, student in keys:
        mine = [r for r in rows if (r["teacher"], r["student"]) == (teacher, student)]
        runs = {pooled: [r for r in mine if r["pool"] == pooled] for pooled in (False, True)}
        cells = [100 * statistics.mean(r[metric] for r in runs[pooled])
                 for metric in ("micro_f1", "macro_f1") for pooled in (False, True)]
        used = statistics.mean(r["pool_used"] for r in runs[True])
        scores = " | ".join(f"{c:.1f}" for c in cells)
        lines.append(f"| {teacher} | {student} | {len(runs[True])} | {scores} | {used:.0f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labeled", type=Path, required=True, help="experiments/goemotions.py's --work")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pool", type=int, default=4000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--teachers", nargs="+", default=list(TEACHERS), choices=TEACHERS)
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    args = parser.parse_args()
    files = prepare(args.labeled, args.work, args.pool, args.test)
    rows = run(files, args.work, args.seeds, args.teachers, args.students)
    args.out.mkdir(parents=True, exist_ok=True)
    old = args.out / "results.json"  # runs of other teachers/students stay in the table
    kept = [r for r in (json.loads(old.read_text(encoding="utf-8")) if old.is_file() else [])
            if (r["teacher"], r["student"], r["pool"], r["seed"]) not in
            {(x["teacher"], x["student"], x["pool"], x["seed"]) for x in rows}]
    rows = kept + rows
    old.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    text = ["# Multi-label students from an unlabeled pool (GoEmotions, Ekman labels)", "",
            f"{args.test} test comments; pool {args.pool} train-split comments (text only); means over the "
            "seeds run (seeds 0, 1, ...); `train --multi-label --unlabeled` (self, 2 rounds, 4 pool rows "
            "per labeled row). "
            "gold-N: N gold label sets (a stand-in for a strong teacher); smollm2-cal-600: the embedded "
            "SmolLM2-135M's calibrated sets on the same 600 comments (near chance on this task).", "",
            *table(rows), ""]
    (args.out / "results.md").write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))


if __name__ == "__main__":
    main()
