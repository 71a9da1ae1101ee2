"""The expert budget (RED-CT): send the least-confident LLM labels to experts, then merge their answers.

`select_experts` picks the items; `sample_experts` writes them for annotators, least confident first
(review.csv, a Label Studio import with the LLM label as a prediction, and the Label Studio labeling
config: `label_studio`); `merge_experts` reads the annotated CSV or a Label Studio export back (one vote
per annotation, settled per item by `reviews.decide`), validates every label and writes the merged labels.
RED-CT's rule (`--strategy confidence --stratify`): the same budget for each LLM label, and within each
label the items with the smallest confidence margin.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from llm2edge.checks import fraction as check_fraction
from llm2edge.checks import one_of
from llm2edge.defaults import (
    EXPERT_BY,
    EXPERT_CONTROL,
    EXPERT_FRACTION,
    EXPERT_ON_CONFLICT,
    EXPERT_STRATEGY,
    LABEL_COL,
    SEED,
    TEXT_COL,
)
from llm2edge.errors import ConfigError, DataError, TaskError
from llm2edge.hub.curate.label_studio import LS_ITEM_ID, label_config_xml, label_studio_tasks, read_export
from llm2edge.hub.curate.reviews import (
    ON_CONFLICT,
    REVIEW_ID,
    REVIEW_LABEL,
    Decision,
    Vote,
    decide,
    read_review_csv,
    show_ids,
)
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
    #: An item whose annotations disagree: "error" (list them), "latest" (the newest by created_at; in a
    #: review.csv the later line) or "majority" (the most frequent label; a tie is an error).
    on_conflict: str = EXPERT_ON_CONFLICT
    #: The Label Studio Choices control that holds the expert label (the name llm2edge's config writes).
    control: str = EXPERT_CONTROL

    def __post_init__(self) -> None:
        one_of("on_conflict", self.on_conflict, ON_CONFLICT)
        if not str(self.control).strip():
            raise ConfigError("control must name the Label Studio Choices control, got ''")


@dataclass(frozen=True)
class MergeResult:
    """What `merge_experts` wrote."""

    out: Path
    n_rows: int
    n_reviewed: int  # items in the review file
    n_expert: int  # rows now labeled by an expert
    n_changed: int  # expert label differs from the LLM label
    n_simulated: int  # expert labels filled from the gold file
    skipped: list[str] = field(default_factory=list)  # items whose every annotation was skipped
    unannotated: list[str] = field(default_factory=list)  # items nobody annotated (or filled from gold)
    conflicts: list[str] = field(default_factory=list)  # items whose annotations disagreed (policy decided)
    on_conflict: str = EXPERT_ON_CONFLICT
    kind: str = REVIEW_CSV  # the review file: review.csv, or a Label Studio JSON / JSON_MIN / CSV export

    def summary(self) -> str:
        """What was merged, in one line: counts, conflicts decided, skipped and unannotated items by id."""
        sim = f", {self.n_simulated} simulated from gold" if self.n_simulated else ""
        parts = [f"{self.n_expert} expert labels ({self.n_changed} changed the LLM label{sim}) of "
                 f"{self.n_reviewed} reviewed items"]
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} with disagreeing annotations decided by {self.on_conflict} "
                         f"({show_ids(self.conflicts)})")
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} ({show_ids(self.skipped)})")
        elif self.kind in ("JSON_MIN", "CSV"):
            parts.append(f"skipped tasks are not in {self.kind} exports (export JSON to list them)")
        if self.unannotated:
            filled = " (filled from gold)" if self.n_simulated else ""
            parts.append(f"not annotated {len(self.unannotated)}{filled} ({show_ids(self.unannotated)})")
        return "; ".join(parts) + f"; wrote {self.n_rows} rows to {self.out}"


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


def sample_experts(config: SampleConfig) -> SampleResult:
    """Write the items for expert review: review.csv, label_studio.json, label_config.xml, sample.json."""
    data = load_labels(config.labels)
    picked = select_experts(data.rows, data.labels, fraction=config.fraction, strategy=config.strategy,
                            stratify=config.stratify, by=config.by, seed=config.seed)
    # least confident first: the order reviewers meet them (Label Studio's sequential sampling = file order)
    rows = sorted((data.rows[i] for i in picked),
                  key=lambda row: (row_confidence(row, data.labels, config.by), _tiebreak(row)))
    fields = field_names(data.rows)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / REVIEW_CSV).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([REVIEW_ID, "text", *fields, "llm_label", config.by, REVIEW_LABEL])
        for row in rows:
            values = [(row.get("fields") or {}).get(name, "") for name in fields]
            writer.writerow([row["id"], row["text"], *values, row["label"],
                             f"{row_confidence(row, data.labels, config.by):.6f}", ""])
    write_json(out / LABEL_STUDIO_JSON, label_studio_tasks(rows, data.labels, fields, config.by))
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


def read_votes(path: str | Path, control: str = EXPERT_CONTROL, data_fields: Sequence[str] = ()
               ) -> tuple[list[Vote], str]:
    """The votes in a sample-experts folder (its review.csv), an annotated review.csv, or a Label Studio
    export (JSON, JSON_MIN, CSV or TSV; the choice read from the Choices control `control`), and the kind
    of file: "review.csv", "JSON", "JSON_MIN" or "CSV"."""
    p = Path(path)
    if p.is_dir():
        if not (p / REVIEW_CSV).is_file():
            raise DataError(f"{p}: no {REVIEW_CSV} in this folder (write it with `llm2edge sample-experts`)")
        return read_review_csv(p / REVIEW_CSV), REVIEW_CSV
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".json":
        return read_export(p, control, data_fields)
    header = next(iter_rows(p, fmt="csv"), (0, {}))[1]
    if REVIEW_LABEL in header or LS_ITEM_ID not in header:
        return read_review_csv(p), REVIEW_CSV
    return read_export(p, control, data_fields)


def _check_votes(votes: Sequence[Vote], config: MergeConfig, index: dict[str, int], known: set[str]) -> None:
    """DataError / TaskError naming the vote when an id is not in labels.jsonl or a label not in the set."""
    for vote in votes:
        if vote.item_id not in index:
            raise DataError(f"{vote.where}: id '{vote.item_id}' is not in {config.labels}")
        if vote.label and vote.label not in known:
            raise TaskError(f"{vote.where}: expert label '{vote.label}' is not in the label set "
                            f"{sorted(known)}")


def _no_labels(source: Path, decision: Decision) -> DataError:
    """The error for a review file that holds no expert label at all (and no gold file to fill it)."""
    return DataError(f"{source}: no expert labels in it ({len(decision.items)} items: "
                     f"{len(decision.skipped)} skipped, {len(decision.unannotated)} not annotated); "
                     "annotate some, or pass --simulate-from GOLD")


def merge_experts(config: MergeConfig) -> MergeResult:
    """Write labels.jsonl with expert labels merged in (`source: expert`, one-hot probs)."""
    data: LabeledRows = load_labels(config.labels)
    known = set(data.labels)
    index = {row["id"]: i for i, row in enumerate(data.rows)}
    fields = field_names(data.rows)
    votes, kind = read_votes(config.reviewed, config.control, fields)
    if not votes:
        raise DataError(f"{config.reviewed}: no reviewed items")
    _check_votes(votes, config, index, known)
    source = Path(config.reviewed) / REVIEW_CSV if Path(config.reviewed).is_dir() else config.reviewed
    decision = decide(votes, config.on_conflict, source=source)
    if not decision.labels and config.simulate_from is None:
        raise _no_labels(source, decision)
    simulated = 0
    expert: dict[str, str] = dict(decision.labels)
    if config.simulate_from is not None:
        by_id, by_key, by_text = _gold_lookup(config, fields)
        for item_id in decision.items:
            if item_id in expert:
                continue
            row = data.rows[index[item_id]]
            key = (str(row["text"]), *(str((row.get("fields") or {}).get(f, "")) for f in fields))
            gold = by_id.get(item_id) or by_key.get(key) or by_text.get(str(row["text"]))
            if gold is None:
                raise DataError(f"{config.simulate_from}: no gold label for id '{item_id}' "
                                f"(matched by {'id' if config.gold_id_col else 'id, then text'})")
            if gold not in known:
                raise TaskError(f"{config.simulate_from}: gold label '{gold}' (id {item_id}) is not in the "
                                f"label set {sorted(known)}")
            expert[item_id] = gold
            simulated += 1
    rows, changed = apply_expert_labels(data.rows, data.labels, expert)
    write_rows(config.out, rows)
    return MergeResult(Path(config.out), len(rows), len(decision.items), len(expert), changed, simulated,
                       decision.skipped, decision.unannotated, decision.conflicts, config.on_conflict, kind)


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
