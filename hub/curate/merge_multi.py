"""merge-experts on a multi-label labels.jsonl: expert label sets, checked, canonical, merged.

Readers give each annotation's choices joined with LABEL_SEP (a review.csv's `expert_label` is written
`a;b` by hand); `canonical_votes` checks every set against the file's labels (`labelsets.parse_label_set`:
an unknown or repeated name is an error naming the file, the task or line and the value) and rewrites it
in the label set's order, so two annotations that chose the same labels in another order agree when
`reviews.decide` settles each item. `apply_expert_sets` writes the decided sets: `label` the list,
`probs` 1/0 per label, `source: expert`.

A Label Studio export does not say whether its Choices control took one choice or several (JSON_MIN and
CSV write a single choice as a bare string either way, see tests/hub/curate/fixtures/label_studio), so the
project's control is checked from its labeling config when `--label-config` names it
(`check_label_config`): a single-choice control for a multi-label file, or a `choice="multiple"` one for a
single-label file, is an error.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from llm2edge.errors import DataError
from llm2edge.hub.curate.reviews import LABELED, Vote
from llm2edge.hub.curate.rows import Row
from llm2edge.labelsets import join_label_set, parse_label_set


def canonical_votes(votes: Sequence[Vote], labels: Sequence[str], index: dict[str, int], labels_file: Path
                    ) -> list[Vote]:
    """The votes with each label set checked and joined in `labels` order; DataError naming the vote for
    an item not in `labels_file`, a label outside `labels`, a label given twice or an empty set."""
    out = []
    for vote in votes:
        if vote.item_id not in index:
            raise DataError(f"{vote.where}: id '{vote.item_id}' is not in {labels_file}")
        if vote.status != LABELED:
            out.append(vote)
            continue
        chosen = parse_label_set(vote.label, labels, where=vote.where)
        out.append(dataclasses.replace(vote, label=join_label_set(chosen)))
    return out


def gold_set(value: str, labels: Sequence[str], where: str) -> str:
    """A gold file's label set (`a;b`) checked and joined in `labels` order."""
    return join_label_set(parse_label_set(value, labels, where=where, allow_empty=True))


def apply_expert_sets(rows: Sequence[Row], labels: Sequence[str], expert: dict[str, str]
                      ) -> tuple[list[Row], int]:
    """Rows with expert label sets applied (`expert`: item id -> set joined in `labels` order): `label` the
    list, `probs` 1 or 0 per label, `source: expert`; also the number whose set changed."""
    out: list[Row] = []
    changed = 0
    for row in rows:
        new = dict(row)
        joined = expert.get(row["id"])
        if joined is None:
            new.setdefault("source", "llm")
            out.append(new)
            continue
        chosen = parse_label_set(joined, labels, where=f"item {row['id']}", allow_empty=True)
        new.update(llm_label=row["label"], llm_probs=row.get("probs"), label=list(chosen),
                   probs={name: 1.0 if name in chosen else 0.0 for name in labels}, confidence=1.0,
                   margin_logprob=None, source="expert")
        changed += int(list(chosen) != list(row["label"]))
        out.append(new)
    return out, changed


def check_label_config(path: Path, control: str, multi_label: bool, labels_file: Path) -> None:
    """DataError when the Label Studio labeling config at `path` has no Choices control `control`, or
    one whose `choice` does not fit the labels file (single-choice for multi-label, or the reverse)."""
    try:
        root = ET.fromstring(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ET.ParseError) as exc:
        raise DataError(f"{path}: not a Label Studio labeling config ({exc})") from None
    found = [el for el in root.iter("Choices") if el.get("name") == control]
    if not found:
        raise DataError(f"{path}: no <Choices name=\"{control}\"> control (pass --control NAME)")
    kind = found[0].get("choice", "single")
    if multi_label and kind != "multiple":
        raise DataError(f"{path}: <Choices name=\"{control}\"> has choice=\"{kind}\", but {labels_file} is "
                        "multi-label: annotators could choose only one label per item; set "
                        "choice=\"multiple\" (sample-experts writes it) and annotate again")
    if not multi_label and kind == "multiple":
        raise DataError(f"{path}: <Choices name=\"{control}\"> has choice=\"multiple\", but {labels_file} "
                        "is single-label: make the control single-choice")
