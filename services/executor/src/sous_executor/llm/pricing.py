"""Cost of a model call from a price table {model: {prompt_per_1k, completion_per_1k}}."""

from __future__ import annotations

from collections.abc import Mapping


def price_of(prices: Mapping[str, Mapping[str, float]], model: str) -> Mapping[str, float] | None:
    """The model's price; a dated variant (gpt-4o-2024-08-06) uses its base model's price."""
    price = prices.get(model)
    if price is None:
        candidates = [name for name in prices if model.startswith(name + "-")]
        if candidates:
            price = prices[max(candidates, key=len)]
    return price


def cost_usd(
    prices: Mapping[str, Mapping[str, float]], model: str, prompt_tokens: int, completion_tokens: int
) -> float:
    """Unknown models cost 0 (production refuses them before the call unless priced)."""
    price = price_of(prices, model)
    if price is None:
        return 0.0
    value = prompt_tokens / 1000 * float(price.get("prompt_per_1k", 0.0)) + completion_tokens / 1000 * float(
        price.get("completion_per_1k", 0.0)
    )
    return round(value, 8)
