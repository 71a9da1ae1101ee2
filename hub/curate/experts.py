"""The expert budget (RED-CT): send the least-confident LLM labels to experts, then merge their answers.

`select_experts` picks the items; `sample_experts` writes them for annotators (review.csv, a Label Studio
import with the LLM label as a prediction, and the Label Studio labeling config); `merge_experts` reads
the annotated CSV or a Label Studio export back, validates every label and writes the merged labels.
RED-CT's rule (`--strategy confidence --stratify`): the same budget for each LLM label, and within each
label the items with the smallest confidence margin.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np

from llm2edge.checks import fraction as check_fraction
from llm2edge.checks import one_of
from llm2edge.defaults import EXPERT_BY, EXPERT_FRACTION, EXPERT_STRATEGY, LABEL_COL, SEED, TEXT_COL
from llm2edge.errors import DataError, TaskError
from llm2edge.hub.curate.rows import (
    LabeledRows,
    Row,
    field_names,
    load_labels,
    row_confidence,
    write_json,
    write_rows,
)
from llm2edge.records import iter_rows, stable_id

STRATEGIES = ("confidence", "random")
SCORES = ("confidence", "margin")
REVIEW_CSV = "review.csv"
LABEL_STUDIO_JSON = "label_studio.json"
LABEL_CONFIG_XML = "label_config.xml"
SAMPLE_JSON = "sample.json"
#: The names the Label Studio config gives the text and the choices (annotations are read by these).
LS_TEXT, LS_CHOICES = "text", "label"


@dataclass(kw_only=True)
class SampleConfig:
    """Options of `llm2edge sample-experts` (checked when built)."""

    #: labels.jsonl written by `llm2edge label`.
    labels: Path
    #: Output folder for review.csv, label_studio.json, label_config.xml, sample.json.
    out: Path
    #: Share of the items to send to experts, in [0, 1].
    fraction: float = EXPERT_FRACTION
    #: "confidence" (the least confident LLM labels) or "random".
    strategy: str = EXPERT_STRATEGY
    #: The same budget for each LLM label (RED-CT's rule).
    stratify: bool = False
    #: The confidence score: "confidence" (top1 - top2 probability) or "margin" (log-prob margin).
    by: str = EXPERT_BY
    #: Seed of the random strategy.
    seed: int = SEED

    def __post_init__(self) -> None:
        check_selection(self.fraction, self.strategy, self.by)


@dataclass(frozen=True)
class SampleResult:
    """What `sample_experts` wrote."""

    out: Path
    n_rows: int
    n_sampled: int
    per_label: dict[str, int]


@dataclass(kw_only=True)
class MergeConfig:
    """Options of `llm2edge merge-experts`."""

    #: labels.jsonl written by `llm2edge label`.
    labels: Path
    #: The annotated review.csv, a Label Studio JSON export, or the folder sample-experts wrote.
    reviewed: Path
    #: The merged labels.jsonl to write.
    out: Path
    #: A gold file: fill the sampled items nobody reviewed from it (simulated experts).
    simulate_from: Path | None = None
    #: Id column of the gold file (None: join by the stable row id, then by text).
    gold_id_col: str | None = None
    #: Label column of the gold file.
    gold_label_col: str = LABEL_COL
    #: Text column of the gold file.
    gold_text_col: str = TEXT_COL


@dataclass(frozen=True)
class MergeResult:
    """What `merge_experts` wrote."""

    out: Path
    n_rows: int
    n_reviewed: int  # items in the review file
    n_expert: int  # rows now labeled by an expert
    n_changed: int  # expert label differs from the LLM label
    n_simulated: int  # expert labels filled from the gold file


def check_selection(fraction: float, strategy: str, by: str) -> None:
    """ConfigError unless the expert budget, strategy and score are usable."""
    check_fraction("fraction", fraction)
    one_of("strategy", strategy, STRATEGIES)
    one_of("by", by, SCORES)


def _budget(n: int, fraction: float) -> int:
    """The number of items a fraction of `n` buys (at least one when the fraction is positive)."""
    if fraction == 0.0 or n == 0:
        return 0
    return min(n, max(1, int(round(fraction * n))))


def _quotas(sizes: Sequence[int], total: int) -> list[int]:
    """Split `total` as evenly as possible over groups of `sizes`; a small group's unused share moves on."""
    quotas = [0] * len(sizes)
    left = min(total, sum(sizes))
    open_groups = [i for i, s in enumerate(sizes) if s > 0]
    while left > 0 and open_groups:
        share, extra = divmod(left, len(open_groups))
        # the remainder goes to the largest open groups first (deterministic)
        ranked = sorted(open_groups, key=lambda i: (-(sizes[i] - quotas[i]), i))
        for rank, i in enumerate(ranked):
            give = min(share + (1 if rank < extra else 0), sizes[i] - quotas[i])
            quotas[i] += give
            left -= give
        open_groups = [i for i in open_groups if quotas[i] < sizes[i]]
    return quotas


def _tiebreak(row: Row) -> str:
    """A stable tie-breaker between equally confident items."""
    return hashlib.sha1(str(row.get("id")).encode("utf-8")).hexdigest()


def select_experts(rows: Sequence[Row], labels: Sequence[str], *, fraction: float = EXPERT_FRACTION,
                   strategy: str = EXPERT_STRATEGY, stratify: bool = False, by: str = EXPERT_BY,
                   seed: int = SEED) -> list[int]:
    """Indices of the rows for experts: the least confident (per LLM label with `stratify`) or random."""
    check_selection(fraction, strategy, by)
    n = _budget(len(rows), fraction)
    rng = np.random.default_rng(seed)
    groups = [list(range(len(rows)))]
    if stratify:
        groups = [[i for i, r in enumerate(rows) if r["label"] == name] for name in labels]
    quotas = _quotas([len(g) for g in groups], n)
    chosen: list[int] = []
    for group, quota in zip(groups, quotas):
        if quota == 0:
            continue
        if strategy == "random":
            chosen.extend(int(i) for i in rng.choice(group, size=quota, replace=False))
        else:
            ranked = sorted(group, key=lambda i: (row_confidence(rows[i], labels, by), _tiebreak(rows[i])))
            chosen.extend(ranked[:quota])
    return sorted(chosen)


def label_config_xml(labels: Sequence[str], fields: Sequence[str] = ()) -> str:
    """The Label Studio labeling config: the text (and its fields), one single choice among the labels."""
    lines = ["<View>"]
    for name in fields:
        lines.append(f"  <Header value={quoteattr(name + ': $' + name)}/>")
    lines.append(f'  <Text name="{LS_TEXT}" value="$text"/>')
    lines.append(f'  <Choices name="{LS_CHOICES}" toName="{LS_TEXT}" choice="single-radio" '
                 'showInline="true">')
    for name in labels:
        lines.append(f"    <Choice value={quoteattr(name)}/>")
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines) + "\n"


def label_studio_tasks(rows: Sequence[Row], labels: Sequence[str], fields: Sequence[str] = ()
                       ) -> list[dict[str, Any]]:
    """Label Studio import tasks: `data` (text, item_id, fields) and the LLM label as a choices prediction."""
    tasks = []
    for row in rows:
        data: dict[str, Any] = {"text": row["text"], "item_id": row["id"]}
        for name in fields:
            data[name] = (row.get("fields") or {}).get(name, "")
        score = round(float(row_confidence(row, labels)), 6)
        tasks.append({
            "data": data,
            "predictions": [{
                "model_version": f"llm2edge:{row.get('model') or 'llm'}",
                "score": score,
                "result": [{"from_name": LS_CHOICES, "to_name": LS_TEXT, "type": "choices",
                            "value": {"choices": [row["label"]]}}],
            }],
        })
    return tasks


def sample_experts(config: SampleConfig) -> SampleResult:
    """Write the items for expert review: review.csv, label_studio.json, label_config.xml, sample.json."""
    data = load_labels(config.labels)
    picked = select_experts(data.rows, data.labels, fraction=config.fraction, strategy=config.strategy,
                            stratify=config.stratify, by=config.by, seed=config.seed)
    rows = [data.rows[i] for i in picked]
    fields = field_names(data.rows)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / REVIEW_CSV).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", *fields, "llm_label", "confidence", "expert_label"])
        for row in rows:
            values = [(row.get("fields") or {}).get(name, "") for name in fields]
            writer.writerow([row["id"], row["text"], *values, row["label"],
                             f"{row_confidence(row, data.labels, config.by):.6f}", ""])
    write_json(out / LABEL_STUDIO_JSON, label_studio_tasks(rows, data.labels, fields))
    (out / LABEL_CONFIG_XML).write_text(label_config_xml(data.labels, fields), encoding="utf-8")
    per_label = dict.fromkeys(data.labels, 0)
    for row in rows:
        per_label[row["label"]] += 1
    write_json(out / SAMPLE_JSON, {
        "labels_file": str(config.labels), "strategy": config.strategy, "stratify": config.stratify,
        "by": config.by, "fraction": config.fraction, "seed": config.seed, "labels": list(data.labels),
        "fields": fields, "rows": len(data.rows), "skipped_error": data.skipped_error, "sampled": len(rows),
        "per_label": per_label, "ids": [row["id"] for row in rows],
    })
    return SampleResult(out, len(data.rows), len(rows), per_label)


# ---------------------------------------------------------------- reading reviews back


@dataclass(frozen=True)
class Review:
    """One reviewed item: its id, the expert label ('' = not reviewed) and where it was read."""

    id: str
    label: str
    where: str  # "file:line" or "file: task N"


def _read_review_csv(path: Path) -> list[Review]:
    """The (id, expert_label) pairs of an annotated review.csv."""
    reviews = []
    for n, (line, row) in enumerate(iter_rows(path, fmt="csv")):
        if n == 0:
            missing = [c for c in ("id", "expert_label") if c not in row]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        reviews.append(Review(str(row["id"]), str(row.get("expert_label") or "").strip(), f"{path}:{line}"))
    return reviews


def _annotation_choice(annotation: dict[str, Any]) -> str | None:
    """The choice of a Label Studio annotation's choices result, or None (cancelled / no choice)."""
    if annotation.get("was_cancelled"):
        return None
    for result in annotation.get("result") or []:
        if result.get("type") == "choices" and (result.get("value") or {}).get("choices"):
            choices = result["value"]["choices"]
            if len(choices) != 1:
                raise DataError(f"annotation {annotation.get('id')}: {len(choices)} choices, expected one")
            return str(choices[0])
    return None


def _read_label_studio(path: Path) -> list[Review]:
    """The (item_id, chosen label) pairs of a Label Studio JSON export (full or JSON_MIN)."""
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a Label Studio JSON export ({exc})") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise DataError(f"{path}: expected a JSON list of tasks")
    reviews = []
    for n, task in enumerate(tasks, start=1):
        where = f"{path}: task {n}"
        if not isinstance(task, dict):
            raise DataError(f"{where}: not a JSON object")
        data = task.get("data") if isinstance(task.get("data"), dict) else task  # JSON_MIN is flat
        item_id = data.get("item_id")
        if item_id is None:
            raise DataError(f"{where}: no data.item_id (was this task imported from sample-experts?)")
        label = ""
        if "annotations" in task:
            # the last finished, non-cancelled annotation wins
            for annotation in task.get("annotations") or []:
                choice = _annotation_choice(annotation)
                if choice is not None:
                    label = choice
        elif isinstance(task.get(LS_CHOICES), str):  # JSON_MIN: the choice under the control's name
            label = task[LS_CHOICES]
        reviews.append(Review(str(item_id), label.strip(), where))
    return reviews


def read_reviews(path: str | Path) -> list[Review]:
    """The reviews in an annotated review.csv, a Label Studio export JSON, or a sample-experts folder."""
    p = Path(path)
    if p.is_dir():
        if not (p / REVIEW_CSV).is_file():
            raise DataError(f"{p}: no {REVIEW_CSV} in this folder (write it with `llm2edge sample-experts`)")
        return _read_review_csv(p / REVIEW_CSV)
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".json":
        return _read_label_studio(p)
    return _read_review_csv(p)


def _gold_lookup(config: MergeConfig, fields: Sequence[str]
                 ) -> tuple[dict[str, str], dict[tuple[str, ...], str], dict[str, str]]:
    """Gold labels by id, by (text, fields) and by text (ambiguous texts left out of the text index)."""
    by_id: dict[str, str] = {}
    by_key: dict[tuple[str, ...], str] = {}
    by_text: dict[str, str | None] = {}
    path = Path(config.simulate_from)  # type: ignore[arg-type]
    for n, (line, row) in enumerate(iter_rows(path)):
        if n == 0:
            need = [config.gold_text_col, config.gold_label_col] + ([config.gold_id_col] if config.gold_id_col
                                                                    else [])
            missing = [c for c in need if c not in row]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(row)})")
        text = str(row[config.gold_text_col])
        label = str(row[config.gold_label_col] or "").strip()
        if not label:
            raise DataError(f"{path}:{line}: empty gold label")
        rid = str(row[config.gold_id_col]) if config.gold_id_col else stable_id(n, text)
        by_id[rid] = label
        key = (text, *(str(row.get(f, "")) for f in fields))
        by_key[key] = label
        by_text[text] = label if by_text.get(text, label) == label else None
    return by_id, by_key, {t: v for t, v in by_text.items() if v is not None}


def merge_experts(config: MergeConfig) -> MergeResult:
    """Write labels.jsonl with expert labels merged in (`source: expert`, one-hot probs)."""
    data: LabeledRows = load_labels(config.labels)
    known = set(data.labels)
    index = {row["id"]: i for i, row in enumerate(data.rows)}
    reviews = read_reviews(config.reviewed)
    if not reviews:
        raise DataError(f"{config.reviewed}: no reviewed items")
    for review in reviews:
        if review.id not in index:
            raise DataError(f"{review.where}: id '{review.id}' is not in {config.labels}")
        if review.label and review.label not in known:
            raise TaskError(f"{review.where}: expert label '{review.label}' (id {review.id}) is not in the "
                            f"label set {sorted(known)}")
    simulated = 0
    expert: dict[str, str] = {r.id: r.label for r in reviews if r.label}
    if config.simulate_from is not None:
        fields = field_names(data.rows)
        by_id, by_key, by_text = _gold_lookup(config, fields)
        for review in reviews:
            if review.label:
                continue
            row = data.rows[index[review.id]]
            key = (str(row["text"]), *(str((row.get("fields") or {}).get(f, "")) for f in fields))
            gold = by_id.get(review.id) or by_key.get(key) or by_text.get(str(row["text"]))
            if gold is None:
                raise DataError(f"{config.simulate_from}: no gold label for id '{review.id}' "
                                f"(matched by {'id' if config.gold_id_col else 'id, then text'})")
            if gold not in known:
                raise TaskError(f"{config.simulate_from}: gold label '{gold}' (id {review.id}) is not in the "
                                f"label set {sorted(known)}")
            expert[review.id] = gold
            simulated += 1
    rows, changed = apply_expert_labels(data.rows, data.labels, expert)
    write_rows(config.out, rows)
    return MergeResult(Path(config.out), len(rows), len(reviews), len(expert), changed, simulated)


def apply_expert_labels(rows: Sequence[Row], labels: Sequence[str], expert: dict[str, str]
                        ) -> tuple[list[Row], int]:
    """Rows with expert labels applied (label, one-hot probs, `source: expert`); also the number changed."""
    out: list[Row] = []
    changed = 0
    for row in rows:
        label = expert.get(row["id"])
        if label is None:
            new = dict(row)
            new.setdefault("source", "llm")
            out.append(new)
            continue
        new = dict(row)
        new["llm_label"] = row["label"]
        new["llm_probs"] = row.get("probs")
        new["label"] = label
        new["probs"] = {name: 1.0 if name == label else 0.0 for name in labels}
        new["confidence"] = 1.0
        new["margin_logprob"] = None
        new["source"] = "expert"
        changed += int(label != row["label"])
        out.append(new)
    return out, changed
