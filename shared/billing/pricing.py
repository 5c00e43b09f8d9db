"""Prices: what one token of each model costs and sells for, in integer nano-dollars.

The price book lives in the database, versioned (``shared/billing/price_book.py``); ADMIT
hands the gateway the cost price in force and the sell rule, and the formulas here turn a
call's usage into its exact cost and sell amounts. ``prices.json`` holds the providers' list
prices that seed a new database's book.

Money is counted in integers so that summing thousands of requests never drifts:
1 USD = 10**9 nanos, and a price of ``x`` USD per million tokens is ``x * 1000`` nanos per
token. Prices are read from ``prices.json`` once, through ``Decimal(str(x))`` so that a JSON
float such as ``0.15`` becomes exactly 150 nanos and never 149.99999.

Model lookup is exact on purpose: the canonical name or one of its listed aliases, for the
provider asked. A prefix match would price ``gpt-4o-mini`` as ``gpt-4o`` (16x too much), and
stripping a dated suffix would price the old ``gpt-4o-2024-05-13`` (5/15) as ``gpt-4o``
(2.5/10); a model the book does not list is unknown, and the caller refuses it.
"""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from shared import money

if TYPE_CHECKING:
    from shared.providers.base import Usage

PRICES_FILE = Path(__file__).with_name("prices.json")
LONG_CONTEXT_THRESHOLD = 200_000
_NANOS_PER_USD_PER_MTOK = Decimal(money.NANOS_PER_TOKEN_PER_USD_PER_MTOK)
_RATE_KEYS = {
    "input": "input_per_mtok_usd",
    "output": "output_per_mtok_usd",
    "cache_read": "cache_read_per_mtok_usd",
    "cache_write_5m": "cache_write_5m_per_mtok_usd",
    "cache_write_1h": "cache_write_1h_per_mtok_usd",
}

# Prices that are not a whole number of nanos per token, rounded up (never undercharge).
# Filled at load; see rounded_up_prices().
_ROUNDED_UP: list[tuple[str, str, str]] = []


class Rates(NamedTuple):
    """Nanos per token for each kind of token, for one pricing tier."""

    input: int
    output: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int


class ModelPrice(NamedTuple):
    """One model's prices. The base-tier rates are flat fields; ``long_context`` holds the
    rates that apply to the whole request once its prompt exceeds 200k tokens."""

    provider: str
    model: str
    input: int
    output: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    max_input_tokens: int
    max_output_tokens: int
    aliases: tuple[str, ...] = ()
    long_context: Rates | None = None
    long_context_threshold: int = LONG_CONTEXT_THRESHOLD
    mode: str = "chat"  # or "embedding": priced per input token, called at /v1/embeddings
    request: int = 0  # a per-call fee, in nanos
    version_id: int | None = None  # the price version in the database
    # Thinks before it writes, unasked, and bills that thinking as output without streaming
    # it: its streams reserve all of max_tokens (no lease) and its calls are never clamped.
    hidden_reasoning: bool = False

    @property
    def base(self) -> Rates:
        return Rates(self.input, self.output, self.cache_read, self.cache_write_5m, self.cache_write_1h)

    def rates_for(self, prompt_tokens: int) -> Rates:
        """The tier a request with this many prompt tokens is billed at."""
        if self.long_context is not None and prompt_tokens > self.long_context_threshold:
            return self.long_context
        return self.base


def _nanos(model: str, key: str, usd_per_mtok: Any) -> int:
    """USD per Mtok -> whole nanos per token. Fractional results are rounded up and listed
    by :func:`rounded_up_prices`, so the gateway never bills below list price."""
    exact = Decimal(str(usd_per_mtok)) * _NANOS_PER_USD_PER_MTOK
    if exact < 0:
        raise ValueError(f"prices.json: {model}.{key} is negative")
    whole = int(exact.to_integral_value(rounding=ROUND_CEILING))
    if whole != exact:
        _ROUNDED_UP.append((model, key, str(exact.normalize())))
    return whole


def _base_rates(model: str, entry: dict[str, Any]) -> Rates:
    """A price prices.json omits is billed at the input rate: the provider has no separate
    price for that kind of token (OpenAI and Gemini have no cache writes)."""
    input_rate = _nanos(model, _RATE_KEYS["input"], entry[_RATE_KEYS["input"]])
    values = {
        name: _nanos(model, key, entry[key]) if key in entry else input_rate
        for name, key in _RATE_KEYS.items()
    }
    return Rates(**values)


def _tier_rates(model: str, tier: dict[str, Any], base: Rates) -> Rates:
    """The long-context tier. A rate the tier omits (Sonnet's 1h cache write) scales with
    the tier's input rate: 6 USD x (6 / 3) = 12 USD, Anthropic's list price."""
    tier_input = _nanos(model, "above_200k." + _RATE_KEYS["input"], tier[_RATE_KEYS["input"]])
    values: dict[str, int] = {}
    for name, key in _RATE_KEYS.items():
        if key in tier:
            values[name] = _nanos(model, "above_200k." + key, tier[key])
        else:
            values[name] = -(-getattr(base, name) * tier_input // max(base.input, 1))
    return Rates(**values)


def _model_price(model: str, entry: dict[str, Any]) -> ModelPrice:
    base = _base_rates(model, entry)
    tier = entry.get("above_200k_prompt_tokens")
    return ModelPrice(
        provider=entry["provider"],
        model=model,
        input=base.input,
        output=base.output,
        cache_read=base.cache_read,
        cache_write_5m=base.cache_write_5m,
        cache_write_1h=base.cache_write_1h,
        max_input_tokens=entry["max_input_tokens"],
        max_output_tokens=entry["max_output_tokens"],
        aliases=tuple(entry.get("aliases", ())),
        long_context=_tier_rates(model, tier, base) if tier else None,
        mode=entry.get("mode", "chat"),
        hidden_reasoning=bool(entry.get("hidden_reasoning", False)),
    )


@cache
def _raw() -> dict[str, dict[str, Any]]:
    book: dict[str, dict[str, Any]] = json.loads(PRICES_FILE.read_text(encoding="utf-8"))
    return book


@cache
def _book() -> dict[tuple[str, str], ModelPrice]:
    """(provider, name or alias) -> price, built once per process."""
    _ROUNDED_UP.clear()
    book: dict[tuple[str, str], ModelPrice] = {}
    for model, entry in _raw().items():
        price = _model_price(model, entry)
        for name in (model, *price.aliases):
            key = (price.provider, name)
            if key in book:
                raise ValueError(f"prices.json: {name!r} is listed twice for {price.provider}")
            book[key] = price
    return book


def rounded_up_prices() -> tuple[tuple[str, str, str], ...]:
    """(model, price key, exact nanos) of every listed price that is not a whole number of
    nanos per token. A test pins this list, so a new fractional price gets noticed."""
    _book()
    return tuple(_ROUNDED_UP)


def lookup(provider: str, model: str) -> ModelPrice | None:
    """The list price of ``model`` (canonical name or listed alias) at ``provider`` in
    prices.json, the seed of a new price book; or None."""
    return _book().get((provider, model))


def list_prices() -> list[ModelPrice]:
    """Every model of prices.json, once each, in the file's order: the seed."""
    return list({id(price): price for price in _book().values()}.values())


def cost_nanos(price: ModelPrice, usage: Usage) -> int:
    """Exact cost of one request (protocol notes section 5), in nanos.

    ``usage.input_tokens`` is the whole prompt, so the fresh (full-price) part is what is
    left after cache reads and writes. Output includes reasoning/thinking tokens. Gemini's
    tool-use prompt tokens are billed as input but do not count toward the 200k threshold.
    """
    rates = price.rates_for(usage.input_tokens - usage.tool_prompt_tokens)
    return _at(rates, usage) + price.request


def _at(rates: Rates, usage: Usage) -> int:
    reads = usage.cached_input_tokens
    writes_5m = usage.cache_write_tokens
    writes_1h = usage.cache_write_1h_tokens
    fresh = max(usage.input_tokens - reads - writes_5m - writes_1h, 0)
    return (
        fresh * rates.input
        + reads * rates.cache_read
        + writes_5m * rates.cache_write_5m
        + writes_1h * rates.cache_write_1h
        + usage.output_tokens * rates.output
    )


def worst_case_nanos(
    price: ModelPrice, input_tokens: int, output_tokens: int, *, cache_writes: bool = False
) -> int:
    """The most a request can cost, to reserve budget before calling the provider: every
    prompt token at the full input rate (cache reads only make it cheaper), or at the dearest
    of the input and cache-write rates when the request may write the cache, and every output
    token at the output rate, both at the long-context tier when the prompt is above its
    threshold. ADMIT computes the same bound in SQL (``kx_cost`` and ``kx_cache_writing`` in
    sql/functions/pricing.sql)."""
    rates = price.rates_for(input_tokens)
    prompt = max(rates.input, rates.cache_write_5m, rates.cache_write_1h) if cache_writes else rates.input
    return input_tokens * prompt + output_tokens * rates.output + price.request


class Sell(NamedTuple):
    """A sell rule in force: a markup in basis points over cost, or fixed per-token rates."""

    kind: str  # "markup" or "fixed"
    markup_bp: int = 0
    fixed: Rates | None = None
    request: int = 0
    version_id: int | None = None


AT_COST = Sell("markup")


def marked_up(cost: int, markup_bp: int) -> int:
    """cost x (1 + markup_bp / 10000), rounded half up to a whole nano: the only rounding
    inside, at most half a nano a call (kx_sell in sql/functions/pricing.sql is the same)."""
    return (cost * (10_000 + markup_bp) + 5_000) // 10_000


def sell_nanos(cost: int, usage: Usage, sell: Sell) -> int:
    """What a call that cost ``cost`` sells for: marked up, or at the rule's fixed rates."""
    if sell.fixed is not None:
        return _at(sell.fixed, usage) + sell.request
    return marked_up(cost, sell.markup_bp)


def _rates(row: dict[str, Any], prefix: str = "") -> Rates:
    return Rates(*(int(row[f"{prefix}{name}_nanos"]) for name in _RATE_KEYS))


def admitted_price(row: dict[str, Any]) -> ModelPrice:
    """A cost price version (a ``model_prices`` row as JSON, with its model's provider, name
    and context)."""
    base = _rates(row)
    threshold = row.get("long_context_threshold")
    return ModelPrice(
        provider=row["provider"],
        model=row["model"],
        **{name: getattr(base, name) for name in _RATE_KEYS},
        max_input_tokens=int(row["max_input_tokens"]),
        max_output_tokens=0,
        long_context=_rates(row, "lc_") if threshold else None,
        long_context_threshold=int(threshold or LONG_CONTEXT_THRESHOLD),
        request=int(row["request_nanos"]),
        version_id=int(row["id"]),
    )


def admitted_sell(row: dict[str, Any] | None) -> Sell:
    """A sell rule version (a ``sell_prices`` row as JSON); none: sell at cost."""
    if row is None:
        return AT_COST
    if row["kind"] == "fixed":
        return Sell("fixed", fixed=_rates(row), request=int(row["request_nanos"]), version_id=int(row["id"]))
    return Sell("markup", markup_bp=int(row["markup_bp"]), version_id=int(row["id"]))
