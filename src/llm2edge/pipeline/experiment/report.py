"""Experiment results: results.csv (one row per run), results.md (tables), results.png (plot)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Columns of results.csv, in order.
COLUMNS = (
    "dataset", "labeler", "intervention", "student", "n_train", "n_experts", "n_dropped", "n_test",
    "llm_acc", "llm_wf1", "llm_train_acc", "edge_acc", "edge_wf1", "evaluated_with", "seconds",
)


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """Write results.csv atomically (a temporary file renamed into place)."""
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _fmt(row.get(k)) for k in COLUMNS})
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
    """Markdown tables: rows = datasets, columns = LLM labels then each intervention (edge model)."""
    lines = [f"# {title or 'Experiment results'}", ""]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["labeler"], row["student"]), {}).setdefault(row["dataset"], {})[
            row["intervention"]] = row
    lines += summary_lines(rows, interventions)
    for (labeler, student), by_dataset in groups.items():
        for metric, llm_key, edge_key in (("accuracy", "llm_acc", "edge_acc"),
                                          ("weighted F1", "llm_wf1", "edge_wf1")):
            lines += [f"## Edge {metric} (%), labeler `{labeler}`, student `{student}`", "",
                      "Bold: the edge model beats the LLM's own labels on the same test items.", "",
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
    """Headline counts: where the edge model beats the LLM labels; confidence vs random experts."""
    if not rows:
        return []
    lines = ["## Summary", ""]
    for name in interventions:
        runs = [r for r in rows if r["intervention"] == name and r.get("edge_acc") not in (None, "")]
        if runs:
            wins = sum(float(r["edge_acc"]) > float(r["llm_acc"]) for r in runs)
            wf1 = sum(float(r["edge_wf1"]) > float(r["llm_wf1"]) for r in runs)
            lines.append(f"- `{name}`: the edge model beats the LLM labels in {wins} of {len(runs)} "
                         f"(accuracy), {wf1} of {len(runs)} (weighted F1)")
    pairs = {}
    for r in rows:
        key = (r["dataset"], r["labeler"], r["student"])
        if r["intervention"] in ("experts_confidence", "experts_random"):
            pairs.setdefault(key, {})[r["intervention"]] = float(r["edge_acc"])
    both = [p for p in pairs.values() if len(p) == 2]
    if both:
        better = sum(p["experts_confidence"] > p["experts_random"] for p in both)
        ties = sum(p["experts_confidence"] == p["experts_random"] for p in both)
        lines.append(f"- confidence-based experts beat random experts in {better} of {len(both)} "
                     f"(ties: {ties}), by edge accuracy")
    return [*lines, ""]


def results_plot(path: str | Path, rows: Sequence[dict[str, Any]], interventions: Sequence[str], *,
                 title: str = "") -> Path:
    """A bar chart of edge accuracy per intervention per dataset, the LLM-label accuracy as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = []
    for row in rows:
        key = (row["dataset"], row["labeler"], row["student"])
        if key not in keys:
            keys.append(key)
    multi = len({(k[1], k[2]) for k in keys}) > 1
    width = 0.8 / max(1, len(interventions))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.45 * len(keys) * max(1, len(interventions)) + 4), 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, name in enumerate(interventions):
        xs, ys = [], []
        for x, key in enumerate(keys):
            run = next((r for r in rows if (r["dataset"], r["labeler"], r["student"]) == key
                        and r["intervention"] == name), None)
            if run is not None and run.get("edge_acc") not in (None, ""):
                xs.append(x - 0.4 + width * (j + 0.5))
                ys.append(float(run["edge_acc"]))
        ax.bar(xs, ys, width=width, label=name, color=colors[j % len(colors)])
    for x, key in enumerate(keys):
        run = next(r for r in rows if (r["dataset"], r["labeler"], r["student"]) == key)
        if run.get("llm_acc") not in (None, ""):
            ax.hlines(float(run["llm_acc"]), x - 0.45, x + 0.45, colors="black", linestyles="dashed",
                      label="LLM labels" if x == 0 else None)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"{k[0]}\n{k[1]}/{k[2]}" if multi else k[0] for k in keys], fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title or "Edge model accuracy per intervention (dashed: LLM labels)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
