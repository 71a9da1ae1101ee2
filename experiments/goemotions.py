"""Multi-label, end to end on real data (issue 23's benchmark): GoEmotions (Ekman's 7 labels, Reddit
comments, `../shared/data/goemotions_ekman`, CC BY 4.0).

One seeded sample of `--train` comments from the train split and `--test` comments from the test split.
The embedded LLM (SmolLM2-135M, `llm2edge label --task emotions`, hf backend, one yes/no question per
label) labels both; a MiniLM student is fine-tuned (`llm2edge train --multi-label`, thresholds tuned per
label on its held-back slice), exported to an int8 bundle and run by `llm2edge predict` on the test
comments, once from the LLM's labels and once from the same comments' gold labels (the ceiling for that
many labels). `llm2edge evaluate` scores teacher and students against gold on the same test comments.
Each stage is the CLI a user runs; every file stays under `--work` and a rerun resumes (labels resume, a
finished stage is skipped).

    .venv/bin/python experiments/goemotions.py --work runs/goemotions \
        --out experiments/results/goemotions [--train 1000] [--test 500] [--epochs 3]

Writes results.md (the table, the per-label tables, the speeds) and results.json. Speeds are wall-clock
seconds per comment of the `label` and `predict` commands on this machine (start-up included), with
`--threads` as given: the LLM labels its comments in batches, the edge predicts them one by one.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "goemotions_ekman"
CLI = [str(Path(sys.executable).parent / "llm2edge")]
#: The teachers: `label`'s flags and what to call them (the embedded SmolLM2, as it is and calibrated).
TEACHERS = {"llm": ([], "SmolLM2-135M, embedded"),
            "llm_cal": (["--calibrate"], "SmolLM2-135M, embedded, --calibrate")}


def sample(src: Path, n: int, seed: int, dst: Path) -> None:
    """A seeded sample of `n` rows of `src` written as id,text,label (label `;`-joined)."""
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    with open(dst, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "label"])
        for i in picked:
            w.writerow([f"{src.stem}-{i}", rows[i]["text"], rows[i]["labels"]])


def constant(train: Path, test: Path, dst: Path) -> Path:
    """Predictions giving every test comment the label most frequent in `train` (the chance line)."""
    with open(train, newline="", encoding="utf-8") as f:
        counts = Counter(lab for row in csv.DictReader(f) for lab in row["label"].split(";"))
    with open(test, newline="", encoding="utf-8") as f, open(dst, "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(["id", "label"])
        w.writerows([row["id"], counts.most_common(1)[0][0]] for row in csv.DictReader(f))
    return dst


def run(args: list[str], log: Path) -> float:
    """Run one llm2edge command (stderr to `log`); returns its wall-clock seconds."""
    print("$ llm2edge " + " ".join(args), flush=True)
    start = time.perf_counter()
    with open(log, "a", encoding="utf-8") as err:
        subprocess.run([*CLI, *args], check=True, stderr=err)
    return time.perf_counter() - start


def stage(done: Path, args: list[str], log: Path, timings: dict, key: str) -> None:
    """Run a stage unless `done` exists (a finished earlier run); remember its seconds."""
    if done.exists() and key in timings:
        return
    timings[key] = run(args, log)


def evaluate(pred: Path, gold: Path, log: Path) -> dict:
    """`llm2edge evaluate --json` of pred against gold."""
    out = subprocess.run([*CLI, "evaluate", "--pred", str(pred), "--gold", str(gold), "--json"], check=True,
                         capture_output=True, text=True)
    with open(log, "a", encoding="utf-8") as err:
        err.write(out.stderr)
    return json.loads(out.stdout)


def main() -> None:
    """Run the benchmark and write its report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("runs/goemotions"))
    ap.add_argument("--out", type=Path, default=HERE / "results" / "goemotions")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--test", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--teachers", nargs="+", choices=sorted(TEACHERS), default=sorted(TEACHERS))
    a = ap.parse_args()
    w, log = a.work, a.work / "stderr.log"
    w.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    tfile = w / "timings.json"
    timings = json.loads(tfile.read_text()) if tfile.exists() else {}

    def save() -> None:
        tfile.write_text(json.dumps(timings, indent=2))

    train, test = w / "train.csv", w / "test.csv"
    sample(DATA / "train.csv", a.train, a.seed, train)
    sample(DATA / "test.csv", a.test, a.seed + 1, test)
    threads = ["--threads", str(a.threads)]
    results: dict[str, dict] = {"every comment gets the train sample's most frequent label": evaluate(
        constant(train, test, w / "pred_constant.csv"), test, log)}
    for teacher in a.teachers:
        flags, what = TEACHERS[teacher]
        for split in ("train", "test"):
            out = w / f"{teacher}_{split}.jsonl"
            n = a.train if split == "train" else a.test
            if not (out.exists() and len(out.read_text(encoding="utf-8").splitlines()) >= n):
                timings[f"label_{teacher}_{split}"] = run(
                    ["label", "--task", "emotions", "--data", str(w / f"{split}.csv"), "--id-col", "id",
                     "--out", str(out), "--no-progress", *flags, *threads], log)
                save()
        results[f"teacher ({what})"] = evaluate(w / f"{teacher}_test.jsonl", test, log)
    for name, data in [*((t, w / f"{t}_train.jsonl") for t in a.teachers), ("gold", train)]:
        model, bundle, pred = w / f"student_{name}", w / f"bundle_{name}", w / f"pred_{name}.csv"
        stage(model / "config.json", ["train", "-d", str(data), "-o", str(model), "--multi-label",
                                      "--epochs", str(a.epochs), "--max-length", "64", "--seed", str(a.seed),
                                      "--no-resume", *threads], log, timings, f"train_{name}")
        stage(bundle / "manifest.json", ["export", "--model", str(model), "--out", str(bundle), *threads],
              log, timings, f"export_{name}")
        if pred.exists():
            pred.unlink()
        timings[f"predict_{name}"] = run(["predict", "--bundle", str(bundle), "--input", str(test),
                                          "--output", str(pred), "--id-col", "id", "--no-progress", *threads],
                                         log)
        save()
        manifest = json.loads((bundle / "manifest.json").read_text())
        source = "gold" if name == "gold" else f"the teacher ({TEACHERS[name][1]})"
        results[f"student (MiniLM int8) from {source}'s {a.train} labels"] = {
            **evaluate(pred, test, log),
            "bundle": {k: manifest.get(k) for k in ("quantization", "thresholds", "validation")}}
    save()
    write_report(a, results, timings)


def write_report(a: argparse.Namespace, results: dict, timings: dict) -> None:
    """results.json and results.md under --out."""
    (a.out / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()},
                                                    "results": results, "timings": timings}, indent=2))
    lines = [f"# GoEmotions (Ekman, 7 labels): {a.train} train / {a.test} test comments, seed {a.seed}", "",
             "| who labels the test comments | micro-F1 | macro-F1 | subset accuracy | Hamming loss |",
             "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['micro_f1']:.3f} | {r['macro_f1']:.3f} | {r['subset_accuracy']:.3f} | "
                     f"{r['hamming_loss']:.3f} |")
    per_item = {k: v / (a.train if k.endswith("train") else a.test) for k, v in timings.items()
                if k.startswith(("label_", "predict_"))}
    lines += ["", "| command | seconds per comment |", "|---|---:|"]
    lines += [f"| {k} | {v:.4f} |" for k, v in per_item.items()]
    for name, r in results.items():
        lines += ["", f"## {name}", "", "| label | precision | recall | F1 | support |",
                  "|---|---:|---:|---:|---:|"]
        for row in r.get("per_label", []):
            lines.append(f"| {row['label']} | {row['precision']:.3f} | {row['recall']:.3f} | "
                         f"{row['f1']:.3f} | {row['support']} |")
    (a.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
