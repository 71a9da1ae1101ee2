"""The deferral trade on the recorded-teacher grid (issue 11, item 4): how many LLM calls a student saves
when it keeps only the items it is sure of, and what that does to accuracy.

For every (data set, teacher) pair of `experiments/recorded_teachers.toml`: each row gets an out-of-fold
probability from a student trained on the other folds' teacher labels (5 folds, the experiment's folds);
the rows are then halved at random (seeded): a threshold is calibrated on one half exactly as
`llm2edge calibrate` does (`llm2edge.edge.calibrate`: the lowest top-probability threshold whose agreement
with the teacher's labels on the kept items has a one-sided Clopper-Pearson lower bound >= the target at
95% confidence) and applied to the other half, and the halves swap, so every row is scored once by a
threshold chosen without it. Kept items take the student's label, deferred items the teacher's.

Students (both linear heads, the naive teacher labels, class weights auto as `train` does):
- `minilm-head`: frozen MiniLM sentence embeddings (the experiment's `minilm-head` student);
- `static`: the mean of the static token table's rows (`train --student static --dims 256`).

    .venv/bin/python experiments/deferral.py --out experiments/results/deferral \
        [--cache runs/rt/embeddings] [--only-datasets conv_go_awry ...] [--targets 0.8 0.9 0.95]

Writes results.csv (one row per pair x student x target), results.md (summary and per-pair tables) and
results.png (coverage against agreement with the teacher, and the combined accuracy). The recorded answers
are internal research data (../shared/recorded_teacher), read from there and never shipped.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "recorded_teachers.toml"
#: The confidence of the Clopper-Pearson bound (`llm2edge calibrate --confidence`'s default).
CONFIDENCE = 0.95
STATIC_DIMS = 256
STUDENTS = ("minilm-head", "static")


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Features:
    """Per-student text features: cached frozen sentence embeddings, or static-table mean vectors."""

    def __init__(self, config, cache: Path) -> None:
        from llm2edge.export.static_model import StaticWeights
        from llm2edge.hub.models import default_student, resolve_model
        from llm2edge.hub.train.distill import load_or_distill

        self.config, self.cache = config, cache
        self.head_spec = next(s for s in config.students if s.name == "minilm-head")
        table = load_or_distill(resolve_model(None, default_student), STATIC_DIMS, progress=True)
        self.tokenizer = table.tokenizer(self.head_spec.max_length)
        self.static = StaticWeights(embeddings=table.embeddings,
                                    weight=np.zeros((2, STATIC_DIMS), dtype=np.float32),
                                    bias=np.zeros(2, dtype=np.float32))

    def settings(self, student: str):
        """The head's TrainConfig: the experiment's minilm-head settings, or `train --student static`'s
        defaults."""
        import torch

        from llm2edge.hub.train import TrainConfig

        torch.set_num_threads(1)
        spec = self.head_spec
        fields = {"head_epochs": spec.head_epochs, "batch_size": spec.batch_size,
                  "class_weight": spec.class_weight} if student == "minilm-head" else {}
        return TrainConfig(data=Path("unused.jsonl"), out=self.cache / "unused", seed=self.config.seed,
                           **fields)

    def __call__(self, student: str, dataset, rows) -> np.ndarray:
        """The feature matrix of `rows` (their student texts) for `student`."""
        from llm2edge.pipeline.experiment.sources import student_text

        texts = [student_text(r, dataset) for r in rows]
        if student == "static":
            return self.static.mean_vectors([e.ids for e in self.tokenizer.encode_batch(texts)])
        from llm2edge.pipeline.experiment.students import EmbeddingCache

        return EmbeddingCache(self.cache, dataset, self.head_spec, self.config).vectors(texts)


def oof_probs(splits, labels: list[str], x_of, settings) -> tuple[list[str], np.ndarray]:
    """Out-of-fold probabilities of every row (ids in fold order) from a head trained on the other folds
    (`fit_head` with the TrainConfig `settings`: epochs, lr, batch size, class weights, seed)."""
    import torch

    from llm2edge.hub.train.batches import class_weights
    from llm2edge.hub.train.static import fit_head

    index = {name: i for i, name in enumerate(labels)}
    ids, probs = [], []
    for split in splits:
        x = x_of(split.train.rows)
        y = torch.tensor([index[r["label"]] for r in split.train.rows], dtype=torch.long)
        w, b, _ = fit_head(x, y, len(labels), settings, class_weights(y, len(labels), settings.class_weight))
        probs.append(softmax(x_of(split.test) @ w.T + b))
        ids += [r["id"] for r in split.test]
    return ids, np.concatenate(probs)


def trade(proba: np.ndarray, labels: list[str], teacher: list[str | None], gold: list[str], target: float,
          seed: int) -> dict:
    """Two-way cross-calibration at `target`: coverage, accuracies and whether the bound was met."""
    from llm2edge.edge.calibrate import choose, selection_curve

    n = len(gold)
    order = np.random.default_rng(seed).permutation(n)
    halves = (order[: n // 2], order[n // 2:])
    student = proba.argmax(axis=1)
    top = proba.max(axis=1)
    agree = np.array([labels[s] == t for s, t in zip(student, teacher)])
    kept = np.zeros(n, dtype=bool)
    met = 0
    for calib, held in (halves, halves[::-1]):
        curve = selection_curve(top[calib], agree[calib], CONFIDENCE)
        chosen = choose(curve, target)
        if chosen is not None:
            met += 1
            kept[held] = top[held] >= curve.thresholds[chosen]
    s_ok = np.array([labels[s] == g for s, g in zip(student, gold)])
    t_ok = np.array([t == g for t, g in zip(teacher, gold)])
    combined = np.where(kept, s_ok, t_ok)
    k = int(kept.sum())
    return {"target": target, "halves_met": met, "coverage": k / n, "llm_calls_saved": k,
            "agreement_kept": float(agree[kept].mean()) if k else None,
            "student_acc_kept": float(s_ok[kept].mean()) if k else None,
            "teacher_acc_kept": float(t_ok[kept].mean()) if k else None,
            "combined_acc": float(combined.mean()), "teacher_acc": float(t_ok.mean()),
            "student_acc": float(s_ok.mean()), "agreement_all": float(agree.mean()), "n": n}


def run(work: Path, cache: Path, targets: list[float], only: list[str] | None) -> tuple[list[dict], dict]:
    """Every pair x student x target: the rows of results.csv, and the curves per (student, pair). The
    imported teacher labels (texts included) go under `work`, never next to the results."""
    from llm2edge.pipeline.experiment.config import load_config
    from llm2edge.pipeline.experiment.sources import load_source

    config = load_config(CONFIG, only={"datasets": only} if only else None)
    features = Features(config, cache)
    rows, curves = [], {}
    for dataset in config.datasets:
        labels = list(dataset.labels)
        for labeler in config.labelers:
            source = load_source(dataset, labeler, labels, config, work)
            gold_of = {r["id"]: g for s in source.splits for r, g in zip(s.test, s.gold_test)}
            teacher_of = {r["id"]: t for s in source.splits for r, t in zip(s.test, s.teacher_test)}
            for student in STUDENTS:
                t0 = time.perf_counter()
                ids, proba = oof_probs(source.splits, labels,
                                       lambda rows_, st=student, ds=dataset: features(st, ds, rows_),
                                       features.settings(student))
                teacher, gold = [teacher_of[i] for i in ids], [gold_of[i] for i in ids]
                curves[student, (dataset.name, labeler.name)] = curve(proba, labels, teacher, gold)
                for target in targets:
                    row = trade(proba, labels, teacher, gold, target, config.seed)
                    rows.append({"dataset": dataset.name, "teacher": labeler.name, "student": student, **row,
                                 "seconds": round(time.perf_counter() - t0, 1)})
                print(f"{dataset.name} / {labeler.name} / {student}: student {rows[-1]['student_acc']:.3f}, "
                      f"teacher {rows[-1]['teacher_acc']:.3f}, coverage "
                      + ", ".join(f"{r['coverage']:.2f}" for r in rows[-len(targets):]), flush=True)
    return rows, curves


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def write_markdown(path: Path, rows: list[dict], targets: list[float], curves: dict | None = None) -> None:
    """Summary per student x target, the fixed-coverage medians (from `curves`), one table per target."""
    lines = ["# Deferral on the recorded-teacher grid (issue 11, item 4)", "",
             "Out-of-fold student probabilities (5 folds, naive teacher labels); thresholds calibrated on "
             "one random half of each pair's rows against the teacher's labels (Clopper-Pearson lower bound "
             f">= target at {CONFIDENCE:.0%} confidence, `llm2edge.edge.calibrate`), applied to the other "
             "half, halves swapped. Kept items: the student's label; deferred: the teacher's. Accuracy "
             "against gold.", "", "## Summary", "",
             "| student | target | pairs with a threshold (both halves) | coverage = LLM calls saved, "
             "median / mean | agreement with teacher on kept (pooled) | combined − teacher accuracy, "
             "median | student alone − teacher, median |", "|---|---:|---:|---:|---:|---:|---:|"]
    for student in STUDENTS:
        for target in targets:
            sel = [r for r in rows if r["student"] == student and r["target"] == target]
            both = sum(r["halves_met"] == 2 for r in sel)
            kept = sum(r["llm_calls_saved"] for r in sel)
            agreeing = sum((r["agreement_kept"] or 0) * r["llm_calls_saved"] for r in sel)
            agree = agreeing / kept if kept else None
            cov = statistics.median(r["coverage"] for r in sel)
            gap = statistics.median(r["combined_acc"] - r["teacher_acc"] for r in sel)
            alone = statistics.median(r["student_acc"] - r["teacher_acc"] for r in sel)
            mean = statistics.mean(r["coverage"] for r in sel)
            lines.append(f"| {student} | {target:.2f} | {both} / {len(sel)} | {_pct(cov)}% / {_pct(mean)}% | "
                         f"{_pct(agree)}% | {100 * gap:+.1f} | {100 * alone:+.1f} |")
    if curves:
        shares = (0.25, 0.5, 0.75)
        at = [int(np.argmin(np.abs(COVERAGES - c))) for c in shares]
        lines += ["", "## Fixed coverage, no guarantee (the most confident share kept, all rows)", "",
                  "| student | " + " | ".join(f"keep {c:.0%}: agreement / edge+LLM − LLM" for c in shares)
                  + " |", "|---|" + "---:|" * len(shares)]
        for student in STUDENTS:
            mine = [c for (st, _), c in curves.items() if st == student]
            cells = [f"{100 * statistics.median(c['agreement'][i] for c in mine):.1f}% / "
                     f"{100 * statistics.median(c['combined_gain'][i] for c in mine):+.1f}" for i in at]
            lines.append(f"| {student} | " + " | ".join(cells) + " |")
    for target in targets:
        lines += ["", f"## Target {target:.2f}, per pair (accuracy %, coverage %)",
                  "", "| data set | teacher | teacher acc | " + " | ".join(
                      f"{s}: student alone | {s}: coverage | {s}: combined" for s in STUDENTS) + " |",
                  "|---|---|---:|" + "---:|" * (3 * len(STUDENTS))]
        pairs = dict.fromkeys((r["dataset"], r["teacher"]) for r in rows)
        for dataset, teacher in pairs:
            cells = []
            base = None
            for student in STUDENTS:
                r = next(x for x in rows if (x["dataset"], x["teacher"], x["student"], x["target"])
                         == (dataset, teacher, student, target))
                base = r["teacher_acc"]
                cov = _pct(r["coverage"]) + ("" if r["halves_met"] == 2 else " (bound not met" + (
                    " in one half)" if r["halves_met"] == 1 else ")"))
                comb = _pct(r["combined_acc"])
                cells += [_pct(r["student_acc"]), cov,
                          f"**{comb}**" if r["combined_acc"] > r["teacher_acc"] else comb]
            lines.append(f"| {dataset} | {teacher} | {_pct(base)} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


#: Coverages at which the curves of results.png are drawn.
COVERAGES = np.linspace(0.05, 1.0, 20)


def curve(proba: np.ndarray, labels: list[str], teacher: list[str | None], gold: list[str]) -> dict:
    """Descriptive curves over all rows: keeping the most confident share c of the items, the agreement
    with the teacher on them and the accuracy of student-kept + teacher-deferred labels, at COVERAGES."""
    order = np.argsort(-proba.max(axis=1), kind="stable")
    student = [labels[i] for i in proba.argmax(axis=1)]
    agree = np.array([student[i] == teacher[i] for i in order], dtype=float)
    s_ok = np.array([student[i] == gold[i] for i in order], dtype=float)
    t_ok = np.array([teacher[i] == gold[i] for i in order], dtype=float)
    n = len(order)
    ks = np.maximum(1, np.round(COVERAGES * n).astype(int))
    return {"agreement": [float(agree[:k].mean()) for k in ks],
            "combined_gain": [float((s_ok[:k].sum() + t_ok[k:].sum()) / n - t_ok.mean()) for k in ks]}


def plot(path: Path, curves: dict, targets: list[float]) -> None:
    """Per student: agreement with the teacher on the kept items, and edge + LLM accuracy minus LLM alone,
    against coverage; one thin line per pair, the median over pairs thick."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(STUDENTS), figsize=(6 * len(STUDENTS), 8), sharex=True, sharey="row")
    x = 100 * COVERAGES
    for col, student in enumerate(STUDENTS):
        mine = [c for (st, _), c in curves.items() if st == student]
        for row, (key, scale, ylabel) in enumerate((
                ("agreement", 100, "agreement with the teacher on kept items (%)"),
                ("combined_gain", 100, "edge + LLM accuracy − LLM alone (points)"))):
            ax = axes[row, col]
            for c in mine:
                ax.plot(x, scale * np.array(c[key]), color="tab:blue", alpha=0.15, lw=1)
            ax.plot(x, scale * np.median([c[key] for c in mine], axis=0), color="tab:blue", lw=2.5,
                    label="median of the pairs")
            if key == "agreement":
                for t in targets:
                    ax.axhline(100 * t, color="tab:red", lw=0.8, ls="--")
                ax.set_title(f"{student}: {len(mine)} data set x teacher pairs")
            else:
                ax.axhline(0, color="grey", lw=0.8)
                ax.set_xlabel("coverage: most confident items kept = LLM calls saved (%)")
            if col == 0:
                ax.set_ylabel(ylabel)
                ax.legend(loc="lower left")
    fig.suptitle("Deferral on the recorded-teacher grid (out-of-fold student confidence; dashed: targets)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    """Run the grid, write the three result files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=None,
                        help="an experiment's embedding cache to reuse (default: embed, in a temp folder)")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.8, 0.9, 0.95])
    parser.add_argument("--only-datasets", nargs="*", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="llm2edge-deferral-") as work:
        rows, curves = run(Path(work), args.cache or Path(work) / "embeddings", args.targets,
                           args.only_datasets)
    with (args.out / "results.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}
                         for r in rows)
    write_markdown(args.out / "results.md", rows, args.targets, curves)
    plot(args.out / "results.png", curves, args.targets)
    print(f"wrote {args.out}/results.csv, results.md, results.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
