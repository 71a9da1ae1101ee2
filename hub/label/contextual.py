"""Contextual calibration (Zhao et al., 2021): divide by the label distribution on content-free inputs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from llm2edge.errors import BackendError
from llm2edge.hub.label.backend import Backend, LabelSpace, Scored
from llm2edge.hub.label.prompts import PromptBuilder


class Calibrator:
    """Per distinct set of item fields, the mean label distribution on the content-free prompts."""

    def __init__(self, backend: Backend, builder: PromptBuilder, space: LabelSpace, *, cot: str | None = None
                 ) -> None:
        self.backend, self.builder, self.space, self.cot = backend, builder, space, cot
        self._refs: dict[tuple[tuple[str, str], ...], dict[str, float]] = {}

    def reference(self, fields: Mapping[str, str] | None = None) -> dict[str, float]:
        """The mean distribution over the labels on "N/A", "" and "[MASK]" with these fields (cached)."""
        key = tuple(sorted((fields or {}).items()))
        if key not in self._refs:
            scored = self.backend.label_batch(self.builder.content_free(fields), self.space, cot=self.cot)
            good = [s.probs for s in scored if s.probs and s.prob_source != "answer"]
            if not good:
                errors = "; ".join(sorted({s.error or "no probabilities" for s in scored}))
                raise BackendError(f"contextual calibration failed on the content-free prompts: {errors}")
            self._refs[key] = {n: sum(p[n] for p in good) / len(good) for n in self.space.names}
        return self._refs[key]

    def apply(self, scored: Scored, fields: Mapping[str, str] | None = None) -> Scored:
        """`scored` with probabilities divided by the reference, renormalized (answers unchanged)."""
        if not scored.probs or scored.prob_source == "answer":
            return scored
        ref = self.reference(fields)
        q = {n: scored.probs[n] / max(ref[n], 1e-12) for n in self.space.names}
        total = sum(q.values())
        probs = {n: v / total for n, v in q.items()}
        logprobs = {n: math.log(v) if v > 0 else -math.inf for n, v in probs.items()}
        return replace(scored, probs=probs, logprobs=logprobs)
