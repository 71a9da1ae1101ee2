"""Label with any OpenAI-compatible server (OpenAI, vLLM, llama.cpp): label probabilities from logprobs.

This module owns the requests: concurrency, retries, constraint detection and error reporting. Reading a
reply (the label distribution from the `top_logprobs` of the answer tokens, or the label an answer names)
lives in `llm2edge.hub.label.answers`. Where the server returns no logprobs, the answer is constrained to
the label set (grammar, guided choice or an enum JSON schema, whichever the server accepts) and scored
with probability 1, flagged `prob_source="answer"`. With `samples` K > 1 (self-consistency) no logprobs are
requested: K answers are sampled (n=K, made up request by request where the server ignores n) and their
vote shares become the distribution (`prob_source="votes"`, llm2edge.hub.label.votes). A multi-label
task's items are asked for a list (llm2edge.hub.label.openai_sets). The API key is read from the
environment only; it is never stored on the backend, logged, or written into a result or an error message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from llm2edge.checks import at_least, one_of
from llm2edge.defaults import (
    LABEL_CONCURRENCY,
    LABEL_MAX_RETRIES,
    LABEL_SAMPLE_TEMPERATURE,
    LABEL_SAMPLES,
    LABEL_TIMEOUT_S,
    SEED,
)
from llm2edge.errors import BackendError
from llm2edge.hub.label.answers import (
    ANSWER_RE,
    Token,
    answer_offset,
    constraint_kwargs,
    label_forms,
    label_logprobs,
    match_answer,
    token_at,
)
from llm2edge.hub.label.backend import LabelSpace, Prompt, Scored, normalize
from llm2edge.hub.label.openai_sets import label_set_one
from llm2edge.hub.label.openai_sets import one_line as _one_line
from llm2edge.hub.label.votes import item_seed, scored_from_answers

MODES = ("auto", "logprobs", "answer")
#: Ways to constrain the answer to the label set, in the order tried on an unknown server.
CONSTRAINTS = ("json_schema", "json_object", "grammar", "guided_choice", "none")
#: The first constraint to try, by the `owned_by` field a server reports under /v1/models.
_SERVER_CONSTRAINT = {"me": "grammar", "llamacpp": "grammar", "vllm": "guided_choice"}
_NO_KEY = "sk-no-key"  # placeholder for local servers without authentication
_RETRYABLE = ("connection", "timeout", "status-retry", "parse")


class _ItemError(Exception):
    """One item failed; `kind` says whether a later round may retry it."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _safe_url(url: str) -> str:
    """`url` without user:password and without a query string (nothing secret in messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _tokens(choice: Any) -> list[Token] | None:
    """The generated tokens of one choice with their logprobs and top alternatives (None without logprobs)."""
    lp = getattr(choice, "logprobs", None)
    if lp is None or not getattr(lp, "content", None):
        return None
    return [Token(t.token, t.logprob, {a.token: a.logprob for a in (t.top_logprobs or [])})
            for t in lp.content]


class OpenAIBackend:
    """Labels prompts through an OpenAI-compatible chat completions endpoint, `concurrency` at a time."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = LABEL_CONCURRENCY,
        timeout: float = LABEL_TIMEOUT_S,
        max_retries: int = LABEL_MAX_RETRIES,
        temperature: float = 0.0,
        mode: str = "auto",
        max_tokens: int = 16,
        cot_max_tokens: int = 256,
        top_logprobs: int = 20,
        retry_rounds: int = 2,
        retry_backoff: float = 0.5,
        samples: int = LABEL_SAMPLES,
        sample_temperature: float = LABEL_SAMPLE_TEMPERATURE,
        seed: int = SEED,
    ) -> None:
        """`samples` K > 1: vote over K answers sampled at `sample_temperature`, seeded per item from `seed`
        (no logprobs requested); `temperature` is that of the single answer otherwise."""
        one_of("mode", mode, MODES)
        at_least("concurrency", concurrency)
        at_least("samples", samples)
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
        self.samples, self.sample_temperature, self.seed = samples, sample_temperature, seed
        self._logprobs_ok = mode != "answer" and samples == 1
        self._seed_ok = True  # pass a seed per sampled request until the server refuses one
        self.stats = {"logprobs": 0, "answer": 0, "votes": 0, "failed": 0, "requests": 0, "n_short": 0}

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self.model!r}, base_url={self._url()!r}, mode={self.mode!r})"

    def _url(self) -> str:
        """The endpoint as shown in messages (never with credentials)."""
        return _safe_url(self.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1")

    def _key(self) -> str:
        """The API key from the environment (a placeholder for keyless local servers)."""
        return os.environ.get(self.api_key_env) or _NO_KEY

    def _mask(self, text: str) -> str:
        """`text` with the API key (and anything that looks like one) masked."""
        key = self._key()
        if key != _NO_KEY and len(key) >= 4:
            text = text.replace(key, "***")
        return re.sub(r"\bsk-[A-Za-z0-9_\-*]{4,}", "sk-***", text)

    def _scrub(self, text: str) -> str:
        """One line of `text` with the API key (and anything that looks like one) masked."""
        return _one_line(self._mask(text))

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
                        scored = await self._label_one(client, prompts[i], space, cot)
                        if scored.raw:  # the server's text is stored: a server that echoes the key leaks it
                            scored.raw = self._mask(scored.raw)
                        results[i] = scored
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
        if space.multi_label:  # a list of labels (llm2edge.hub.label.openai_sets)
            return await label_set_one(self, client, prompt, space)
        messages = [dict(m) for m in prompt.messages]
        if cot is not None:
            forms = ", ".join(f for label in space.names for f in label_forms(space, label))
            said = "\n".join(m.get("content", "") for m in messages)
            extra = [] if cot.strip() in said else [cot.strip()]  # (prompts.py puts it in the system turn)
            if not ANSWER_RE.search(said + " ".join(extra)):
                extra.append(f'End with a final line "Answer: <label>" where <label> is one of: {forms}.')
            if extra:
                messages[-1]["content"] = "\n\n".join([messages[-1]["content"], *extra])
            reply = (await self._request(client, messages, space, constrain=False,
                                         max_tokens=self.cot_max_tokens))[0]
            scored = self._score(prompt.item_id, reply, space, cot=True)
            if scored is not None:
                return scored
            reasoning = reply[0]
            messages += [{"role": "assistant", "content": reasoning},
                         {"role": "user", "content": f"So which label is it? Reply with one of: {forms}."}]
            reply = (await self._request(client, messages, space, constrain=True,
                                         max_tokens=self.max_tokens))[0]
            scored = self._score(prompt.item_id, reply, space, cot=False)
            if scored is not None:
                scored.raw = f"{reasoning}\n{scored.raw or ''}".strip()
                return scored
            raise _ItemError(f"unparseable answer: {_one_line(reasoning, 80)!r}", "parse")
        if self.samples > 1:
            return await self._vote(client, prompt.item_id, messages, space)
        reply = (await self._request(client, messages, space, constrain=True, max_tokens=self.max_tokens))[0]
        scored = self._score(prompt.item_id, reply, space, cot=False)
        if scored is None:
            raise _ItemError(f"unparseable answer: {_one_line(reply[0], 80)!r}", "parse")
        return scored

    async def _vote(self, client: Any, item_id: str, messages: list[dict[str, str]], space: LabelSpace
                    ) -> Scored:
        """Self-consistency: `samples` answers at `sample_temperature` (n in one request where the server
        honours it; any choice it leaves out is made up with further requests, each with its own seed)."""
        contents: list[str] = []
        while len(contents) < self.samples:
            want = self.samples - len(contents)
            replies = await self._request(client, messages, space, constrain=True, max_tokens=self.max_tokens,
                                          n=want, seed=item_seed(self.seed, item_id, len(contents)))
            self.stats["n_short"] += max(0, want - len(replies))
            contents += [content for content, _ in replies[:want]]
        scored = scored_from_answers(item_id, [match_answer(c, space) for c in contents], space,
                                     raw=" | ".join(_one_line(c, 40) for c in contents))
        if scored.error is not None:
            raise _ItemError(f"{scored.error}: {scored.raw!r}", "parse")
        self.stats["votes"] += 1
        return scored

    def _score(self, item_id: str, reply: tuple[str, list[Token] | None], space: LabelSpace, *, cot: bool
               ) -> Scored | None:
        """Turn a reply into a Scored (logprobs where they name a label, else the answer), or None."""
        content, tokens = reply
        if tokens and self.mode != "answer":
            offset = answer_offset(content, cot)
            start = token_at(tokens, offset) if offset is not None else None
            lps = label_logprobs(tokens, start, space) if start is not None else None
            if lps is not None:
                self.stats["logprobs"] += 1
                return Scored(item_id=item_id, probs=normalize(lps), logprobs=lps, prob_source="logprobs",
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
                       constrain: bool, max_tokens: int, n: int = 1, seed: int | None = None
                       ) -> list[tuple[str, list[Token] | None]]:
        """One chat completion (constrained to the labels when asked) asking for `n` choices (sampled with
        `seed` while the server accepts one): each choice's text and token logprobs (a server may return
        fewer choices: llama.cpp ignores n)."""
        import openai

        temperature = self.sample_temperature if self.samples > 1 else self.temperature
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": max_tokens,
                                  "temperature": temperature}
        if n > 1:
            kwargs["n"] = n
        if seed is not None and self._seed_ok:
            kwargs["seed"] = seed
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
                if status in (400, 422) and "seed" in text.lower() and kwargs.pop("seed", None) is not None:
                    self._seed_ok = False  # this server takes no seed: sample unseeded from now on
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
            if not resp.choices:
                raise _ItemError(f"{self._url()} answered with no choices", "parse")
            return [(choice.message.content or "", _tokens(choice)) for choice in resp.choices]

    #: Request arguments that restrict the answer to the label forms (llm2edge.hub.label.answers).
    _constraint_kwargs = staticmethod(constraint_kwargs)
