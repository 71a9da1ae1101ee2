"""`llm2edge label --dry-run`: the items, prompt and output tokens, and the cost a run would have.

Tokens are counted with the model's tokenizer (hf backend) or as characters / 4 (openai). With `--samples K`
the counts include the K answers per item: the hf backend draws them from one scoring pass (counted once);
OpenAI's API returns them as `n=K` choices of one request (the prompt counted once, the answer K times); any
other server is counted as K requests per item (prompt and answer K times: llama.cpp's server ignores `n`),
an upper bound where a server honours `n`. A multi-label task on hf counts its k yes/no prompts per item.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm2edge.defaults import LABEL_SEP
from llm2edge.hub.label.backend import Backend
from llm2edge.hub.label.config import LabelConfig
from llm2edge.hub.label.prompts import PromptBuilder
from llm2edge.hub.label.task import Task
from llm2edge.records import Record


@dataclass(frozen=True)
class DryRun:
    """What a run would do: items, prompt tokens and (for priced OpenAI models) an estimated cost."""

    items: int
    todo: int
    prompt_tokens: int
    output_tokens: int
    tokens_estimated: bool  # True when counted as characters / 4 (no tokenizer)
    cost_usd: float | None
    model: str
    samples: int = 1  # answers per item (--samples)
    samples_note: str | None = None  # how the K answers were counted
    prompts_per_item: int = 1  # multi-label on hf: one yes/no prompt per label

    def text(self) -> str:
        """A human-readable summary."""
        how = "estimated as characters/4" if self.tokens_estimated else "model tokenizer"
        lines = [f"items: {self.items} ({self.todo} to label, {self.items - self.todo} already done)",
                 f"prompt tokens: {self.prompt_tokens} ({how}); output tokens ~{self.output_tokens}"]
        if self.prompts_per_item > 1:
            lines.append(f"multi-label: {self.prompts_per_item} yes/no prompts per item (one per label)")
        if self.samples > 1:
            lines.append(f"samples: {self.samples} answers per item ({self.samples_note})")
        if self.cost_usd is not None:
            from llm2edge.hub.label import pricing

            lines.append(f"estimated cost: ${self.cost_usd:.4f} for {self.model} "
                         f"(prices as of {pricing.AS_OF}, {pricing.SOURCE})")
        else:
            lines.append(f"estimated cost: n/a (no price known for {self.model})")
        return "\n".join(lines)


def sample_factors(config: LabelConfig) -> tuple[int, int, str | None]:
    """How many times (prompt, output) tokens are paid per item with `config.samples`, and why."""
    k = config.samples
    if k == 1:
        return 1, 1, None
    if config.backend == "hf":
        return 1, 1, "drawn from one scoring pass: tokens counted once"
    if config.base_url is None:
        return 1, k, f"n={k} choices of one request: prompt counted once, answer {k} times"
    return k, k, (f"counted as {k} requests per item (prompt and answer {k} times): an upper bound where "
                  "the server honours n")


def dry_run(config: LabelConfig, builder: PromptBuilder, task: Task, todo: Sequence[Record], n: int,
            backend: Backend | None, model: str, *, yes_no: Sequence[Any] | None = None) -> DryRun:
    """Count prompt tokens (tokenizer, or characters/4) and price them when the model has a known price.

    A multi-label task counts, on hf, the k yes/no prompts per item (`yes_no`: one builder per label) and
    a one-token answer each; elsewhere its answer as every label once, joined (the longest list)."""
    from llm2edge.hub.label import pricing

    if yes_no:
        prompts = [b.render(r.id, r.text, r.fields) for r in todo for b in yes_no]
    else:
        prompts = [builder.render(r.id, r.text, r.fields) for r in todo]
    counter = getattr(backend, "count_tokens", None)
    label_chars = max(len(f) for name in task.label_names for f in task.space.forms(name))
    if yes_no:
        label_chars = 3  # "yes" / "no": one token per prompt, k prompts per item
    elif task.multi_label:
        label_chars = len(LABEL_SEP.join(task.space.forms(name)[0] for name in task.label_names))
    per_item = (max(1, math.ceil(label_chars / 4)) * max(1, len(yes_no or ()))
                + (config.max_new_tokens if config.cot else 0))
    if counter is not None and config.backend == "hf":
        tokens, estimated = sum(counter(p) for p in prompts), False
    else:
        chars = sum(len(m["content"]) + 16 for p in prompts for m in p.messages)  # ~4 tokens of overhead
        tokens, estimated = math.ceil(chars / 4), True
    k_in, k_out, note = sample_factors(config)
    tokens, out_tokens = tokens * k_in, len(todo) * per_item * k_out
    cost = pricing.estimate_cost(model, tokens, out_tokens) if config.backend == "openai" else None
    return DryRun(items=n, todo=len(todo), prompt_tokens=tokens, output_tokens=out_tokens,
                  tokens_estimated=estimated, cost_usd=cost, model=model, samples=config.samples,
                  samples_note=note, prompts_per_item=len(yes_no or ()) or 1)
