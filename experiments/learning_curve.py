"""How many LLM labels to buy, and what unlabeled text adds: a learning curve with a live teacher (issue 22).

Teacher: the embedded SmolLM2-135M-Instruct (constrained label scoring, contextual calibration: the demo's
settings) on the movie-review snippets of examples/movie_sentiment, where it is ~16 points above the
majority class. Gold test rows: examples/movie_sentiment/test.csv (600). Candidates: the other 9,470
snippets of the VADER file (`make_example.py`'s filter), all labeled by the teacher once (resumable).

For N in 250, 500, 1k, 2k, 4k, 8k teacher labels and 3 seeds, a student learns from N labeled candidates,
(a) alone and (b) with every other candidate as an unlabeled pool (`hub.train.pool`: the same code as
`train --unlabeled`); both are scored on the 600 gold rows, beside the teacher on the same rows.
Student: a linear head on frozen MiniLM sentence embeddings (what `train --freeze-encoder` trains; the
experiment grid's `head` student), so the 36 runs fit a 2-core CPU.

    pip download --no-deps --no-binary :all: vaderSentiment==3.3.2 -d /tmp/vader
    python experiments/learning_curve.py --sdist /tmp/vader/vaderSentiment-3.3.2.tar.gz --out runs/lc
    python experiments/learning_curve.py --sdist ... --out runs/lc --labels-from FILE  # labels made elsewhere

Writes OUT/results.csv, results.md, results.png (copy them to experiments/results/learning_curve/).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "movie_sentiment"
SIZES = (250, 500, 1000, 2000, 4000, 8000)
SEEDS = (0, 1, 2)
LABELS = ["negative", "positive"]


def _make_example():
    spec = importlib.util.spec_from_file_location("make_example", EXAMPLE / "make_example.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def prepare(sdist: Path, out: Path) -> tuple[Path, Path]:
    """candidates.csv (id, text, gold) = every usable snippet not in the test split; test.csv (id, text,
    label) = the shipped 600 test rows."""
    make = _make_example()
    test = list(csv.DictReader((EXAMPLE / "test.csv").open(encoding="utf-8")))
    test_texts = {r["text"] for r in test}
    seen: set[str] = set()
    rows = []
    for text, score in make.read_snippets(sdist):
        if abs(score) < make.THRESHOLD or not text or text in seen or text in test_texts:
            continue
        seen.add(text)
        rows.append((f"c{len(rows)}", text, "positive" if score > 0 else "negative"))
    out.mkdir(parents=True, exist_ok=True)
    cand = out / "candidates.csv"
    with cand.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "gold"])
        writer.writerows(rows)
    test_path = out / "test.csv"
    with test_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        writer.writerows((f"t{i}", r["text"], r["label"]) for i, r in enumerate(test))
    print(f"candidates: {len(rows)}; test: {len(test)}", file=sys.stderr)
    return cand, test_path


def label(cand: Path, test: Path, out: Path, threads: int) -> Path:
    """The teacher's labels of the candidates and the test rows (resumable label store)."""
    from llm2edge.hub.label.runner import LabelConfig, label_file

    items = out / "label_items.csv"
    with items.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text"])
        for path in (cand, test):
            for r in csv.DictReader(path.open(encoding="utf-8")):
                writer.writerow([r["id"], r["text"]])
    store = out / "labels.jsonl"
    label_file(LabelConfig(data=items, task="sentiment", out=store, id_col="id", calibrate=True,
                           threads=threads, batch_size=8))
    return store


def teacher(store: Path) -> dict[str, dict]:
    """The latest good answer per id."""
    latest: dict[str, dict] = {}
    for line in store.open(encoding="utf-8"):
        row = json.loads(line)
        if row.get("label") and not row.get("error"):
            latest[str(row["id"])] = row
    return latest


def run(out: Path, store: Path, threads: int, sizes: tuple[int, ...], seeds: tuple[int, ...]) -> list[dict]:
    """Every (N, seed, pool or not) run; returns the result rows."""
    import torch

    from llm2edge.hub.curate.embed import Encoder
    from llm2edge.hub.train import PoolConfig, TrainConfig
    from llm2edge.hub.train.batches import class_weights
    from llm2edge.hub.train.pool_cache import gather, hashes, open_pool
    from llm2edge.hub.train.pool_labels import label_pool
    from llm2edge.hub.train.static import fit_head
    from llm2edge.metrics import classification_report

    answers = teacher(store)
    cand = [r for r in csv.DictReader((out / "candidates.csv").open(encoding="utf-8")) if r["id"] in answers]
    test = list(csv.DictReader((out / "test.csv").open(encoding="utf-8")))
    gold_test = [r["label"] for r in test]
    teacher_test = [answers[r["id"]]["label"] if r["id"] in answers else "<no label>" for r in test]
    t_report = classification_report(gold_test, teacher_test, [*LABELS, "<no label>"])
    encoder = Encoder(None, max_length=64, threads=threads)
    pool_file = out / "pool.csv"
    with pool_file.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text"])
        writer.writerows([r["text"]] for r in cand)
    cache = open_pool(pool_file, "text", model=None, max_length=64, chunk_size=4096, encode=encoder.encode,
                      cache_root=out / "pool_cache")
    x_all = gather(cache, np.arange(cache.rows))  # the candidates in file order
    x_test = encoder.encode([r["text"] for r in test])
    torch.set_num_threads(1)
    results = []
    variants = {"none": None, "pool": PoolConfig(), "pool_unguarded": PoolConfig(check_folds=0)}
    for n in sizes:
        for seed in seeds:
            if n > len(cand):
                continue
            picked = sorted(random.Random(f"lc:{seed}").sample(range(len(cand)), n))
            rows = [cand[i] for i in picked]
            targets = np.array([[answers[r["id"]]["probs"].get(lab, 0.0) for lab in LABELS] for r in rows])
            targets = targets / targets.sum(axis=1, keepdims=True)
            hard = np.eye(len(LABELS))[targets.argmax(axis=1)]
            x = x_all[picked]
            teacher_train = float(np.mean([answers[r["id"]]["label"] == r["gold"] for r in rows]))
            for variant, settings in variants.items():
                t0 = time.perf_counter()
                xs, ys, n_pool = x, hard, 0
                if settings is not None:
                    skip = hashes(r["text"] for r in rows)
                    lab = label_pool(x, hard, cache, skip, settings, seed=seed, class_weight="auto")
                    xs = np.concatenate([x, gather(cache, lab.rows)])
                    ys = np.concatenate([hard, lab.targets])
                    n_pool = len(lab.rows)
                y = torch.from_numpy(ys.astype(np.float32))
                cfg = TrainConfig(data="-", out="-", seed=seed, head_epochs=100, batch_size=32)
                w, b, _ = fit_head(xs, y, len(LABELS), cfg, class_weights(y, len(LABELS), "auto"))
                pred = [LABELS[i] for i in (x_test @ w.T + b).argmax(axis=1)]
                report = classification_report(gold_test, pred, LABELS)
                results.append({"n_labels": n, "seed": seed, "pool": variant, "n_pool": n_pool,
                                "student_acc": round(report.accuracy, 4),
                                "student_macro_f1": round(report.macro_f1, 4),
                                "teacher_acc": round(t_report.accuracy, 4),
                                "teacher_train_acc": round(teacher_train, 4),
                                "seconds": round(time.perf_counter() - t0, 1)})
                print(json.dumps(results[-1]), file=sys.stderr)
    return results


def write(out: Path, results: list[dict]) -> None:
    """results.csv, results.md (means over seeds) and results.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with (out / "results.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    sizes = sorted({r["n_labels"] for r in results})
    teacher_acc = results[0]["teacher_acc"]

    def mean(n: int, pool: str, key: str = "student_acc") -> tuple[float, float]:
        vals = [r[key] for r in results if r["n_labels"] == n and r["pool"] == pool]
        return float(np.mean(vals)), float(np.std(vals))

    lines = ["# Learning curve: SmolLM2-135M teacher -> MiniLM head student, movie-review sentiment", "",
             f"Teacher (SmolLM2-135M-Instruct, calibrated constrained scoring) on the 600 gold test rows: "
             f"**{100 * teacher_acc:.1f}%** accuracy (majority class 52.0%). Students: mean (sd) over "
             f"{len({r['seed'] for r in results})} seeds, accuracy on the same 600 rows.", "",
             "| teacher labels | student | + pool (guarded, default) | pool rows used | + pool, no guard "
             "| pool rows used | best vs teacher |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sizes:
        a, sa = mean(n, "none")
        p, sp = mean(n, "pool")
        u, su = mean(n, "pool_unguarded")
        used, used_u = (np.mean([r["n_pool"] for r in results if r["n_labels"] == n and r["pool"] == v])
                        for v in ("pool", "pool_unguarded"))
        best = max(a, p, u) - teacher_acc
        lines.append(f"| {n:,} | {100 * a:.1f} ({100 * sa:.1f}) | {100 * p:.1f} ({100 * sp:.1f}) | "
                     f"{used:,.0f} | {100 * u:.1f} ({100 * su:.1f}) | {used_u:,.0f} | {100 * best:+.1f} |")
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for pool, name in (("none", "student (LLM labels only)"), ("pool", "+ unlabeled pool (guarded)"),
                       ("pool_unguarded", "+ unlabeled pool (no guard)")):
        m = [mean(n, pool)[0] * 100 for n in sizes]
        s = [mean(n, pool)[1] * 100 for n in sizes]
        ax.errorbar(sizes, m, yerr=s, marker="o", capsize=3, label=name)
    ax.axhline(teacher_acc * 100, color="gray", linestyle="--", label="teacher (SmolLM2-135M)")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax.set_xlabel("LLM labels bought")
    ax.set_ylabel("accuracy on 600 gold rows (%)")
    ax.set_title("How many LLM labels, and what unlabeled text adds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "results.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sdist", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/lc"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--labels-from", type=Path, default=None,
                        help="a labels.jsonl made elsewhere (e.g. on a GPU) instead of labeling here")
    parser.add_argument("--label-only", action="store_true")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--report-only", action="store_true", help="redraw results.md/png from results.csv")
    args = parser.parse_args()
    if args.report_only:
        with (args.out / "results.csv").open(encoding="utf-8") as handle:
            rows = [{k: (float(v) if k.endswith(("acc", "f1", "seconds")) else int(v) if k in
                         ("n_labels", "seed", "n_pool") else v) for k, v in r.items()}
                    for r in csv.DictReader(handle)]
        write(args.out, rows)
        return
    cand, test = prepare(args.sdist, args.out)
    store = args.labels_from or label(cand, test, args.out, args.threads)
    if args.label_only:
        return
    results = run(args.out, store, args.threads, tuple(int(s) for s in args.sizes.split(",")), SEEDS)
    write(args.out, results)


if __name__ == "__main__":
    main()
