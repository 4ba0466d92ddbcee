"""USD prices per million tokens, and the cost of a run's usage.

Unknown models cost `None` ("unknown"), never zero. Prices are matched by the longest
model-name prefix, so dated snapshots (claude-sonnet-4-5-20250929) find their family.
Cache writes are priced at the 5-minute rate (1.25x input); reads at 0.1x input.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..config import PricingConfig
from ..result import Usage


@dataclass(frozen=True, slots=True)
class Price:
    input: float
    output: float
    cache_write: float
    cache_read: float


def _anthropic(input_price: float, output_price: float) -> Price:
    return Price(input_price, output_price, input_price * 1.25, input_price * 0.1)


PRICES: dict[str, Price] = {
    # Anthropic (per MTok, standard tier)
    "claude-opus-4-6": _anthropic(5.0, 25.0),
    "claude-sonnet-4-6": _anthropic(3.0, 15.0),
    "claude-opus-4-5": _anthropic(5.0, 25.0),
    "claude-opus-4-1": _anthropic(15.0, 75.0),
    "claude-opus-4": _anthropic(15.0, 75.0),
    "claude-sonnet-4-5": _anthropic(3.0, 15.0),
    "claude-sonnet-4": _anthropic(3.0, 15.0),
    "claude-haiku-4-5": _anthropic(1.0, 5.0),
    "claude-3-7-sonnet": _anthropic(3.0, 15.0),
    "claude-3-5-sonnet": _anthropic(3.0, 15.0),
    "claude-3-5-haiku": _anthropic(0.8, 4.0),
    "claude-3-opus": _anthropic(15.0, 75.0),
    "claude-3-haiku": _anthropic(0.25, 1.25),
}


def _openai(input_price: float, output_price: float, cached: float) -> Price:
    return Price(input_price, output_price, input_price, cached)  # OpenAI does not charge cache writes


PRICES.update(
    {
        # OpenAI (per MTok, standard tier)
        "gpt-4o-mini": _openai(0.15, 0.60, 0.075),
        "gpt-4o": _openai(2.50, 10.0, 1.25),
        "gpt-4.1-nano": _openai(0.10, 0.40, 0.025),
        "gpt-4.1-mini": _openai(0.40, 1.60, 0.10),
        "gpt-4.1": _openai(2.0, 8.0, 0.50),
        "gpt-5-nano": _openai(0.05, 0.40, 0.005),
        "gpt-5-mini": _openai(0.25, 2.0, 0.025),
        "gpt-5": _openai(1.25, 10.0, 0.125),
        "o4-mini": _openai(1.10, 4.40, 0.275),
        "o3-mini": _openai(1.10, 4.40, 0.55),
        "o3": _openai(2.0, 8.0, 0.50),
    }
)


def _gemini(input_price: float, output_price: float) -> Price:
    return Price(input_price, output_price, input_price, input_price * 0.25)  # implicit caching: 75% off


PRICES.update(
    {
        # Gemini API (per MTok, paid tier, prompts up to 200k tokens; longer prompts cost more)
        "gemini-2.5-pro": _gemini(1.25, 10.0),
        "gemini-2.5-flash-lite": _gemini(0.10, 0.40),
        "gemini-2.5-flash": _gemini(0.30, 2.50),
        "gemini-2.0-flash-lite": _gemini(0.075, 0.30),
        "gemini-2.0-flash": _gemini(0.10, 0.40),
    }
)

FREE_PROVIDERS = frozenset({"scripted"})
UNMETERED_PROVIDERS = frozenset({"mcp_sampling"})  # the MCP host's model: it reports no usage


def price_from_config(pricing: PricingConfig | None) -> Price | None:
    """The price a program sets in [model.pricing]; cache rates default to 1.25x and 0.1x input."""
    if pricing is None:
        return None
    return Price(
        pricing.input,
        pricing.output,
        pricing.input * 1.25 if pricing.cache_write is None else pricing.cache_write,
        pricing.input * 0.1 if pricing.cache_read is None else pricing.cache_read,
    )


@functools.lru_cache(maxsize=256)
def price_for(model: str) -> Price | None:
    best = ""
    for prefix in PRICES:
        if model.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return PRICES[best] if best else None


def cost_usd(provider: str, model: str, usage: Usage, override: Price | None = None) -> float | None:
    """What `usage` costs in USD, or None when the model's price is unknown."""
    if provider in FREE_PROVIDERS:
        return 0.0
    if provider in UNMETERED_PROVIDERS:
        return None
    price = override or price_for(model)
    if price is None:
        return None
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_write_tokens * price.cache_write
        + usage.cache_read_tokens * price.cache_read
    ) / 1_000_000
