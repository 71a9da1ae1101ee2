"""In-process labeling with a Hugging Face causal LM: constrained scoring of full label token sequences.

Any Hugging Face id, local folder or GGUF file (resolved by `llm2edge.hub.models.resolve_llm`, which
converts a GGUF once to a safetensors cache). The label scores are the summed log-probabilities of each
label's tokens after the prompt, normalized over the labels; the prompt is run once and its KV cache is
reused for all label continuations. With `samples` K > 1 the backend answers like a sampling teacher:
K labels drawn from those scores at `temperature` with a generator seeded per item, stored as vote shares
(`prob_source: votes`, llm2edge.hub.label.votes). The exact scores are the better confidence for this
backend; votes exist so that a run can be compared with (and tested like) a teacher without logprobs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llm2edge.checks import at_least, one_of, positive
from llm2edge.defaults import LABEL_SAMPLE_TEMPERATURE, LABEL_SAMPLES, MAX_NEW_TOKENS, SEED
from llm2edge.edge.threads import resolve_threads
from llm2edge.errors import BackendError
from llm2edge.hub.label.backend import LabelSpace, Prompt, Scored, logsumexp, normalize
from llm2edge.hub.label.prompts import ANSWER_CUE, plain_text
from llm2edge.hub.label.votes import item_seed, sample_answers, scored_from_answers
from llm2edge.hub.models import resolve_llm

DTYPES = ("auto", "float32", "bfloat16", "float16")
#: How label continuations are scored: reuse the prompt's KV cache, or one forward of prompt+label each.
STRATEGIES = ("kv", "concat")
#: A token prefix shared by a batch's prompts (system turn and shots) is cached when at least this long.
_MIN_PREFIX = 16


@dataclass(frozen=True)
class _Cont:
    """One label form to score: its label index and token ids."""

    label: int
    ids: tuple[int, ...]


class HFBackend:
    """Label by constrained scoring with an in-process causal LM (see module docstring)."""

    name = "hf"

    def __init__(self, model: str | None = None, *, dtype: str = "auto", device: str | None = None,
                 threads: int | None = None, max_new_tokens: int = MAX_NEW_TOKENS, strategy: str = "kv",
                 max_length: int | None = None, prefix_cache: bool = True,
                 micro_batch: int | None = None, samples: int = LABEL_SAMPLES,
                 temperature: float = LABEL_SAMPLE_TEMPERATURE, seed: int = SEED) -> None:
        """`threads`: torch threads (default: `resolve_threads`); `micro_batch`: prompts per forward
        (default 4 on CPU, where compute grows with padded tokens, else the whole batch); `prefix_cache`:
        reuse the KV cache of the prefix every prompt shares; `samples` K > 1: vote over K labels drawn
        from the scores at `temperature` (seeded by `seed` and the item id)."""
        one_of("dtype", dtype, DTYPES)
        one_of("strategy", strategy, STRATEGIES)
        at_least("samples", samples)
        positive("temperature", temperature)
        self.samples, self.temperature, self.seed = samples, temperature, seed
        n_threads = resolve_threads(threads)
        import torch

        torch.set_num_threads(n_threads)
        self._torch = torch
        self.source, self.model = resolve_llm(model)
        self.dtype_name, self.device_name = dtype, device
        self.max_new_tokens = max_new_tokens
        self.strategy = strategy
        self._max_length = max_length
        self._tok: Any = None
        self._lm: Any = None
        self.prefix_cache = prefix_cache
        self.micro_batch = micro_batch
        self._prefix: tuple[tuple[int, ...], list[Any]] | None = None

    # ---- loading -------------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        """The model's tokenizer (loaded on first use)."""
        if self._tok is None:
            from transformers import AutoTokenizer

            try:
                self._tok = AutoTokenizer.from_pretrained(self.source)
            except Exception as exc:
                raise BackendError(f"{self.model}: cannot load the tokenizer ({exc})") from exc
        return self._tok

    @property
    def lm(self) -> Any:
        """The causal LM (loaded on first use, safetensors only, eval mode)."""
        if self._lm is None:
            torch = self._torch
            from transformers import AutoModelForCausalLM

            cuda = torch.cuda.is_available()
            dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(
                self.dtype_name)
            if dtype is None:  # auto
                dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda \
                    else torch.float32
            kwargs: dict[str, Any] = {"dtype": dtype, "use_safetensors": True}
            if self.device_name is None and cuda:
                kwargs["device_map"] = "auto"
            try:
                lm = AutoModelForCausalLM.from_pretrained(self.source, **kwargs)
            except Exception as exc:
                raise BackendError(f"{self.model}: cannot load the model ({exc})") from exc
            if self.device_name is not None:
                lm = lm.to(self.device_name)
            self._lm = lm.eval()
        return self._lm

    @property
    def device(self) -> Any:
        """The device the inputs go to (the model's first device)."""
        return self.lm.device

    @property
    def max_length(self) -> int:
        """The longest context + label the model accepts."""
        if self._max_length:
            return self._max_length
        n = getattr(self.lm.config, "max_position_embeddings", None) or 4096
        return int(min(n, getattr(self.tokenizer, "model_max_length", n) or n))

    @property
    def chat(self) -> bool:
        """True if the tokenizer has a chat template (else prompts are rendered as plain text)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def pad_id(self) -> int:
        """The id used for padding (pad, else eos, else 0)."""
        tok = self.tokenizer
        for value in (tok.pad_token_id, tok.eos_token_id):
            if value is not None:
                return int(value)
        return 0

    # ---- rendering -----------------------------------------------------------------------------------
    def context(self, prompt: Prompt) -> str:
        """The prompt as the text the model continues (chat template with generation prompt, or plain)."""
        if self.chat:
            return self.tokenizer.apply_chat_template(list(prompt.messages), tokenize=False,
                                                      add_generation_prompt=True)
        return plain_text(prompt.messages)

    def encode_context(self, text: str) -> list[int]:
        """Token ids of a context (special tokens come from the chat template, or the tokenizer for plain)."""
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def count_tokens(self, prompt: Prompt) -> int:
        """The number of tokens of a rendered prompt (without the answer)."""
        return len(self.encode_context(self.context(prompt)))

    def _continuations(self, space: LabelSpace, prefix: str) -> list[_Cont]:
        """Every label form as token ids after `prefix` (empty after a chat turn start, else a space)."""
        conts = []
        for i, name in enumerate(space.names):
            for form in space.forms(name):
                ids = self.tokenizer(prefix + form, add_special_tokens=False)["input_ids"]
                if not ids:
                    raise BackendError(f"label '{name}': the form '{form}' tokenizes to nothing")
                conts.append(_Cont(label=i, ids=tuple(ids)))
        return conts

    # ---- scoring -------------------------------------------------------------------------------------
    #: `label_batch` takes `group`: runs of prompts that share their item's prefix (`multilabel.score_sets`).
    shares_group_prefix = True

    def label_batch(self, prompts: Sequence[Prompt], space: LabelSpace, *, cot: str | None = None,
                    group: int = 1) -> list[Scored]:
        """Score each prompt's labels; with `cot`, generate reasoning first and score after the answer cue.
        `group` > 1: the prompts come in runs of `group` that differ only after a shared item prefix (a
        text's k yes/no questions): each run's prefix is forwarded once (`score_ids`)."""
        contexts = [self.context(p) for p in prompts]
        raws: list[str | None] = [None] * len(prompts)
        if cot:
            # plain-text prompts end with the answer cue: the reasoning goes before it
            bases = contexts if self.chat else [c[: -len(ANSWER_CUE)] for c in contexts]
            reasons = self.generate(bases)
            raws = list(reasons)
            contexts = [f"{b}{r}\n{ANSWER_CUE}" if r else f"{b}{ANSWER_CUE}" for b, r in zip(bases, reasons)]
            prefix = " "
        else:
            prefix = "" if self.chat else " "
        conts = self._continuations(space, prefix)
        ids = [self.encode_context(c) for c in contexts]
        longest = max(len(c.ids) for c in conts)
        out: list[Scored] = []
        ok = [i for i, x in enumerate(ids) if len(x) + longest <= self.max_length]
        grouped = group if len(ok) == len(ids) and not cot else 1  # a run cut by a too-long prompt: plain
        scores = self.score_ids([ids[i] for i in ok], conts, len(space.names), group=grouped) if ok else []
        by_index = dict(zip(ok, scores))
        for i, prompt in enumerate(prompts):
            if i not in by_index:
                out.append(Scored(item_id=prompt.item_id, raw=raws[i], error=(
                    f"prompt has {len(ids[i])} tokens; the model takes at most {self.max_length}")))
                continue
            logp = dict(zip(space.names, by_index[i]))
            if self.samples > 1:
                rng = np.random.default_rng(item_seed(self.seed, prompt.item_id))
                drawn = sample_answers(logp, self.samples, self.temperature, rng)
                out.append(scored_from_answers(prompt.item_id, drawn, space, raw=" | ".join(drawn)))
                continue
            out.append(Scored(item_id=prompt.item_id, probs=normalize(logp), logprobs=logp,
                              prob_source="scores", raw=raws[i]))
        return out

    def score_ids(self, contexts: Sequence[Sequence[int]], conts: Sequence[_Cont], n_labels: int, *,
                  group: int = 1) -> list[list[float]]:
        """Per context, each label's log-score: logsumexp over its forms of the summed token log-probs.
        `group` > 1 (kv strategy with the prefix cache): each run of `group` contexts has the KV cache of
        its own shared prefix computed once, from that run alone, so a text's scores do not depend on the
        rest of the batch."""
        if self.strategy == "concat":
            form_lp = self._score_concat(contexts, conts)
        elif group > 1 and self.prefix_cache:
            form_lp = []
            for i in range(0, len(contexts), group):
                part = contexts[i:i + group]
                form_lp += self._score_kv(part, conts, self._run_prefix(part))
        else:
            prefix = self._shared_prefix(contexts)
            step = self.micro_batch or (4 if self.device.type == "cpu" else len(contexts))
            form_lp = []
            for i in range(0, len(contexts), step):
                form_lp += self._score_kv(contexts[i:i + step], conts, prefix)
        out = []
        for row in form_lp:
            per_label: list[list[float]] = [[] for _ in range(n_labels)]
            for c, v in zip(conts, row):
                per_label[c.label].append(v)
            out.append([logsumexp(vals) for vals in per_label])
        return out

    def _left_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[Any, Any, Any]:
        """Left-padded input ids, attention mask and position ids (0 at each first real token)."""
        torch = self._torch
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.tensor(list(s), dtype=torch.long)
            mask[i, width - len(s):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        dev = self.device
        return ids.to(dev), mask.to(dev), pos.to(dev)

    def _shared_prefix(self, contexts: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], list[Any]] | None:
        """The KV cache of the token prefix all `contexts` share (system turn and shots), computed once."""
        if not self.prefix_cache:
            return None
        cached = self._prefix
        if cached is not None:
            ids = cached[0]
            if all(len(c) > len(ids) and tuple(c[: len(ids)]) == ids for c in contexts):
                return cached
        if len(contexts) < 2:
            return None
        n, first = common_prefix(contexts), contexts[0]
        if n < _MIN_PREFIX:
            return None
        torch = self._torch
        ids = torch.tensor([list(first[:n])], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            out = self.lm(input_ids=ids, use_cache=True, logits_to_keep=1)
        kv = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        self._prefix = (tuple(first[:n]), kv)
        return self._prefix

    def _run_prefix(self, contexts: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], list[Any]] | None:
        """The KV cache of the prefix a run of contexts shares (one forward, not kept: it is one item's)."""
        n = common_prefix(contexts)
        if n < _MIN_PREFIX:
            return None
        torch = self._torch
        ids = tuple(contexts[0][:n])
        with torch.inference_mode():
            out = self.lm(input_ids=torch.tensor([list(ids)], dtype=torch.long, device=self.device),
                          use_cache=True, logits_to_keep=1)
        return ids, [(layer.keys, layer.values) for layer in out.past_key_values.layers]

    def _score_kv(self, contexts: Sequence[Sequence[int]], conts: Sequence[_Cont],
                  prefix: tuple[tuple[int, ...], list[Any]] | None) -> list[list[float]]:
        """Forward the prompts once (after a shared cached prefix); label continuations then run batched
        against the prompt KV cache repeated once per label form."""
        torch = self._torch
        from transformers import DynamicCache

        n_forms, b = len(conts), len(contexts)
        with torch.inference_mode():
            if prefix is None:
                ids, mask, pos = self._left_pad(contexts)
                cache = None
            else:  # [prefix][left padding][item]: the padding sits in the middle, masked out
                p = len(prefix[0])
                ids, smask, spos = self._left_pad([c[p:] for c in contexts])
                mask = torch.cat([torch.ones((b, p), dtype=smask.dtype, device=smask.device), smask], dim=1)
                pos = spos + p
                cache = DynamicCache(ddp_cache_data=[(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1))
                                                     for k, v in prefix[1]], config=self.lm.config)
            out = self.lm(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=cache,
                          use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)  # [B, V]
            first_ids = torch.tensor([c.ids[0] for c in conts], device=first.device)
            scores = first[:, first_ids]  # [B, F]
            rest = max(len(c.ids) for c in conts) - 1
            if rest > 0:
                cache = out.past_key_values
                cache.batch_repeat_interleave(n_forms)  # row order: context-major, form-minor
                feed = torch.full((n_forms, rest), self.pad_id, dtype=torch.long)
                target = torch.zeros((n_forms, rest), dtype=torch.long)
                valid = torch.zeros((n_forms, rest), dtype=torch.bool)
                for j, c in enumerate(conts):
                    k = len(c.ids) - 1
                    if k:
                        feed[j, :k] = torch.tensor(c.ids[:-1], dtype=torch.long)
                        target[j, :k] = torch.tensor(c.ids[1:], dtype=torch.long)
                        valid[j, :k] = True
                dev = ids.device
                feed = feed.repeat(b, 1).to(dev)
                # right-padded continuations: causal attention keeps real tokens off the padding after them
                cmask = torch.cat([mask.repeat_interleave(n_forms, dim=0),
                                   torch.ones((b * n_forms, rest), dtype=mask.dtype, device=dev)], dim=1)
                start = (pos[:, -1:] + 1).repeat_interleave(n_forms, dim=0)  # next position after the prompt
                cpos = start + torch.arange(rest, device=dev).unsqueeze(0)
                out2 = self.lm(input_ids=feed, attention_mask=cmask, position_ids=cpos,
                               past_key_values=cache, use_cache=True)
                lp = torch.log_softmax(out2.logits.float(), dim=-1)  # [B*F, rest, V]
                tok_lp = lp.gather(-1, target.repeat(b, 1).to(dev).unsqueeze(-1)).squeeze(-1)
                tok_lp = (tok_lp * valid.repeat(b, 1).to(dev)).sum(-1).view(b, n_forms)
                scores = scores + tok_lp
        return scores.double().cpu().tolist()

    def _score_concat(self, contexts: Sequence[Sequence[int]], conts: Sequence[_Cont]) -> list[list[float]]:
        """One forward per (prompt + label form) sequence, batched with left padding."""
        torch = self._torch
        seqs = [list(ctx) + list(c.ids) for ctx in contexts for c in conts]
        lens = [len(c.ids) for _ in contexts for c in conts]
        ids, mask, pos = self._left_pad(seqs)
        keep = max(lens) + 1
        with torch.inference_mode():
            out = self.lm(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=keep)
            lp = torch.log_softmax(out.logits.float(), dim=-1)  # [N, keep, V]; position t predicts t+1
        res = []
        for i, n in enumerate(lens):
            tgt = ids[i, -n:]
            pred = lp[i, keep - n - 1: keep - 1]
            res.append(float(pred.gather(-1, tgt.unsqueeze(-1)).sum()))
        f = len(conts)
        return [res[i * f:(i + 1) * f] for i in range(len(contexts))]

    def generate(self, contexts: Sequence[str]) -> list[str]:
        """Greedy continuations of `contexts` (at most max_new_tokens), cut before the answer cue."""
        torch = self._torch
        ids, mask, _ = self._left_pad([self.encode_context(c) for c in contexts])
        with torch.inference_mode():
            gen = self.lm.generate(input_ids=ids, attention_mask=mask, max_new_tokens=self.max_new_tokens,
                                   do_sample=False, pad_token_id=self.pad_id)
        texts = self.tokenizer.batch_decode(gen[:, ids.shape[1]:], skip_special_tokens=True)
        return [t.split(ANSWER_CUE)[0].strip() for t in texts]

    def close(self) -> None:
        """Drop the model and tokenizer."""
        self._lm = None
        self._tok = None
        self._prefix = None


def common_prefix(contexts: Sequence[Sequence[int]]) -> int:
    """The length of the token prefix every context shares, leaving at least one token to each."""
    n, first = min(len(c) for c in contexts) - 1, contexts[0]
    for c in contexts[1:]:
        k = 0
        while k < n and c[k] == first[k]:
            k += 1
        n = k
    return n
