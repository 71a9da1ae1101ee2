"""The demo's scores and report: the LLM's labels against gold, report.md, and the table on the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llm2edge.metrics import Report, classification_report
from llm2edge.pipeline.bench.report import fmt_ms
from llm2edge.pipeline.demo.config import DemoResult
from llm2edge.pipeline.demo.stages import Row
from llm2edge.records import read_jsonl

#: The label counted for an item the LLM failed to label (always wrong against gold).
NO_LABEL = "<no label>"


def llm_labels(labels_path: Path, rows: list[Row]) -> list[str]:
    """The LLM's label of each row (NO_LABEL where it failed)."""
    by_id = {str(r.get("id")): r.get("label") for r in read_jsonl(labels_path) if not r.get("error")}
    return [str(by_id.get(i) or NO_LABEL) for i, _, _ in rows]


def llm_report(labels_path: Path, rows: list[Row], names: list[str]) -> Report:
    """LLM labels vs gold on `rows` (an item without a label counts as wrong)."""
    pred = llm_labels(labels_path, rows)
    return classification_report([g for _, _, g in rows], pred, [*names, NO_LABEL] if NO_LABEL in pred
                                 else names)


def _num(x: float | None, spec: str = ".3f") -> str:
    """A number in `spec`, or '—' when it is missing."""
    return "—" if x is None else format(x, spec)


def _per_s(ms: float | None) -> str:
    """Items per second from milliseconds per item, or '—'."""
    return _num(1000 / ms, ",.1f") if ms else "—"


def gaps(res: DemoResult, meta: dict[str, Any]) -> dict[str, float]:
    """Accuracy gaps in points on the test split: the teacher over the majority class, the student over it,
    and the student minus its teacher (what the demo shows: a teacher worth distilling, a student that keeps
    up)."""
    teacher, student, majority = res.llm_test.accuracy, res.edge_test.accuracy, meta["majority_acc"]
    return {"teacher_over_majority": round(100 * (teacher - majority), 1),
            "student_over_majority": round(100 * (student - majority), 1),
            "student_minus_teacher": round(100 * (student - teacher), 1)}


def gap_line(res: DemoResult, meta: dict[str, Any]) -> str:
    """One sentence: how far the teacher is above the majority class and where the student lands."""
    g = gaps(res, meta)
    return (f"The teacher is {g['teacher_over_majority']:+.1f} points over the majority class "
            f"({meta['majority']}, {meta['majority_acc']:.3f}); the student is "
            f"{g['student_minus_teacher']:+.1f} points from its teacher "
            f"({g['student_over_majority']:+.1f} over the majority class).")


def _speedup(res: DemoResult) -> float | None:
    """How many times faster per item the edge model is than the LLM (None if either was not timed)."""
    return res.llm_ms / res.edge_ms if res.llm_ms and res.edge_ms else None


def render_report(res: DemoResult, meta: dict[str, Any]) -> str:
    """The demo's report as markdown."""
    f = _num
    speedup = _speedup(res)
    lines = [
        f"# llm2edge demo: {meta['dataset_name']} ({' / '.join(meta['labels'])})", "",
        f"Task `{meta['task']}`; LLM {meta['llm']} (constrained scoring, {meta['shots']}-shot"
        f"{', contextual calibration' if meta['calibrate'] else ''}); student all-MiniLM-L6-v2 trained on "
        f"{meta['n_train_used']} LLM labels ({meta['curation']}; "
        + ("balanced class weights in the loss, against the LLM's skew" if meta["class_weight"] == "balanced"
           else "no class weights")
        + f"); test split: {res.edge_test.n} items, "
        "scored against gold.", "",
        "| model | accuracy | weighted F1 | macro F1 | ms/item | items/s | size |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| LLM labels ({meta['llm']}) | {f(res.llm_test.accuracy)} | {f(res.llm_test.weighted_f1)} | "
        f"{f(res.llm_test.macro_f1)} | {fmt_ms(res.llm_ms) if res.llm_ms else '—'} | {_per_s(res.llm_ms)} | "
        f"{meta['llm_mb']:.0f} MB |",
        f"| edge student (MiniLM-L6, {meta['quantization']} ONNX) | {f(res.edge_test.accuracy)} | "
        f"{f(res.edge_test.weighted_f1)} | {f(res.edge_test.macro_f1)} | "
        f"{fmt_ms(res.edge_ms) if res.edge_ms else '—'} | "
        f"{_per_s(res.edge_ms)} | {res.bundle_mb:.1f} MB |",
        f"| majority class ({meta['majority']}) | {f(meta['majority_acc'])} | — | — | — | — | — |",
        "",
        f"- {gap_line(res, meta)}",
        f"- Speed-up: the edge model is **{f(speedup, '.3g')}×** faster per item than the LLM "
        f"(batch 1, {meta['threads']} thread(s) each, each in its own process; median call)." if speedup else
        "- Speed-up: not measured (see bench in report.json).",
        f"- LLM label accuracy on the training split: {f(res.llm_train.accuracy)} "
        f"(weighted F1 {f(res.llm_train.weighted_f1)}, n={res.llm_train.n}).",
        f"- The edge model agrees with the LLM's labels on {meta['edge_llm_agreement']:.1%} of the test "
        "items (it learns its teacher; the LLM's test labels are "
        + ", ".join(f"{share:.0%} {name}" for name, share in meta["llm_label_share"].items()) + ").",
        f"- Bundle: `{meta['bundle']}` ({res.bundle_mb:.1f} MB); predictions: `{meta['predictions']}`.",
        f"- Wall time: {res.seconds:.0f} s"
        + (f" (reused: {', '.join(res.reused)})" if res.reused else "") + ".",
        "", "| stage | seconds |", "|---|---:|",
        *[f"| {name}{' (reused)' if name in res.reused else ''} | {sec:.1f} |"
          for name, sec in res.stages.items()],
        "", "## Edge model on the test split", "", res.edge_test.table(),
        "", "## LLM labels on the test split", "", res.llm_test.table(), "",
    ]
    return "\n".join(lines)


def print_table(res: DemoResult, meta: dict[str, Any]) -> None:
    """The headline table on the terminal (rich when available)."""
    speedup = _speedup(res)
    rows = [(f"LLM labels ({meta['llm']})", res.llm_test, res.llm_ms, f"{meta['llm_mb']:.0f} MB"),
            (f"edge student ({meta['quantization']})", res.edge_test, res.edge_ms, f"{res.bundle_mb:.1f} MB")]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich ships with the hub extra
        for name, rep, ms, size in rows:
            print(f"{name}: accuracy {rep.accuracy:.3f}, weighted F1 {rep.weighted_f1:.3f}, "
                  f"{ms or float('nan'):.3g} ms/item, {size}")
        print(f"majority class ({meta['majority']}): accuracy {meta['majority_acc']:.3f}")
    else:
        table = Table(title=f"llm2edge demo: {meta['dataset_name']} (test split, n={res.edge_test.n})")
        for col in ("model", "accuracy", "weighted F1", "ms/item", "size"):
            table.add_column(col, justify="left" if col == "model" else "right")
        for name, rep, ms, size in rows:
            table.add_row(name, f"{rep.accuracy:.3f}", f"{rep.weighted_f1:.3f}", fmt_ms(ms) if ms else "—",
                          size)
        table.add_row(f"majority class ({meta['majority']})", f"{meta['majority_acc']:.3f}", "—", "—", "—")
        Console().print(table)
    print(gap_line(res, meta))
    if speedup:
        print(f"edge is {speedup:.3g}x faster per item than the LLM; report: {res.report}")
    else:
        print(f"report: {res.report}")
