"""The expert budget (RED-CT): send the least-confident LLM labels to experts, then merge their answers.

`select_experts` picks the items; `sample_experts` writes them for annotators, least confident first
(review.csv, a Label Studio import with the LLM label as a prediction, and the Label Studio labeling
config: `label_studio`); `merge_experts` reads the annotated CSV or a Label Studio export back (one vote
per annotation, settled per item by `reviews.decide`), validates every label and writes the merged labels.
RED-CT's rule (`--strategy confidence --stratify`): the same budget for each LLM label, and within each
label the items with the smallest confidence margin. `--by crossval` ranks by the out-of-fold probability
of the LLM label instead (`oof`: no LLM probabilities needed). With a gold file, the merge measures the
sample: the LLM's error rate inside it, overall and in a random sample of the same size (`gold`).
A multi-label file (`label` a list) is ranked and stratified by `select.select_multi`, written with the set
joined (`a;b`) and a `choice="multiple"` Label Studio control, and merged by `merge_multi`.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llm2edge.checks import fraction as check_fraction
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
from llm2edge.hub.curate.gold import SampleErrorRates, read_gold, sample_error_rates
from llm2edge.hub.curate.label_studio import LS_ITEM_ID, label_config_xml, label_studio_tasks, read_export
from llm2edge.hub.curate.merge_multi import apply_expert_sets, canonical_votes, check_label_config, gold_set
from llm2edge.hub.curate.oof import CROSSVAL, CrossvalConfig, sampling_scores
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
    write_json,
    write_rows,
)
from llm2edge.hub.curate.select import (
    SCORES,
    STRATEGIES,
    _tiebreak,
    multi_scores,
    select_experts,
    select_multi,
)
from llm2edge.labelsets import join_label_set
from llm2edge.params import Checked, check_fields, nested, param
from llm2edge.records import iter_rows

REVIEW_CSV = "review.csv"
LABEL_STUDIO_JSON = "label_studio.json"
LABEL_CONFIG_XML = "label_config.xml"
SAMPLE_JSON = "sample.json"


@dataclass(kw_only=True)
class SampleConfig(Checked):
    """Options of `llm2edge sample-experts` (checked when built)."""

    labels: Path = param(help="labels.jsonl written by `llm2edge label`.")
    #: review.csv, label_studio.json, label_config.xml, sample.json.
    out: Path = param(help="Output folder for review.csv, label_studio.json, ...")
    fraction: float = param(EXPERT_FRACTION, check=check_fraction,
                            help="Share of the items to send to experts.")
    strategy: str = param(EXPERT_STRATEGY, choices=STRATEGIES, help="confidence (least confident) | random.")
    stratify: bool = param(False, flags=("--stratify/--no-stratify",),
                           help="The same budget for each LLM label (RED-CT's rule).")
    #: crossval: `oof.label_support`, works for bare answers.
    by: str = param(EXPERT_BY, choices=SCORES,
                    help="confidence (top1-top2 probability) | margin (log-prob margin) | crossval "
                         "(out-of-fold probability of the LLM label from a model on student embeddings, over "
                         "the label's mean: for labels without probabilities).")
    #: The CLI's --seed sets the crossval folds' seed too.
    seed: int = param(SEED, help="Seed of --strategy random and the crossval folds.")
    #: How the crossval score is computed (folds, encoder, embedding settings).
    crossval: CrossvalConfig = nested(CrossvalConfig)


@dataclass(frozen=True)
class SampleResult:
    """What `sample_experts` wrote."""

    out: Path
    n_rows: int
    n_sampled: int
    per_label: dict[str, int]
    warning: str | None = None  # the scores could not rank the rows (all equal: bare answers)


@dataclass(kw_only=True)
class MergeConfig:
    """Options of `llm2edge merge-experts`."""

    labels: Path = param(help="labels.jsonl written by `llm2edge label`.")
    reviewed: Path = param(help="Annotated review.csv, the folder sample-experts wrote, or a Label Studio "
                                "export (JSON, JSON_MIN, CSV or TSV).")
    out: Path = param(help="Merged labels.jsonl to write.")
    #: Simulated experts.
    simulate_from: Path | None = param(None, help="Gold file: fill unreviewed sampled items from it.")
    gold_id_col: str | None = param(None, help="Id column of the gold file (default: join by the stable row "
                                               "id, then by text).")
    gold_label_col: str = param(LABEL_COL, help="Label column of the gold file.")
    gold_text_col: str = param(TEXT_COL, help="Text column of the gold file.")
    on_conflict: str = param(EXPERT_ON_CONFLICT, choices=ON_CONFLICT,
                             help="An item whose annotations disagree: error (list them) | latest (newest "
                                  "created_at; in review.csv the later line) | majority (a tie is an error).")
    control: str = param(EXPERT_CONTROL, help="The Label Studio Choices control that holds the label "
                                              "(llm2edge's config names it 'label').")
    #: Exports do not say whether the control took one choice or several: the config does (merge_multi).
    label_config: Path | None = param(None, help="The Label Studio project's labeling config (XML): its "
                                                 "control must be choice=multiple for a multi-label file "
                                                 "and single-choice otherwise.")
    seed: int = param(SEED, help="Seed of the random sample the expert sample's LLM error rate is compared "
                                 "with (with --simulate-from).")

    def __post_init__(self) -> None:
        check_fields(self)
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
    error_rates: SampleErrorRates | None = None  # the LLM's error rate in the sample (with a gold file)
    report: Path | None = None  # <out>.report.json: these counts and error rates

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
        if self.error_rates is not None:
            parts.append(self.error_rates.text())
        return "; ".join(parts) + f"; wrote {self.n_rows} rows to {self.out}"


def sample_experts(config: SampleConfig) -> SampleResult:
    """Write the items for expert review: review.csv, label_studio.json, label_config.xml, sample.json."""
    from llm2edge.hub.curate.confident import folds_run

    data = load_labels(config.labels)
    multi = data.multi_label
    if multi:  # the set's least certain label; stratified by overlapping label groups (select.py)
        scores = multi_scores(data.rows, data.labels, config.by, config.crossval)
        picked = select_multi(data.rows, data.labels, scores, fraction=config.fraction,
                              strategy=config.strategy, stratify=config.stratify, seed=config.seed)
    else:
        scores = sampling_scores(data.rows, data.labels, config.by, config.crossval)
        picked = select_experts(data.rows, data.labels, fraction=config.fraction, strategy=config.strategy,
                                stratify=config.stratify, by=config.by, seed=config.seed, scores=scores)
    # least confident first: the order reviewers meet them (Label Studio's sequential sampling = file order)
    picked.sort(key=lambda i: (scores[i], _tiebreak(data.rows[i])))
    rows, row_scores = [data.rows[i] for i in picked], [scores[i] for i in picked]
    fields = field_names(data.rows)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with (out / REVIEW_CSV).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([REVIEW_ID, "text", *fields, "llm_label", config.by, REVIEW_LABEL])
        for row, score in zip(rows, row_scores):
            values = [(row.get("fields") or {}).get(name, "") for name in fields]
            label = join_label_set(row["label"]) if multi else row["label"]  # a set as `a;b`
            writer.writerow([row["id"], row["text"], *values, label, f"{score:.6f}", ""])
    write_json(out / LABEL_STUDIO_JSON, label_studio_tasks(rows, data.labels, fields, scores=row_scores))
    config_xml = label_config_xml(data.labels, fields, multiple=multi)
    (out / LABEL_CONFIG_XML).write_text(config_xml, encoding="utf-8")
    per_label = dict.fromkeys(data.labels, 0)
    for row in rows:
        for name in (row["label"] if multi else [row["label"]]):
            per_label[name] += 1
    write_json(out / SAMPLE_JSON, {
        "labels_file": str(config.labels), "strategy": config.strategy, "stratify": config.stratify,
        "by": config.by, "fraction": config.fraction, "seed": config.seed, "labels": list(data.labels),
        "multi_label": multi,
        "folds": folds_run(config.crossval.folds, len(data.rows)) if config.by == CROSSVAL else None,
        "fields": fields, "rows": len(data.rows), "skipped_error": data.skipped_error, "sampled": len(rows),
        "per_label": per_label, "ids": [row["id"] for row in rows],
    })
    flat = config.strategy != "random" and len(set(scores)) == 1
    return SampleResult(out, len(data.rows), len(rows), per_label,
                        warning=_flat_warning(config.by, data.rows) if flat else None)


def _flat_warning(by: str, rows: Sequence[Row]) -> str:
    """Why every row got the same `by` score, and what would rank them (never the ranking already used)."""
    if by == CROSSVAL:
        kinds = len({str(row["label"]) for row in rows})
        why = ("every row has the same label: the out-of-fold model has no other label to prefer"
               if kinds == 1 else "the out-of-fold model supports every row's label alike")
        return (f"every row has the same crossval score ({why}): the sample is in effect random; rank by "
                "the LLM's own confidence instead (--by confidence or --by margin, on labels made with "
                "probabilities or --samples K)")
    return (f"every row has the same {by} score (answers without probabilities?): the sample is in effect "
            "random; rank by --by crossval, or label with --samples K")


def read_votes(path: str | Path, control: str = EXPERT_CONTROL, data_fields: Sequence[str] = (), *,
               multi: bool = False) -> tuple[list[Vote], str]:
    """The votes in a sample-experts folder (its review.csv), an annotated review.csv, or a Label Studio
    export (JSON, JSON_MIN, CSV or TSV; the choice read from the Choices control `control`), and the kind
    of file: "review.csv", "JSON", "JSON_MIN" or "CSV". `multi`: several choices are one label set."""
    p = Path(path)
    if p.is_dir():
        if not (p / REVIEW_CSV).is_file():
            raise DataError(f"{p}: no {REVIEW_CSV} in this folder (write it with `llm2edge sample-experts`)")
        return read_review_csv(p / REVIEW_CSV), REVIEW_CSV
    if not p.is_file():
        raise DataError(f"{p}: no such file or folder")
    if p.suffix.lower() == ".json":
        return read_export(p, control, data_fields, multi=multi)
    header = next(iter_rows(p, fmt="csv"), (0, {}))[1]
    if REVIEW_LABEL in header or LS_ITEM_ID not in header:
        return read_review_csv(p), REVIEW_CSV
    return read_export(p, control, data_fields, multi=multi)


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
    fields, multi = field_names(data.rows), data.multi_label
    if config.label_config is not None:
        check_label_config(config.label_config, config.control, multi, config.labels)
    votes, kind = read_votes(config.reviewed, config.control, fields, multi=multi)
    if not votes:
        raise DataError(f"{config.reviewed}: no reviewed items")
    if multi:  # each set checked and in canonical order, so that equal sets agree (merge_multi)
        votes = canonical_votes(votes, data.labels, index, config.labels)
    else:
        _check_votes(votes, config, index, known)
    source = Path(config.reviewed) / REVIEW_CSV if Path(config.reviewed).is_dir() else config.reviewed
    decision = decide(votes, config.on_conflict, source=source)
    if not decision.labels and config.simulate_from is None:
        raise _no_labels(source, decision)
    simulated = 0
    expert: dict[str, str] = dict(decision.labels)
    rates = None
    if config.simulate_from is not None:
        golds = read_gold(config.simulate_from, fields, id_col=config.gold_id_col,
                          label_col=config.gold_label_col, text_col=config.gold_text_col)
        for item_id in decision.items:
            if item_id in expert:
                continue
            gold = golds.get(data.rows[index[item_id]])
            if gold is None:
                raise DataError(f"{config.simulate_from}: no gold label for id '{item_id}' "
                                f"(matched by {'id' if config.gold_id_col else 'id, then text'})")
            if multi:
                gold = gold_set(gold, data.labels, f"{config.simulate_from}: gold label (id {item_id})")
            elif gold not in known:
                raise TaskError(f"{config.simulate_from}: gold label '{gold}' (id {item_id}) is not in the "
                                f"label set {sorted(known)}")
            expert[item_id] = gold
            simulated += 1
        llm = [r.get("llm_label", r["label"]) for r in data.rows]
        gold_labels = [golds.get(r) for r in data.rows]
        if multi:  # a set is right when it is the gold set
            llm = [join_label_set(v) for v in llm]
            gold_labels = [None if g is None else gold_set(g, data.labels, f"{config.simulate_from}: gold "
                                                          f"label (id {r['id']})")
                           for g, r in zip(gold_labels, data.rows)]
        rates = sample_error_rates(llm, gold_labels,
                                   [index[i] for i in decision.items], seed=config.seed)
    apply = apply_expert_sets if multi else apply_expert_labels
    rows, changed = apply(data.rows, data.labels, expert)
    write_rows(config.out, rows)
    result = MergeResult(Path(config.out), len(rows), len(decision.items), len(expert), changed, simulated,
                         decision.skipped, decision.unannotated, decision.conflicts, config.on_conflict, kind,
                         rates, Path(config.out).with_suffix(".report.json"))
    write_json(result.report, merge_report(result, config))  # type: ignore[arg-type]
    return result


def merge_report(result: MergeResult, config: MergeConfig) -> dict[str, object]:
    """What a merge did, as JSON: the inputs, the counts, and the expert sample's LLM error rates."""
    return {"labels_file": str(config.labels), "reviewed": str(config.reviewed), "out": str(result.out),
            "kind": result.kind, "rows": result.n_rows, "reviewed_items": result.n_reviewed,
            "expert_labels": result.n_expert, "changed": result.n_changed, "simulated": result.n_simulated,
            "gold": str(config.simulate_from) if config.simulate_from else None,
            "error_rates": result.error_rates.as_dict() if result.error_rates else None,
            "error_rates_note": "rate_overall is the expected rate of a random sample of the same size"}


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
