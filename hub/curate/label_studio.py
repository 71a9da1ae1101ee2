"""Label Studio files: the labeling config and import tasks sample-experts writes, the exports read back.

Written: `label_config_xml` (a Text and one single-choice `Choices` control named `label`) and
`label_studio_tasks` (`data.item_id` carries llm2edge's id; the LLM label is a prediction whose `score` is
the sampling score, lower = less confident). Read (`read_export`), as Label Studio 1.23 writes them
(recorded in tests/hub/curate/fixtures/label_studio/):

- JSON: a list of tasks `{id, data: {text, item_id, ...}, annotations: [{id, result: [{from_name, type:
  "choices", value: {choices: [...]}}], was_cancelled, created_at, ...}], predictions}`;
- JSON_MIN: one flat record per annotation `{id (the task), item_id, text, ..., <control>: "choice" or
  {"choices": [...]} for several, annotation_id, created_at, ...}`; an unannotated task has
  `annotation_id: null`; skipped (cancelled) annotations are left out;
- CSV / TSV: the JSON_MIN records as columns (several choices as a JSON string).

The choice is read from the control named `control` (llm2edge writes `label`), never from whichever
Choices control comes first; an annotation without exactly one usable choice there is an error that names
the file, Label Studio's task id, the annotation and llm2edge's item id. For a multi-label task
(`multi`) the config's control is `choice="multiple"` and an annotation's choices are one label set,
joined with LABEL_SEP (checked against the task by `merge_multi`); JSON_MIN and CSV write one choice as
a bare string and several as `{"choices": [...]}` under either kind of control.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from llm2edge.defaults import EXPERT_CONTROL, LABEL_SEP
from llm2edge.errors import DataError
from llm2edge.hub.curate.reviews import LABELED, SKIPPED, UNANNOTATED, Vote
from llm2edge.hub.curate.rows import Row, row_confidence
from llm2edge.records import iter_rows

#: The names the Label Studio config gives the text and the choices (annotations are read by the latter
#: unless merge-experts is told another `--control`).
LS_TEXT, LS_CHOICES = "text", EXPERT_CONTROL
#: The data field that carries llm2edge's item id through Label Studio.
LS_ITEM_ID = "item_id"
#: The keys JSON_MIN / CSV exports add to a task's data fields besides the controls.
_MIN_META = ("id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "drafts",
             "predictions", "meta", "total_annotations", "cancelled_annotations", "total_predictions")


def label_config_xml(labels: Sequence[str], fields: Sequence[str] = (), *, multiple: bool = False) -> str:
    """The Label Studio labeling config: the text (and its fields), one single choice among the labels
    (`multiple`: a multi-label task's `choice="multiple"`, any number of them)."""
    lines = ["<View>"]
    for name in fields:
        lines.append(f"  <Header value={quoteattr(name + ': $' + name)}/>")
    lines.append(f'  <Text name="{LS_TEXT}" value="$text"/>')
    kind = "multiple" if multiple else "single-radio"
    lines.append(f'  <Choices name="{LS_CHOICES}" toName="{LS_TEXT}" choice="{kind}" showInline="true">')
    for name in labels:
        lines.append(f"    <Choice value={quoteattr(name)}/>")
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines) + "\n"


def label_studio_tasks(rows: Sequence[Row], labels: Sequence[str], fields: Sequence[str] = (),
                       by: str = "confidence", *, scores: Sequence[float] | None = None
                       ) -> list[dict[str, Any]]:
    """Label Studio import tasks: `data` (text, item_id, fields), the LLM label as a scored prediction.

    The prediction's `score` is the sampling score (lower = less confident; `scores`, one per row, else the
    rows' own `by` score), the order Label Studio's "Uncertainty sampling" serves tasks in.
    """
    tasks = []
    for i, row in enumerate(rows):
        data: dict[str, Any] = {"text": row["text"], LS_ITEM_ID: row["id"]}
        for name in fields:
            data[name] = (row.get("fields") or {}).get(name, "")
        score = round(float(scores[i] if scores is not None else row_confidence(row, labels, by)), 6)
        tasks.append({
            "data": data,
            "predictions": [{
                "model_version": f"llm2edge:{row.get('model') or 'llm'}",
                "score": score,
                "result": [{"from_name": LS_CHOICES, "to_name": LS_TEXT, "type": "choices",
                            "value": {"choices": _as_list(row["label"])}}],
            }],
        })
    return tasks


def _as_list(label: str | list[str]) -> list[str]:
    """A row's label as the choices of a Label Studio result (a multi-label row's list as it is)."""
    return list(label) if isinstance(label, list) else [label]


# ---------------------------------------------------------------- reading exports


def _item_id(path: Path, record: Any, task_id: Any) -> str:
    """llm2edge's item id of a task (its data), or a DataError naming the file and the task."""
    item_id = record.get(LS_ITEM_ID) if isinstance(record, dict) else None
    if item_id is None or not str(item_id).strip():
        raise DataError(f"{path}: task {task_id}: no {LS_ITEM_ID} in its data (were the tasks imported from "
                        "the label_studio.json that sample-experts wrote?)")
    return str(item_id).strip()


def _one_choice(chosen: list[str], others: Sequence[str], control: str, where: str, flat: bool = False,
                multi: bool = False) -> str:
    """The single choice of an annotation (`multi`: its choices joined with LABEL_SEP, checked against the
    task later), or a DataError saying what is there instead."""
    if len(chosen) == 1 or (multi and chosen):
        return LABEL_SEP.join(c.strip() for c in chosen)
    if chosen:
        raise DataError(f"{where}: {len(chosen)} choices ({', '.join(chosen)}) under control '{control}', "
                     "expected one (make the Choices control single-choice and fix it in Label Studio)")
    hint = (f"; other choice fields here: {', '.join(sorted(set(others)))} (pass --control NAME if the "
            "project's Choices control has another name)") if others else (
        " (JSON_MIN and CSV exports leave an empty or malformed result out: export JSON to see it)"
        if flat else "")
    raise DataError(f"{where}: an annotation with no choice under control '{control}'{hint}")


def _json_choice(result: Any, control: str, where: str, multi: bool = False) -> str:
    """The choice of a full-JSON annotation `result` under `control` (a DataError for anything else)."""
    if not isinstance(result, list):
        raise DataError(f"{where}: malformed annotation result (a {type(result).__name__}, expected a list)")
    chosen: list[str] = []
    others: list[str] = []
    for region in result:
        if not isinstance(region, dict):
            raise DataError(f"{where}: malformed annotation result entry {json.dumps(region)[:60]}")
        if region.get("type") != "choices":
            continue
        name, value = region.get("from_name"), region.get("value")
        choices = value.get("choices") if isinstance(value, dict) else None
        if not isinstance(name, str) or not isinstance(choices, list) \
                or not all(isinstance(c, str) for c in choices):
            raise DataError(f"{where}: malformed choices result {json.dumps(region)[:80]} (expected "
                            "from_name and value.choices, a list of labels)")
        if name == control:
            chosen.extend(choices)
        else:
            others.append(name)
    return _one_choice(chosen, others, control, where, multi=multi)


def _votes_json(path: Path, tasks: list[Any], control: str, multi: bool = False) -> list[Vote]:
    """The votes of a full JSON export (tasks with `data` and `annotations`)."""
    if not any(isinstance(t, dict) and "annotations" in t for t in tasks):
        what = "with predictions" if any(isinstance(t, dict) and t.get("predictions") for t in tasks) else ""
        raise DataError(f"{path}: {len(tasks)} tasks {what} and no 'annotations' field: this is an import "
                        "file (the label_studio.json sample-experts wrote), not an export; annotate the "
                        "tasks, then export the project from Label Studio (JSON) and pass that file")
    votes: list[Vote] = []
    for n, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise DataError(f"{path}: task #{n + 1} is not a JSON object")
        task_id = task.get("id", f"#{n + 1}")
        item_id = _item_id(path, task.get("data"), task_id)
        annotations = task.get("annotations") or []
        if not isinstance(annotations, list):
            raise DataError(f"{path}: task {task_id} (item {item_id}): 'annotations' is not a list")
        if not annotations:
            votes.append(Vote(item_id, "", UNANNOTATED, f"{path}: task {task_id} (item {item_id})",
                              f"task {task_id}", order=len(votes)))
        for annotation in annotations:
            if not isinstance(annotation, dict):
                raise DataError(f"{path}: task {task_id} (item {item_id}): an annotation is not a JSON "
                                "object")
            ref = f"task {task_id}, annotation {annotation.get('id', '?')}"
            where = f"{path}: {ref} (item {item_id})"
            if annotation.get("was_cancelled"):
                votes.append(Vote(item_id, "", SKIPPED, where, ref, order=len(votes)))
                continue
            label = _json_choice(annotation.get("result"), control, where, multi)
            votes.append(Vote(item_id, label, LABELED, where, ref, str(annotation.get("created_at") or ""),
                              len(votes)))
    return votes


def _flat_choice(value: Any, where: str, control: str, others: Sequence[str], multi: bool = False) -> str:
    """The choice of a JSON_MIN / CSV cell: a label, or {"choices": [...]} (several; a JSON string in CSV)."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if isinstance(value, dict) and isinstance(value.get("choices"), list):
        return _one_choice([str(c) for c in value["choices"]], others, control, where, True, multi)
    if isinstance(value, str):
        return _one_choice([value] if value.strip() else [], others, control, where, True, multi)
    if value is None:
        return _one_choice([], others, control, where, True, multi)
    raise DataError(f"{where}: malformed choice {json.dumps(value)[:60]} under control '{control}'")


def _votes_flat(path: Path, records: Sequence[tuple[int, dict[str, Any]]], control: str,
                data_fields: Sequence[str], line_numbers: bool, multi: bool = False) -> list[Vote]:
    """The votes of JSON_MIN records or CSV/TSV rows: one per annotation, `annotation_id` empty = none."""
    known = {*_MIN_META, LS_TEXT, LS_ITEM_ID, *data_fields}
    votes: list[Vote] = []
    for position, record in records:
        task_id = record.get("id") if record.get("id") not in (None, "") else f"#{position}"
        item_id = _item_id(path, record, task_id)
        annotation = record.get("annotation_id")
        at = f":{position}" if line_numbers else ""
        if annotation in (None, "") and record.get(control) in (None, ""):
            votes.append(Vote(item_id, "", UNANNOTATED, f"{path}{at}: task {task_id} (item {item_id})",
                              f"task {task_id}", order=len(votes)))
            continue
        ref = f"task {task_id}, annotation {annotation}"
        where = f"{path}{at}: {ref} (item {item_id})"
        others = [k for k, v in record.items() if k not in known and k != control and v not in (None, "")]
        label = _flat_choice(record.get(control), where, control, others, multi)
        created = str(record.get("created_at") or "")
        votes.append(Vote(item_id, label, LABELED, where, ref, created, len(votes)))
    return votes


def read_export(path: str | Path, control: str = LS_CHOICES, data_fields: Sequence[str] = (), *,
                multi: bool = False) -> tuple[list[Vote], str]:
    """The votes of a Label Studio export and its format: "JSON", "JSON_MIN" (both .json) or "CSV".

    `data_fields` are the per-item fields llm2edge put in the tasks' data (told apart from other controls
    in the flat formats). JSON_MIN and CSV leave skipped (cancelled) annotations out. `multi` (a multi-label
    task): an annotation's label is its choices joined with LABEL_SEP (checked by the caller).
    """
    p = Path(path)
    if p.suffix.lower() != ".json":
        rows = list(iter_rows(p, fmt="csv"))
        if not rows:
            raise DataError(f"{p}: no rows (an empty Label Studio export: annotate some tasks first)")
        return _votes_flat(p, rows, control, data_fields, line_numbers=True, multi=multi), "CSV"
    try:
        tasks = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{p}: not a Label Studio JSON export ({exc})") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise DataError(f"{p}: expected a JSON list of tasks, got a {type(tasks).__name__}")
    if not tasks:
        raise DataError(f"{p}: an empty export (no tasks; Label Studio exports only annotated tasks unless "
                        "asked for all): annotate some tasks first")
    if any(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks):
        return _votes_json(p, tasks, control, multi), "JSON"
    if not all(isinstance(t, dict) for t in tasks):
        raise DataError(f"{p}: expected a JSON list of Label Studio tasks (objects)")
    if not any("annotation_id" in t or control in t for t in tasks):
        raise DataError(f"{p}: neither a JSON export (tasks with 'data' and 'annotations') nor JSON_MIN "
                        f"(records with 'annotation_id' and '{control}'): export JSON from Label Studio")
    records = list(enumerate(tasks, start=1))
    return _votes_flat(p, records, control, data_fields, line_numbers=False, multi=multi), "JSON_MIN"
