"""The one price table for `llm2edge label --dry-run` cost estimates (OpenAI models, USD per 1M tokens).

Source: https://openai.com/api/pricing (standard tier, text tokens), as known on 2025-06-01. Prices change:
check the page before relying on an estimate. Unknown models get no estimate.
"""

from __future__ import annotations

#: Date and source of the table below.
AS_OF = "2025-06-01"
SOURCE = "https://openai.com/api/pricing"

#: model -> (input USD per 1M tokens, output USD per 1M tokens)
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
}


def price(model: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens for `model` (dated snapshots match too), or None."""
    if model in PRICES:
        return PRICES[model]
    for name in sorted(PRICES, key=len, reverse=True):
        if model.startswith(name + "-") and model[len(name) + 1:][:1].isdigit():
            return PRICES[name]
    return None


def estimate_cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """Estimated USD for the token counts, or None if the model is not in the table."""
    p = price(model)
    if p is None:
        return None
    return (input_tokens * p[0] + output_tokens * p[1]) / 1e6
