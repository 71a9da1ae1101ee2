"""What a curation writes, shared by the single- and multi-label paths (`confident.curate`,
`multilabel.curate_multi`): the marked rows, the report's common fields, its markdown title, summary and
top-items table, and the report files."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llm2edge.console import warn
from llm2edge.hub.curate.rows import LabeledRows, Row, write_json

if TYPE_CHECKING:
    from llm2edge.hub.curate.confident import CurateConfig


@dataclass(frozen=True)
class CurateResult:
    """What `curate` wrote and found."""

    out: Path
    n_rows: int
    n_flagged: int
    n_written: int
    report: dict[str, Any] = field(default_factory=dict)


def report_head(data: LabeledRows, flagged: np.ndarray, config: CurateConfig, **extra: Any) -> dict[str, Any]:
    """The report fields every curation report opens with: the file, the settings, the counts (`extra`
    after `probs`)."""
    from llm2edge.hub.curate.confident import folds_run

    crossval = config.probs == "crossval"
    return {
        "labels_file": str(config.labels), "method": config.method, "probs": config.probs, **extra,
        "action": config.action, "filter_by": config.filter_by,
        "folds": folds_run(config.crossval.folds, len(data.rows)) if crossval else None,
        "folds_asked": config.crossval.folds if crossval else None,
        "oof_class_weight": config.crossval.oof_class_weight if crossval else None,
        "labels": list(data.labels), "rows": len(data.rows), "skipped_error": data.skipped_error,
        "superseded_duplicates": data.duplicates, "flagged": int(flagged.sum()),
        "flagged_fraction": round(float(flagged.mean()), 4),
    }


def top_flagged(rows: Sequence[Row], issues: Any, top: int, suggested: Sequence[Any]) -> list[dict[str, Any]]:
    """The report's `top` examples: the `top` flagged rows by issue score (ties in row order)."""
    ranked = [i for i in np.argsort(-issues.score, kind="stable") if issues.flagged[i]][:top]
    return [{"id": rows[i]["id"], "text": rows[i]["text"], "label": rows[i]["label"],
             "suggested": suggested[i], "score": round(float(issues.score[i]), 4)} for i in ranked]


def md_cell(text: str, width: int = 120) -> str:
    """A text shortened and escaped for one markdown table cell."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def markdown_head(report: dict[str, Any], title: str) -> list[str]:
    """The markdown report's title and summary bullets (file, rows, flagged, note, warnings)."""
    return [
        f"# {title}: {report['method']} on {report['probs']} probabilities",
        "",
        f"- labels file: `{report['labels_file']}`",
        f"- rows: {report['rows']} (skipped with an error: {report['skipped_error']})",
        f"- flagged: {report['flagged']} ({100 * report['flagged_fraction']:.1f}%), "
        f"action: {report['action']}",
        *([f"- note: {report['note']}"] if report.get("note") else []),
        *[f"- warning: {note}" for note in report.get("warnings") or []],
    ]


def markdown_top(top: list[dict[str, Any]], given: str, cell: Callable[[Any], str]) -> list[str]:
    """The markdown table of the top flagged items (`cell` writes a given or suggested label)."""
    lines = ["", f"## Top {len(top)} flagged items", "",
             f"| id | {given} | suggested | score | text |", "|---|---|---|---:|---|"]
    for ex in top:
        lines.append(f"| {ex['id']} | {cell(ex['label'])} | {cell(ex['suggested'])} | {ex['score']:.3f} | "
                     f"{md_cell(ex['text'])} |")
    return lines


def marked_rows(rows: Sequence[Row], issues: Any, action: str, suggested: Sequence[Any],
                extra: Callable[[int], dict[str, Any]] | None = None) -> list[Row]:
    """The rows to write: each with `label_issue`, `issue_score`, `suggested_label` (and `extra(i)`); the
    flagged ones left out when `action` is drop."""
    out_rows: list[Row] = []
    for i, row in enumerate(rows):
        if action == "drop" and issues.flagged[i]:
            continue
        out_rows.append({**row, "label_issue": bool(issues.flagged[i]),
                         "issue_score": round(float(issues.score[i]), 6), "suggested_label": suggested[i],
                         **(extra(i) if extra else {})})
    return out_rows


def publish(out: Path, report: dict[str, Any], out_rows: list[Row], issues: Any,
            markdown: Callable[[dict[str, Any]], str], warnings: Sequence[str]) -> CurateResult:
    """Finish a curation: count the written rows in the report, print the `warnings`, write report.json and
    report.md (by `markdown`) next to the curated labels.jsonl."""
    report["written"] = len(out_rows)
    for note in warnings:
        warn(f"curate: {note}")
    write_json(out / "report.json", report)
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
    return CurateResult(out, report["rows"], int(issues.flagged.sum()), len(out_rows), report)
