"""Answers of an OpenAI-compatible server: the request arguments that keep an answer to the label set
(`constraint_kwargs`), and reading a reply: the label distribution from its logprobs, or the label it names.

The distribution over labels comes from the `top_logprobs` of the answer tokens, with labels that the
tokenizer splits (`s` + `ports`) merged by prefix along the generated path (`label_logprobs`). A reply
without usable logprobs is matched against the label forms (`match_answer`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm2edge.hub.label.backend import LabelSpace, logsumexp

#: Characters stripped before an answer token is matched against a label.
_LEAD = " \t\r\n\"'`*:{[(<"
#: The cue a chain-of-thought answer ends with ("Answer: <label>").
ANSWER_RE = re.compile(r"answer\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class Token:
    """One generated token with its logprob and the server's top alternatives (token text -> logprob)."""

    text: str
    logprob: float
    top: dict[str, float]

    def alts(self) -> dict[str, float]:
        """The top alternatives and the generated token itself (a constrained answer may lie outside)."""
        return {**self.top, self.text: self.logprob}


def label_forms(space: LabelSpace, label: str) -> tuple[str, ...]:
    """The surface forms that count as `label`: its verbalizer words and its name."""
    forms = dict.fromkeys(f for f in (*space.forms(label), label) if f.strip())
    return tuple(forms)


def answer_choices(space: LabelSpace) -> list[str]:
    """The strings a constrained answer may take: each surface form as written, lower-case and Capitalized.

    Case variants let the model write the label the way it prefers (SmolLM2 favours `Sports`, a single
    token, over `s`+`ports`), so the generated path, whose later tokens carry logprobs, is its best one.
    """
    out: dict[str, None] = {}
    for label in space.names:
        for form in label_forms(space, label):
            out.update(dict.fromkeys((form, form.lower(), form[:1].upper() + form[1:])))
    return list(out)


def constraint_kwargs(style: str, space: LabelSpace) -> dict[str, Any]:
    """Request arguments that restrict the answer to the label forms, for one constraint style."""
    forms = answer_choices(space)
    schema = {"type": "object", "properties": {"label": {"type": "string", "enum": forms}},
              "required": ["label"], "additionalProperties": False}
    if style == "json_schema":
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "label", "strict": True, "schema": schema}}}
    if style == "json_object":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if style == "grammar":
        alts = " | ".join(json.dumps(f, ensure_ascii=False) for f in forms)
        return {"extra_body": {"grammar": f"root ::= {alts}"}}
    if style == "guided_choice":
        return {"extra_body": {"guided_choice": forms}}
    return {}


def _continues(token: str, rest: str) -> str | None:
    """How `token` continues the unmatched `rest` of a label form: "done", "partial", or None."""
    tok = token.lower()
    if not tok:
        return None
    if tok == rest or (tok.startswith(rest) and not tok[len(rest)].isalnum()):
        return "done"
    if rest.startswith(tok):
        return "partial"
    return None


def _path_logprob(tokens: Sequence[Token], k: int, rest: str, acc: float) -> float:
    """Log-probability of the label remainder `rest` from position `k` on, following the generated path.

    An alternative that completes `rest` ends the path; one that is only a prefix of it continues when it
    is the generated token (the server has no logprobs off the generated path, so other tokenizations of
    the rest are left out).
    """
    paths: list[float] = []
    tok = tokens[k]
    for alt, lp in tok.alts().items():
        how = _continues(alt, rest)
        if how is None:
            continue
        if how == "done" or (alt == tok.text and k + 1 == len(tokens)):  # (a cut-off answer counts)
            paths.append(acc + lp)
        elif alt == tok.text:
            paths.append(_path_logprob(tokens, k + 1, rest[len(alt):], acc + lp))
    paths = [p for p in paths if p > -math.inf]
    return logsumexp(paths) if paths else -math.inf


def label_logprobs(tokens: Sequence[Token], start: int, space: LabelSpace) -> dict[str, float] | None:
    """Each label's log-probability at answer position `start` (None when no label is among the top tokens).

    At `start`, every top alternative whose text (leading spaces, quotes and brackets stripped,
    case-folded) equals or begins a surface form of a label counts for that label; a form split into
    several tokens adds the logprobs of its later tokens along the generated path. Alternatives of one
    label are mutually exclusive tokens, so their probabilities add. Labels absent from the top
    alternatives get the lowest logprob listed there (an upper bound on their true value). When no label
    is among the server's top alternatives (only a constrained answer from below them), the logprobs say
    nothing about the labels: None.
    """
    if start >= len(tokens):
        return None
    first = tokens[start]
    # llama.cpp lists the sampled token among the top ones even when a grammar forced it from far below
    others = [lp for alt, lp in first.top.items() if alt != first.text]
    floor = min(others) if others else first.logprob
    ranked = {alt for alt, lp in first.top.items() if alt != first.text or lp >= floor}
    found: dict[str, float] = {}
    informative = False
    for label in space.names:
        per_alt: dict[str, float] = {}
        for alt, lp in first.alts().items():
            stripped = alt.lstrip(_LEAD)
            if not stripped:
                continue
            best = -math.inf
            for form in label_forms(space, label):
                how = _continues(stripped, form.lower())
                if how is None:
                    continue
                if how == "partial" and alt == first.text and start + 1 < len(tokens):
                    score = _path_logprob(tokens, start + 1, form.lower()[len(stripped):], lp)
                else:
                    score = lp
                best = max(best, score)
            if best > -math.inf:
                per_alt[alt] = best
                informative = informative or alt in ranked
        if per_alt:
            found[label] = logsumexp(list(per_alt.values()))
    if not found or not informative:
        return None
    return {label: found.get(label, floor) for label in space.names}


def answer_offset(content: str, cot: bool) -> int | None:
    """Character offset in `content` where the answer label starts (after the last "Answer:" with CoT)."""
    if cot:
        matches = list(ANSWER_RE.finditer(content))
        if not matches:
            return None
        pos = matches[-1].end()
    else:
        pos = 0
        value = _json_label(content)
        if value is not None:
            at = content.find(value)
            return at if at >= 0 else None
    while pos < len(content) and content[pos] in _LEAD:
        pos += 1
    return pos if pos < len(content) else None


def _json_label(content: str) -> str | None:
    """The `label` value when `content` is a JSON object holding one (a constrained answer)."""
    text = content.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict):
        label = value.get("label", value.get("answer"))
        if isinstance(label, str):
            return label
    return None


def token_at(tokens: Sequence[Token], offset: int) -> int | None:
    """Index of the generated token that covers character `offset` of the concatenated token texts."""
    pos = 0
    for i, tok in enumerate(tokens):
        pos += len(tok.text)
        if pos > offset:
            return i
    return None


def match_answer(text: str, space: LabelSpace) -> str | None:
    """The label that answer `text` names (JSON, plain, or after "Answer:"), or None when it names none."""
    value = _json_label(text)
    if value is None:
        matches = list(ANSWER_RE.finditer(text))
        value = text[matches[-1].end():] if matches else text
    value = value.strip(_LEAD + ".!,;)]}>").lower()
    if not value:
        return None
    for exact in (True, False):
        for label in space.names:
            for form in label_forms(space, label):
                f = form.lower()
                if value == f if exact else (value.startswith(f) and not value[len(f):len(f) + 1].isalnum()):
                    return label
    return None
