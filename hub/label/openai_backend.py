"""Label with any OpenAI-compatible server (OpenAI, vLLM, llama.cpp): label probabilities from logprobs.

The distribution over labels comes from the `top_logprobs` of the answer tokens, with labels that the
tokenizer splits (`s` + `ports`) merged by prefix along the generated path. Where the server returns no
logprobs, the answer is constrained to the label set (grammar, guided choice or an enum JSON schema,
whichever the server accepts) and scored with probability 1, flagged `prob_source="answer"`.

The API key is read from the environment only; it is never stored on the backend, logged, or written
into a result or an error message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llm2edge.errors import BackendError
from llm2edge.hub.label.backend import LabelSpace, Prompt, Scored

MODES = ("auto", "logprobs", "answer")
#: Ways to constrain the answer to the label set, in the order tried on an unknown server.
CONSTRAINTS = ("json_schema", "json_object", "grammar", "guided_choice", "none")
#: The first constraint to try, by the `owned_by` field a server reports under /v1/models.
_SERVER_CONSTRAINT = {"me": "grammar", "llamacpp": "grammar", "vllm": "guided_choice"}
_NO_KEY = "sk-no-key"  # placeholder for local servers without authentication
_LEAD = " \t\r\n\"'`*:{[(<"  # stripped before an answer token is matched against a label
_RETRYABLE = ("connection", "timeout", "status-retry", "parse")
_ANSWER_RE = re.compile(r"answer\s*:", re.IGNORECASE)


class _ItemError(Exception):
    """One item failed; `kind` says whether a later round may retry it."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class _Token:
    """One generated token with its logprob and the server's top alternatives (token text -> logprob)."""

    text: str
    logprob: float
    top: dict[str, float]

    def alts(self) -> dict[str, float]:
        """The top alternatives and the generated token itself (a constrained answer may lie outside)."""
        return {**self.top, self.text: self.logprob}


def _logsumexp(values: Sequence[float]) -> float:
    """log(sum(exp(v))) without overflow."""
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _label_forms(space: LabelSpace, label: str) -> tuple[str, ...]:
    """The surface forms that count as `label`: its verbalizer words and its name."""
    forms = dict.fromkeys(f for f in (*space.forms(label), label) if f.strip())
    return tuple(forms)


def _answer_choices(space: LabelSpace) -> list[str]:
    """The strings a constrained answer may take: each surface form as written, lower-case and Capitalized.

    Case variants let the model write the label the way it prefers (SmolLM2 favours `Sports`, a single
    token, over `s`+`ports`), so the generated path, whose later tokens carry logprobs, is its best one.
    """
    out: dict[str, None] = {}
    for label in space.names:
        for form in _label_forms(space, label):
            out.update(dict.fromkeys((form, form.lower(), form[:1].upper() + form[1:])))
    return list(out)


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


def _path_logprob(tokens: Sequence[_Token], k: int, rest: str, acc: float) -> float:
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
    return _logsumexp(paths) if paths else -math.inf


def label_logprobs(tokens: Sequence[_Token], start: int, space: LabelSpace) -> dict[str, float] | None:
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
            for form in _label_forms(space, label):
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
            found[label] = _logsumexp(list(per_alt.values()))
    if not found or not informative:
        return None
    return {label: found.get(label, floor) for label in space.names}


def _normalize(logprobs: dict[str, float]) -> dict[str, float]:
    """Softmax of per-label log-scores: a distribution summing to 1."""
    total = _logsumexp(list(logprobs.values()))
    return {label: math.exp(lp - total) for label, lp in logprobs.items()}


def _answer_offset(content: str, cot: bool) -> int | None:
    """Character offset in `content` where the answer label starts (after the last "Answer:" with CoT)."""
    if cot:
        matches = list(_ANSWER_RE.finditer(content))
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


def _token_at(tokens: Sequence[_Token], offset: int) -> int | None:
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
        matches = list(_ANSWER_RE.finditer(text))
        value = text[matches[-1].end():] if matches else text
    value = value.strip(_LEAD + ".!,;)]}>").lower()
    if not value:
        return None
    for exact in (True, False):
        for label in space.names:
            for form in _label_forms(space, label):
                f = form.lower()
                if value == f if exact else (value.startswith(f) and not value[len(f):len(f) + 1].isalnum()):
                    return label
    return None


def _one_line(text: str, limit: int = 200) -> str:
    """Collapse whitespace and cut to `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _safe_url(url: str) -> str:
    """`url` without user:password and without a query string (nothing secret in messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class OpenAIBackend:
    """Labels prompts through an OpenAI-compatible chat completions endpoint, `concurrency` at a time."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 2,
        temperature: float = 0.0,
        mode: str = "auto",
        max_tokens: int = 16,
        cot_max_tokens: int = 256,
        top_logprobs: int = 20,
        retry_rounds: int = 2,
        retry_backoff: float = 0.5,
    ) -> None:
        if mode not in MODES:
            raise BackendError(f"openai backend: mode must be one of {', '.join(MODES)}, not {mode!r}")
        if concurrency < 1:
            raise BackendError(f"openai backend: concurrency must be at least 1, not {concurrency}")
        if base_url is None and not os.environ.get(api_key_env):
            raise BackendError(f"openai backend: set ${api_key_env} to your API key (read from the "
                               "environment only)")
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.temperature = temperature
        self.mode = mode
        self.max_tokens = max_tokens
        self.cot_max_tokens = cot_max_tokens
        self.top_logprobs = top_logprobs
        self.retry_rounds = retry_rounds
        self.retry_backoff = retry_backoff
        self._constraints: list[str] | None = None  # to try, best first; pinned once one works
        self._constraint_ok = False
        self._logprobs_ok = mode != "answer"
        self.stats = {"logprobs": 0, "answer": 0, "failed": 0, "requests": 0}

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self._url()!r}, mode={self.mode!r})"

    def _url(self) -> str:
        """The endpoint as shown in messages (never with credentials)."""
        return _safe_url(self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1")

    def _key(self) -> str:
        """The API key from the environment (a placeholder for keyless local servers)."""
        return os.environ.get(self.api_key_env) or _NO_KEY

    def _scrub(self, text: str) -> str:
        """One line of `text` with the API key (and anything that looks like one) masked."""
        key = self._key()
        if key != _NO_KEY and len(key) >= 4:
            text = text.replace(key, "***")
        text = re.sub(r"\bsk-[A-Za-z0-9_\-*]{4,}", "sk-***", text)
        return _one_line(text)

    # -- public API ---------------------------------------------------------------------------------
    def label_batch(self, prompts: Sequence[Prompt], space: LabelSpace, *, cot: str | None = None
                    ) -> list[Scored]:
        """Score `prompts` (one Scored per prompt, same order); failed items carry `error`."""
        if not prompts:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run(list(prompts), space, cot))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from inside an event loop
            return pool.submit(asyncio.run, self._run(list(prompts), space, cot)).result()

    def close(self) -> None:
        """Nothing to release: each batch opens and closes its own HTTP client."""

    # -- batch driver -------------------------------------------------------------------------------
    async def _run(self, prompts: list[Prompt], space: LabelSpace, cot: str | None) -> list[Scored]:
        """Label all prompts, then retry the retryable failures for `retry_rounds` more rounds."""
        import openai

        client = openai.AsyncOpenAI(api_key=self._key(), base_url=self.base_url, timeout=self.timeout,
                                    max_retries=self.max_retries)
        results: list[Scored | None] = [None] * len(prompts)
        kinds: list[str] = [""] * len(prompts)
        try:
            if self._constraints is None:
                self._constraints = await self._detect_constraints(client)
            sem = asyncio.Semaphore(self.concurrency)

            async def one(i: int) -> None:
                async with sem:
                    try:
                        results[i] = await self._label_one(client, prompts[i], space, cot)
                        kinds[i] = ""
                    except _ItemError as exc:
                        results[i] = Scored(item_id=prompts[i].item_id, error=self._scrub(str(exc)))
                        kinds[i] = exc.kind
                    except Exception as exc:  # a bug or an unexpected reply: fail the item, not the batch
                        results[i] = Scored(item_id=prompts[i].item_id,
                                            error=self._scrub(f"{type(exc).__name__}: {exc}"))
                        kinds[i] = "other"

            todo = list(range(len(prompts)))
            for round_ in range(self.retry_rounds + 1):
                if round_:
                    await asyncio.sleep(self.retry_backoff * 2 ** (round_ - 1))
                await asyncio.gather(*(one(i) for i in todo))
                todo = [i for i in todo if kinds[i] in _RETRYABLE]
                if not todo:
                    break
        finally:
            await client.close()
        out = [r for r in results if r is not None]
        self.stats["failed"] += sum(1 for r in out if r.error)
        self._raise_if_all_failed(out, kinds)
        return out

    def _raise_if_all_failed(self, out: list[Scored], kinds: list[str]) -> None:
        """Raise BackendError when every item failed for a reason that no item can get past."""
        if not out or any(r.error is None for r in out):
            return
        n = len(out)
        if all(k in ("connection", "timeout") for k in kinds):
            raise BackendError(f"openai backend: cannot reach {self._url()}: {out[0].error} "
                               f"(all {n} items failed after retries)")
        if all(k == "auth" for k in kinds):
            raise BackendError(f"openai backend: {self._url()} refused the API key from "
                               f"${self.api_key_env}: {out[0].error}")
        if all(k == "notfound" for k in kinds):
            raise BackendError(f"openai backend: {self._url()} answered 404 for model {self.model!r} "
                               f"(wrong --base-url or model?): {out[0].error}")

    async def _detect_constraints(self, client: Any) -> list[str]:
        """Order the answer constraints for this server (by /v1/models `owned_by`; OpenAI: json_schema)."""
        order = list(CONSTRAINTS)
        if self.base_url is None:
            return order
        try:
            page = await client.models.list()
            owners = {str(getattr(m, "owned_by", "") or "").lower() for m in page.data}
        except Exception:  # detection is a hint only; the first request will report real failures
            owners = set()
        for owner, first in _SERVER_CONSTRAINT.items():
            if owner in owners:
                order.remove(first)
                order.insert(0, first)
                if first == "grammar":  # llama.cpp: the OpenAI json_schema form answers HTTP 500
                    order.remove("json_schema")
                    order.append("json_schema")
                break
        return order

    # -- one item -----------------------------------------------------------------------------------
    async def _label_one(self, client: Any, prompt: Prompt, space: LabelSpace, cot: str | None) -> Scored:
        """Label one prompt: one request (two with CoT when the first names no label)."""
        messages = [dict(m) for m in prompt.messages]
        if cot is not None:
            forms = ", ".join(f for label in space.names for f in _label_forms(space, label))
            said = "\n".join(m.get("content", "") for m in messages)
            extra = [] if cot.strip() in said else [cot.strip()]  # (prompts.py puts it in the system turn)
            if not _ANSWER_RE.search(said + " ".join(extra)):
                extra.append(f'End with a final line "Answer: <label>" where <label> is one of: {forms}.')
            if extra:
                messages[-1]["content"] = "\n\n".join([messages[-1]["content"], *extra])
            reply = await self._request(client, messages, space, constrain=False,
                                        max_tokens=self.cot_max_tokens)
            scored = self._score(prompt.item_id, reply, space, cot=True)
            if scored is not None:
                return scored
            reasoning = reply[0]
            messages += [{"role": "assistant", "content": reasoning},
                         {"role": "user", "content": f"So which label is it? Reply with one of: {forms}."}]
            reply = await self._request(client, messages, space, constrain=True, max_tokens=self.max_tokens)
            scored = self._score(prompt.item_id, reply, space, cot=False)
            if scored is not None:
                scored.raw = f"{reasoning}\n{scored.raw or ''}".strip()
                return scored
            raise _ItemError(f"unparseable answer: {_one_line(reasoning, 80)!r}", "parse")
        reply = await self._request(client, messages, space, constrain=True, max_tokens=self.max_tokens)
        scored = self._score(prompt.item_id, reply, space, cot=False)
        if scored is None:
            raise _ItemError(f"unparseable answer: {_one_line(reply[0], 80)!r}", "parse")
        return scored

    def _score(self, item_id: str, reply: tuple[str, list[_Token] | None], space: LabelSpace, *, cot: bool
               ) -> Scored | None:
        """Turn a reply into a Scored (logprobs where they name a label, else the answer), or None."""
        content, tokens = reply
        if tokens and self.mode != "answer":
            offset = _answer_offset(content, cot)
            start = _token_at(tokens, offset) if offset is not None else None
            lps = label_logprobs(tokens, start, space) if start is not None else None
            if lps is not None:
                self.stats["logprobs"] += 1
                return Scored(item_id=item_id, probs=_normalize(lps), logprobs=lps, prob_source="logprobs",
                              raw=content)
        if self.mode == "logprobs":
            if tokens is None:
                raise _ItemError(f"{self._url()} returned no logprobs (mode='logprobs')", "nologprobs")
            return None
        label = match_answer(content, space)
        if label is None:
            return None
        self.stats["answer"] += 1
        probs = {name: float(name == label) for name in space.names}
        return Scored(item_id=item_id, probs=probs, prob_source="answer", raw=content)

    async def _request(self, client: Any, messages: list[dict[str, str]], space: LabelSpace, *,
                       constrain: bool, max_tokens: int) -> tuple[str, list[_Token] | None]:
        """One chat completion (constrained to the labels when asked): its text and its token logprobs."""
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": self.temperature}
        if self._logprobs_ok:
            kwargs.update(logprobs=True, top_logprobs=self.top_logprobs)
        assert self._constraints is not None
        tried = 0
        while True:
            style = self._constraints[0] if constrain else "none"
            call = dict(kwargs, **self._constraint_kwargs(style, space))
            try:
                self.stats["requests"] += 1
                resp = await client.chat.completions.create(**call)
            except openai.APITimeoutError as exc:
                raise _ItemError(f"timed out after {self.timeout:g} s and {self.max_retries} client retries",
                                 "timeout") from exc
            except openai.APIConnectionError as exc:
                cause = exc.__cause__
                detail = (str(cause) or type(cause).__name__) if cause is not None else str(exc)
                raise _ItemError(f"connection failed ({self._scrub(detail)}) after {self.max_retries} client "
                                 "retries", "connection") from exc
            except openai.APIStatusError as exc:
                status = exc.status_code
                text = self._scrub(getattr(exc, "message", "") or str(exc))
                refused_logprobs = status in (400, 422) and "logprob" in text.lower()
                if refused_logprobs and self._logprobs_ok and self.mode == "auto":
                    self._logprobs_ok = False  # this model refuses logprobs: answer mode from now on
                    kwargs.pop("logprobs", None)
                    kwargs.pop("top_logprobs", None)
                    continue
                if (constrain and style != "none" and status in (400, 422, 500, 501)
                        and not self._constraint_ok and tried < len(self._constraints) - 1):
                    # the server may not know this constraint: move it to the back and try the next
                    if self._constraints[0] == style:  # (another item may have moved it already)
                        self._constraints.append(self._constraints.pop(0))
                    tried += 1
                    continue
                kind = {401: "auth", 403: "auth", 404: "notfound"}.get(status, "status")
                if status in (408, 409, 429) or status >= 500:
                    kind = "status-retry"
                msg = "authentication failed" if kind == "auth" else text
                raise _ItemError(f"HTTP {status}: {msg}", kind) from exc
            if constrain and style != "none":
                self._constraint_ok = True
            choice = resp.choices[0]
            content = choice.message.content or ""
            tokens = None
            lp = getattr(choice, "logprobs", None)
            if lp is not None and getattr(lp, "content", None):
                tokens = [_Token(t.token, t.logprob, {a.token: a.logprob for a in (t.top_logprobs or [])})
                          for t in lp.content]
            return content, tokens

    @staticmethod
    def _constraint_kwargs(style: str, space: LabelSpace) -> dict[str, Any]:
        """Request arguments that restrict the answer to the label forms, for one constraint style."""
        forms = _answer_choices(space)
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
