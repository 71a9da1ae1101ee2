"""Expert reviews read back: one vote per annotation, and one expert label per item decided from them.

Readers (the annotated review.csv here, Label Studio exports in `label_studio`) turn every annotation into
a `Vote`; `decide` groups the votes by item and settles items whose annotations disagree by an explicit
policy (`--on-conflict`): `error` (the default) lists them, `latest` takes the newest annotation by its
`created_at` (a review.csv has no timestamps: its later line), `majority` the most frequent label (a tie is
an error). Nothing is chosen silently and file order never decides between two annotations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from llm2edge.checks import one_of
from llm2edge.defaults import EXPERT_ON_CONFLICT
from llm2edge.errors import DataError
from llm2edge.records import iter_rows

ON_CONFLICT = ("error", "latest", "majority")
#: The columns of the review.csv that sample-experts writes and annotators fill in.
REVIEW_ID, REVIEW_LABEL = "id", "expert_label"
#: How many item ids an error message or a summary spells out before "(+N more)".
SHOW_IDS = 10
LABELED, SKIPPED, UNANNOTATED = "labeled", "skipped", "unannotated"


@dataclass(frozen=True)
class Vote:
    """One annotation of one item: its label ('' when skipped or not annotated) and where it was read."""

    item_id: str
    label: str
    status: str  # labeled | skipped (cancelled in Label Studio) | unannotated
    where: str  # "review.csv:4 (item s2)" or "export.json: task 5, annotation 7 (item s2)"
    ref: str = ""  # the short form, for lists: "line 4", "task 5, annotation 7"
    created_at: str = ""  # ISO time of the annotation ('' when the file has none)
    order: int = 0  # position in the file


@dataclass(frozen=True)
class Decision:
    """The expert label of every item in a review file, and what could not be labeled."""

    items: list[str]  # every item in the file, first-seen order
    labels: dict[str, str]  # the decided expert label per item
    skipped: list[str]  # every annotation cancelled ("skip" in Label Studio)
    unannotated: list[str]  # no annotation (an empty expert_label in review.csv)
    conflicts: list[str]  # items whose annotations disagreed, decided by the policy
    where: dict[str, str]  # the first place each item was read (for error messages)


def show_ids(ids: Sequence[str], limit: int = SHOW_IDS) -> str:
    """Item ids as a short comma-separated list: the first `limit`, then "(+N more)"."""
    shown = ", ".join(ids[:limit])
    return shown + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")


def read_review_csv(path: Path) -> list[Vote]:
    """The votes of an annotated review.csv (an empty expert_label: not reviewed)."""
    votes = []
    for n, (line, row) in enumerate(iter_rows(path, fmt="csv")):
        if n == 0:
            missing = [c for c in (REVIEW_ID, REVIEW_LABEL) if c not in row]
            if missing:
                raise DataError(f"{path}: missing column(s) {', '.join(missing)}: not a review.csv written "
                                "by sample-experts (for Label Studio, pass its JSON or CSV export)")
        item_id = str(row[REVIEW_ID] or "").strip()
        if not item_id:
            raise DataError(f"{path}:{line}: empty id")
        label = str(row.get(REVIEW_LABEL) or "").strip()
        status = LABELED if label else UNANNOTATED
        votes.append(Vote(item_id, label, status, f"{path}:{line} (item {item_id})", f"line {line}", order=n))
    return votes


def _when(vote: Vote) -> datetime:
    """The vote's created_at as a datetime (DataError naming the vote when it is not an ISO time)."""
    try:
        return datetime.fromisoformat(vote.created_at.replace("Z", "+00:00"))
    except ValueError:
        raise DataError(f"{vote.where}: created_at '{vote.created_at}' is not an ISO date and time") from None


def _latest(votes: Sequence[Vote]) -> str | None:
    """The label of the newest vote (by created_at; by file order when no vote has one), None on a tie."""
    if all(not v.created_at for v in votes):
        return max(votes, key=lambda v: v.order).label
    if any(not v.created_at for v in votes):
        missing = next(v for v in votes if not v.created_at)
        raise DataError(f"{missing.where}: no created_at, so the latest annotation cannot be told")
    newest = max(_when(v) for v in votes)
    labels = {v.label for v in votes if _when(v) == newest}
    return labels.pop() if len(labels) == 1 else None


def _majority(votes: Sequence[Vote]) -> str | None:
    """The most frequent label of the votes, None on a tie."""
    (first, n_first), *rest = Counter(v.label for v in votes).most_common()
    return None if rest and rest[0][1] == n_first else first


def _describe(votes: Sequence[Vote]) -> str:
    """The disagreeing votes of one item, e.g. "item s2: NONE (line 3), AGAINST (line 9)"."""
    parts = [f"{v.label} ({v.ref}" + (f", {v.created_at})" if v.created_at else ")") for v in votes]
    return f"item {votes[0].item_id}: " + ", ".join(parts)


def decide(votes: Sequence[Vote], policy: str = EXPERT_ON_CONFLICT, *, source: str | Path = "") -> Decision:
    """One expert label per item from its votes; items that disagree are settled by `policy` (module doc)."""
    one_of("on_conflict", policy, ON_CONFLICT)
    groups: dict[str, list[Vote]] = {}
    for vote in votes:
        groups.setdefault(vote.item_id, []).append(vote)
    labels: dict[str, str] = {}
    skipped, unannotated, conflicts, undecided = [], [], [], []
    for item_id, group in groups.items():
        labeled = [v for v in group if v.status == LABELED]
        if not labeled:
            (skipped if any(v.status == SKIPPED for v in group) else unannotated).append(item_id)
            continue
        if len({v.label for v in labeled}) == 1:
            labels[item_id] = labeled[0].label
            continue
        conflicts.append(item_id)
        choice = None if policy == "error" else _latest(labeled) if policy == "latest" else _majority(labeled)
        if choice is None:
            undecided.append(_describe(labeled))
        else:
            labels[item_id] = choice
    if undecided:
        why = {"error": "annotations disagree", "latest": "the newest annotations disagree (same created_at)",
               "majority": "no majority (a tie)"}[policy]
        shown = "; ".join(undecided[:SHOW_IDS]) + (f" (+{len(undecided) - SHOW_IDS} more)"
                                                   if len(undecided) > SHOW_IDS else "")
        raise DataError(f"{source}: {len(undecided)} item(s) where {why}: {shown}. Resolve them in the "
                        "review, or pass --on-conflict latest|majority")
    return Decision(list(groups), labels, skipped, unannotated, conflicts,
                    {item_id: group[0].where for item_id, group in groups.items()})
