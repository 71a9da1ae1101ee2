"""Experiment results: results.csv (one row per run), results.md (tables), results.png (plot)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm2edge.pipeline.experiment.multilabel import COLUMNS as ML_COLUMNS
from llm2edge.pipeline.experiment.specs import StudentSpec

#: Columns of results.csv, in order.
COLUMNS = (
    "dataset", "labeler", "intervention", "student", "n_train", "n_experts", "n_dropped", "n_test",
    "llm_acc", "llm_wf1", "llm_train_acc", "edge_acc", "edge_wf1", "evaluated_with", "seconds",
    "folds", "collapsed", "teacher_collapsed", "collapsed_alone", "fell_back", "keep_collapsed", "keep_acc",
    "keep_wf1",
    "expert_err", "overall_err", "random_err", "err_ratio",
)


def error_rates(row: dict[str, Any]) -> dict[str, float | None]:
    """The LLM's error rate inside the expert sample, overall, in a random sample of the same size, and
    sample / overall, from a row's counts (empty for runs without experts)."""
    if not row.get("err_sampled") or not row.get("err_rows"):
        return {}
    sample = row["err_errors_sampled"] / row["err_sampled"]
    overall = row["err_errors"] / row["err_rows"]
    return {"expert_err": sample, "overall_err": overall, "random_err": row["err_errors_random"] /
            row["err_sampled"], "err_ratio": sample / overall if overall else None}


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write results.csv atomically (a temporary file renamed into place)."""
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        columns = [*COLUMNS, *(ML_COLUMNS if any(r.get("multi_label") for r in rows) else ())]
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            full = {**row, **error_rates(row)}
            writer.writerow({k: _fmt(full.get(k)) for k in columns})
    tmp.replace(out)
    return out


def _fmt(value: Any) -> Any:
    """Floats rounded to 4 places for the CSV."""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4f}"
    return "" if value is None else value


def _cell(value: Any, ref: Any = None) -> str:
    """A metric as a markdown cell, bold when it beats the reference (the LLM labels)."""
    if value is None or value == "":
        return "–"
    text = f"{100 * float(value):.1f}"
    if ref not in (None, "") and float(value) > float(ref):
        return f"**{text}**"
    return text


def results_markdown(rows: Sequence[dict[str, Any]], interventions: Sequence[str], *, title: str = "",
                     notes: Sequence[str] = ()) -> str:
    """Markdown tables: rows = datasets, columns = LLM labels then each intervention (the student, scored
    as `evaluated_with` says: the edge bundle, torch, or the numpy head)."""
    lines = [f"# {title or 'Experiment results'}", ""]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["labeler"], row["student"]), {}).setdefault(row["dataset"], {})[
            row["intervention"]] = row
    lines += summary_lines(rows, interventions)
    lines += pair_lines(rows, interventions)
    for (labeler, student), by_dataset in groups.items():
        for metric, llm_key, edge_key in (("accuracy", "llm_acc", "edge_acc"),
                                          ("weighted F1", "llm_wf1", "edge_wf1")):
            lines += [f"## Student {metric} (%), labeler `{labeler}`, student `{student}`", "",
                      "Bold: the student beats the LLM's own labels on the same test items.", "",
                      "| dataset | LLM labels | " + " | ".join(interventions) + " |",
                      "|---|---:|" + "---:|" * len(interventions)]
            for dataset, runs in by_dataset.items():
                any_run = next(iter(runs.values()))
                ref = any_run.get(llm_key)
                cells = [_cell(runs[i].get(edge_key), ref) if i in runs else "–" for i in interventions]
                lines.append(f"| {dataset} | {_cell(ref)} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += [f"## Training rows / expert labels / dropped by cleanlab, labeler `{labeler}`", "",
                  "| dataset | " + " | ".join(interventions) + " |", "|---|" + "---|" * len(interventions)]
        for dataset, runs in by_dataset.items():
            cells = [f"{runs[i]['n_train']} / {runs[i]['n_experts']} / {runs[i]['n_dropped']}" if i in runs
                     else "–" for i in interventions]
            lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def summary_lines(rows: Sequence[dict[str, Any]], interventions: Sequence[str]) -> list[str]:
    """Headline counts: where the student beats the LLM labels; confidence vs random experts."""
    if not rows:
        return []
    lines = ["## Summary", ""]
    for name in interventions:
        runs = [r for r in rows if r["intervention"] == name and r.get("edge_acc") not in (None, "")]
        if runs:
            wins = sum(float(r["edge_acc"]) > float(r["llm_acc"]) for r in runs)
            wf1 = sum(float(r["edge_wf1"]) > float(r["llm_wf1"]) for r in runs)
            lines.append(f"- `{name}`: the student beats the LLM labels in {wins} of {len(runs)} "
                         f"(accuracy), {wf1} of {len(runs)} (weighted F1)")
    for confident in ("experts_confidence", "experts_crossval"):
        pairs: dict[tuple[str, str, str], dict[str, float]] = {}
        for r in rows:
            if r["intervention"] in (confident, "experts_random"):
                key = (r["dataset"], r["labeler"], r["student"])
                pairs.setdefault(key, {})[r["intervention"]] = float(r["edge_acc"])
        both = [p for p in pairs.values() if len(p) == 2]
        if both:
            better = sum(p[confident] > p["experts_random"] for p in both)
            ties = sum(p[confident] == p["experts_random"] for p in both)
            lines.append(f"- `{confident}` beats `experts_random` in {better} of {len(both)} (ties: {ties}), "
                         "by edge accuracy")
    collapsed = [r for r in rows if _count(r.get("collapsed"))]
    if collapsed:
        runs = sum(_count(r.get("folds")) or 1 for r in rows)
        teacher = sum(_count(r.get("teacher_collapsed")) for r in rows)
        alone = sum(_count(r.get("collapsed_alone")) for r in rows)
        student = sum(_count(r["collapsed"]) for r in collapsed)
        lines.append(f"- collapsed students (one label for >= 95% of a scored slice): {student} of {runs} "
                     f"runs, in {len(collapsed)} of {len(rows)} rows; the teacher's own answers were that "
                     f"one-sided on the test rows in {teacher} runs; the student collapsed where its teacher "
                     f"did not in {alone} (`teacher_collapsed`, `collapsed_alone`)")
    fell = [r for r in rows if r.get("fell_back")]
    if fell:
        folds = sum(int(r["fell_back"]) for r in fell)
        kept = sum(int(r.get("keep_collapsed") or 0) for r in fell)
        both = [r for r in fell if r.get("keep_acc") not in (None, "")]
        gain = [float(r["edge_acc"]) - float(r["keep_acc"]) for r in both]
        gain_f1 = [float(r["edge_wf1"]) - float(r["keep_wf1"]) for r in both]
        lines.append(f"- on-collapse fallback (a head on the frozen encoder when the fine-tuned student "
                     f"gives one label to >= 95% of its held-back slice): {folds} folds in {len(fell)} rows; "
                     f"the fine-tuned weights it replaced had collapsed on the test rows in {kept} of them"
                     + (f"; mean change {100 * np.mean(gain):+.1f} accuracy, {100 * np.mean(gain_f1):+.1f} "
                        "weighted F1 points against keeping them (`keep_acc`, `keep_wf1`)" if gain else ""))
    return [*lines, ""]


def _count(value: Any) -> int:
    """A count column as an int, from a row in memory (bool or int) or read back from results.csv (str)."""
    if isinstance(value, str):
        words = {"true": 1, "false": 0, "": 0}
        return words[value.strip().lower()] if value.strip().lower() in words else int(value)
    return int(value or 0)


def _score(row: dict[str, Any], ref: dict[str, Any] | None = None) -> str:
    """'acc / wF1' of a run (percent), each bold where it beats the teacher's in `ref`."""
    if ref is None:
        return f"{_cell(row['llm_acc'])} / {_cell(row['llm_wf1'])}"
    return f"{_cell(row['edge_acc'], ref['llm_acc'])} / {_cell(row['edge_wf1'], ref['llm_wf1'])}"


def pair_lines(rows: Sequence[dict[str, Any]], interventions: Sequence[str]) -> list[str]:
    """One table row per data set x teacher: the teacher's accuracy / weighted F1 against each intervention's
    student (bold: the student wins), the wins and losses per intervention, and the LLM's error rate inside
    the expert sample against its overall rate (the case for confidence-informed sampling)."""
    groups: dict[tuple[str, str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["labeler"], row["student"]), {})[row["intervention"]] = row
    if not groups:
        return []
    lines = ["## Student vs teacher per data set x teacher (accuracy / weighted F1, %)", "",
             "Bold: the student beats its teacher on the same rows.", "",
             "| data set | teacher | student | teacher's labels | " + " | ".join(interventions) + " |",
             "|---|---|---|---:|" + "---:|" * len(interventions)]
    wins = {name: [0, 0, 0, 0] for name in interventions}  # acc wins, acc losses, wF1 wins, wF1 losses
    for (dataset, labeler, student), runs in groups.items():
        ref = next(iter(runs.values()))
        cells = [_score(runs[i], ref) if i in runs else "–" for i in interventions]
        lines.append(f"| {dataset} | {labeler} | {student} | {_score(ref)} | " + " | ".join(cells) + " |")
        for name, run in runs.items():
            if name in wins:
                for j, key in ((0, "acc"), (2, "wf1")):
                    edge, llm = float(run[f"edge_{key}"]), float(run[f"llm_{key}"])
                    wins[name][j] += edge > llm
                    wins[name][j + 1] += edge < llm
    lines += ["", "| intervention | accuracy: wins / losses | weighted F1: wins / losses |", "|---|---|---|"]
    lines += [f"| {name} | {w[0]} / {w[1]} | {w[2]} / {w[3]} |" for name, w in wins.items()]
    lines += _ratio_lines(groups)
    return [*lines, ""]


def results_plot(path: str | Path, rows: Sequence[dict[str, Any]], interventions: Sequence[str], *,
                 title: str = "") -> Path:
    """Bar charts of the student's accuracy per intervention per data set, the LLM-label accuracy as a dashed
    line: one panel per labeler x student (stacked), so a grid of many teachers stays readable."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        datasets = panels.setdefault((row["labeler"], row["student"]), [])
        if row["dataset"] not in datasets:
            datasets.append(row["dataset"])
    n_data = max((len(d) for d in panels.values()), default=1)
    width = 0.8 / max(1, len(interventions))
    fig, axes = plt.subplots(len(panels) or 1, 1, squeeze=False, figsize=(
        max(7.0, 0.35 * n_data * max(1, len(interventions)) + 4), 3.2 * max(1, len(panels)) + 0.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, ((labeler, student), datasets) in zip(axes[:, 0], panels.items()):
        runs = {(r["dataset"], r["intervention"]): r for r in rows
                if (r["labeler"], r["student"]) == (labeler, student)}
        for j, name in enumerate(interventions):
            xs = [x - 0.4 + width * (j + 0.5) for x, d in enumerate(datasets)
                  if runs.get((d, name), {}).get("edge_acc") not in (None, "")]
            ys = [float(runs[(d, name)]["edge_acc"]) for d in datasets
                  if runs.get((d, name), {}).get("edge_acc") not in (None, "")]
            ax.bar(xs, ys, width=width, label=name, color=colors[j % len(colors)])
        for x, d in enumerate(datasets):
            run = next(r for (dd, _), r in runs.items() if dd == d)
            if run.get("llm_acc") not in (None, ""):
                ax.hlines(float(run["llm_acc"]), x - 0.45, x + 0.45, colors="black", linestyles="dashed",
                          label="LLM labels" if x == 0 else None)
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels(datasets, fontsize=8)
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(f"labeler {labeler}, student {student}", fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.suptitle(title or "Student accuracy per intervention (dashed: the LLM's labels)", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _ratio_lines(groups: dict[tuple[str, str, str], dict[str, dict[str, Any]]]) -> list[str]:
    """Per data set x teacher and expert intervention: the LLM's error rate inside the expert sample,
    overall and in a random sample of the same size (%), and sample / overall; then the median ratio."""
    rates = {(key[0], key[1], name): error_rates(run) for key, runs in groups.items()
             for name, run in runs.items() if error_rates(run)}
    if not rates:
        return []
    names = sorted({name for _, _, name in rates})
    pairs = list(dict.fromkeys((d, t) for d, t, _ in rates))
    lines = ["", "### The LLM's error rate (%) in the expert sample / overall / a random sample of the same "
             "size (sample / overall)", "", "| data set | teacher | " + " | ".join(names) + " |",
             "|---|---|" + "---:|" * len(names)]
    for d, t in pairs:
        cells = []
        for name in names:
            e = rates.get((d, t, name))
            ratio = f"{e['err_ratio']:.2f}x" if e and e.get("err_ratio") is not None else "n/a"
            cells.append(f"{100 * e['expert_err']:.0f} / {100 * e['overall_err']:.0f} / "
                         f"{100 * e['random_err']:.0f} ({ratio})" if e else "–")
        lines.append(f"| {d} | {t} | " + " | ".join(cells) + " |")
    lines.append("")
    for name in names:
        values = [e["err_ratio"] for (_, _, n), e in rates.items() if n == name and e.get("err_ratio")]
        if values:
            lines.append(f"- `{name}`: median ratio {float(np.median(values)):.2f}x over {len(values)} "
                         f"pairs, above 1 in {sum(v > 1 for v in values)}")
    return lines


def student_words(student: StudentSpec) -> str:
    """What a student is, in words, for the results notes."""
    if student.student == "head":
        return "a linear head on frozen, cached sentence embeddings (not fine-tuned, not exported)"
    if student.student == "static":
        return "a static token table + linear head"
    if student.freeze_encoder:
        return "the encoder frozen, its classification head trained"
    return (f"the encoder fine-tuned ({student.epochs} epochs, at least {student.min_steps} steps, lr "
            f"{student.lr:g}, class weights {student.class_weight}, best epoch by {student.best_by})")
