"""Properties of the money arithmetic: integer nano-dollars inside, cents rounded half up once
at the edges (``shared/money.py``), and the price book's two formulas
(``shared/billing/pricing.py``): what a call costs and the worst case reserved before it."""

from __future__ import annotations

import math
from fractions import Fraction

from hypothesis import example, given, settings
from hypothesis import strategies as st

from shared import money
from shared.billing import pricing, reconcile
from shared.billing.pricing import ModelPrice
from shared.gateway import pipeline
from shared.gateway.request import parse_request
from shared.money import NANOS_PER_CENT
from shared.providers import Usage

SETTINGS = settings(max_examples=200, deadline=None)
NANOS = st.integers(min_value=0, max_value=10**15)  # up to a million dollars
SIGNED_NANOS = st.integers(min_value=-(10**15), max_value=10**15)
PRICES: list[ModelPrice] = sorted(pricing.list_prices(), key=lambda p: (p.provider, p.model))
CHAT_PRICES = [p for p in PRICES if p.mode == "chat"]


def half_up(value: Fraction) -> int:
    """The exact rounding the money module promises: half away from zero."""
    magnitude = math.floor(abs(value) + Fraction(1, 2))
    return magnitude if value >= 0 else -magnitude


# ----------------------------------------------------------------------------- money


@SETTINGS
@given(SIGNED_NANOS)
@example(NANOS_PER_CENT // 2)  # exactly half a cent: up
@example(NANOS_PER_CENT // 2 - 1)  # just under: down
@example(-(NANOS_PER_CENT // 2))  # a refund of half a cent: away from zero
def test_cents_is_the_exact_amount_rounded_half_up_once(nanos: int):
    assert money.cents(nanos) == half_up(Fraction(nanos, NANOS_PER_CENT))
    assert abs(money.cents(nanos) * NANOS_PER_CENT - nanos) <= NANOS_PER_CENT // 2
    assert money.cents(-nanos) == -money.cents(nanos)


@SETTINGS
@given(st.integers(min_value=-(10**9), max_value=10**9), st.integers(0, NANOS_PER_CENT // 2 - 1))
def test_whole_cents_round_trip_and_less_than_half_a_cent_never_moves_them(cents: int, crumbs: int):
    assert money.cents(money.nanos(cents)) == cents
    assert money.cents(money.nanos(cents) + (crumbs if cents >= 0 else -crumbs)) == cents


@SETTINGS
@given(st.integers(min_value=0, max_value=10**18), st.integers(min_value=1, max_value=10**12))
def test_half_up_div_is_the_exact_quotient_rounded_half_up(numerator: int, denominator: int):
    assert money.half_up_div(numerator, denominator) == half_up(Fraction(numerator, denominator))


@SETTINGS
@given(st.lists(NANOS, min_size=1, max_size=40))
@example([NANOS_PER_CENT // 2 - 1] * 3)  # three lines of 0.4999999 cents: 0 + 0 + 0, total 1
def test_cents_of_a_sum_is_within_half_the_count_of_the_sum_of_cents(amounts: list[int]):
    """Each rounding is off by at most half a cent, so the rounded total and the total of
    rounded parts differ by less than (n + 1) / 2 cents: by at most n // 2 whole cents. That is
    why totals are rounded once from the exact sum."""
    difference = money.cents(sum(amounts)) - sum(money.cents(a) for a in amounts)
    assert abs(difference) <= len(amounts) // 2


GROUP = st.fixed_dictionaries(
    {
        "api_key_id": st.integers(1, 4),
        "last4": st.just("abcd"),
        "label": st.none(),
        "provider": st.sampled_from(["openai", "anthropic", "gemini"]),
        "model": st.sampled_from(["a", "b"]),
        "price_version_id": st.sampled_from([None, 1, 2]),
        "sell_version_id": st.sampled_from([None, 7]),
        "calls": st.integers(1, 1000),
        "input_tokens": st.integers(0, 10**6),
        "output_tokens": st.integers(0, 10**6),
        "cost_nanos": st.integers(0, 10**11),
        "sell_nanos": st.integers(0, 10**11),
    }
)
TOPUP = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["manual", "stripe", "stripe_reversal"]),
        "amount_cents": st.integers(1, 10**6),
        "created_at": st.just("2026-11-05T10:00:00+00:00"),
    }
).map(lambda t: {**t, "amount_cents": -t["amount_cents"]} if t["source"] == "stripe_reversal" else t)


@SETTINGS
@given(st.lists(GROUP, max_size=12), NANOS, NANOS, NANOS, st.lists(TOPUP, max_size=5))
def test_an_invoice_reconciles_to_the_sum_of_its_exact_lines(
    groups: list[dict], push: int, included: int, carried_in: int, topups: list[dict]
):
    """Every line is rounded once from exact nanos; the grand total is exactly the sum of the
    lines' nanos; what carries over is never more than what is left nor than was paid in."""
    usage = reconcile.usage_lines(groups)
    lines = reconcile.statement(
        usage,
        [{"deploys": 1, "total_nanos": push}],
        topups,
        included_nanos=included,
        carried_in_nanos=carried_in,
        plan="starter",
        previous_month="2026-10",
    )
    totals = reconcile.totals(
        usage, lines, push_nanos=push, included_nanos=included, carried_in_nanos=carried_in, topups=topups
    )
    sell = sum(g["sell_nanos"] for g in groups)
    paid_in = sum(money.nanos(t["amount_cents"]) for t in topups)
    assert totals["usage_nanos"] == sell and totals["cost_nanos"] == sum(g["cost_nanos"] for g in groups)
    assert totals["grand_total_nanos"] == sum(line["nanos"] for line in lines)
    assert totals["grand_total_nanos"] == sell + push - included - carried_in - paid_in
    assert all(line["cents"] == money.cents(line["nanos"]) for line in lines)
    assert totals["due_nanos"] * totals["credit_remaining_nanos"] == 0  # never both
    assert 0 <= totals["carried_out_nanos"] <= totals["credit_remaining_nanos"]
    assert totals["carried_out_nanos"] <= max(0, carried_in + paid_in)
    for by_lines in (usage, reconcile.key_lines(groups)):
        assert sum(line["sell_nanos"] for line in by_lines) == sell  # nothing lost or counted twice
        assert all(line["sell_cents"] == money.cents(line["sell_nanos"]) for line in by_lines)
        rounded_apart = sum(line["sell_cents"] for line in by_lines)
        assert abs(totals["usage_cents"] - rounded_apart) <= len(by_lines) // 2


# ----------------------------------------------------------------------------- prices


def usage_within(price: ModelPrice, max_input: int, max_output: int) -> st.SearchStrategy[Usage]:
    """A provider's usage for a call whose prompt is at most ``max_input`` tokens and whose
    output at most ``max_output``: cache reads and Gemini's tool prompt inside the prompt,
    reasoning inside the output; no cache writes (the gateway never asks for caching)."""

    @st.composite
    def build(draw: st.DrawFn) -> Usage:
        input_tokens = draw(st.integers(0, max_input))
        output_tokens = draw(st.integers(0, max_output))
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cached_input_tokens=draw(st.integers(0, input_tokens)),
            tool_prompt_tokens=draw(st.integers(0, input_tokens)) if price.provider == "gemini" else 0,
            reasoning_tokens=draw(st.integers(0, output_tokens)),
        )

    return build()


@st.composite
def priced_usage(draw: st.DrawFn) -> tuple[ModelPrice, int, int, Usage]:
    price = draw(st.sampled_from(PRICES))
    max_input = draw(st.integers(0, price.max_input_tokens))
    max_output = draw(st.integers(0, price.max_output_tokens if price.mode == "chat" else 0))
    return price, max_input, max_output, draw(usage_within(price, max_input, max_output))


@SETTINGS
@given(priced_usage())
def test_the_worst_case_covers_every_usage_within_its_bounds(case: tuple[ModelPrice, int, int, Usage]):
    price, max_input, max_output, usage = case
    cost = pricing.cost_nanos(price, usage)
    assert 0 <= cost <= pricing.worst_case_nanos(price, max_input, max_output)


@SETTINGS
@given(
    st.sampled_from(PRICES),
    st.integers(0, 3_000_000),
    st.integers(0, 10**6),
    st.integers(0, 3_000_000),
    st.integers(0, 3_000_000),
    st.integers(0, 3_000_000),
    st.integers(0, 3_000_000),
)
def test_a_cost_is_never_negative_whatever_the_provider_reports(
    price: ModelPrice, input_: int, output: int, cached: int, writes: int, writes_1h: int, tool: int
):
    """Even usage that does not add up (more cached than prompt tokens) costs ≥ 0."""
    usage = Usage(input_, output, cached, writes, writes_1h, tool, 0)
    assert pricing.cost_nanos(price, usage) >= 0


@SETTINGS
@given(st.sampled_from(PRICES), st.integers(0, 2_000_000), st.integers(0, 200_000))
def test_the_worst_case_is_the_price_of_every_token_fresh(price: ModelPrice, input_: int, output: int):
    assert pricing.worst_case_nanos(price, input_, output) == pricing.cost_nanos(price, Usage(input_, output))


@SETTINGS
@given(
    st.sampled_from(PRICES),
    st.integers(0, 400_000),
    st.integers(0, 100_000),
    st.integers(1, 300_000),
    st.integers(1, 100_000),
)
@example(pricing.lookup("anthropic", "claude-sonnet-4-5"), 200_000, 10, 1, 0)  # across the 200k tier
def test_more_tokens_never_cost_less(
    price: ModelPrice, input_: int, output: int, more_in: int, more_out: int
):
    """Across the long-context threshold too: its rates are never below the base rates."""
    assert price is not None
    cost = pricing.cost_nanos(price, Usage(input_, output))
    assert pricing.cost_nanos(price, Usage(input_ + more_in, output)) >= cost
    assert pricing.cost_nanos(price, Usage(input_, output + more_out)) >= cost


MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=200)}
)


@st.composite
def admitted_call(draw: st.DrawFn) -> tuple[pipeline.Call, Usage | None, int]:
    """A call as admitted (its prompt bound, max_tokens and the output leased so far: all of
    it, or a stream's lease), what its provider had said when the stream broke (nothing, or
    partial usage within what was asked) and the bytes relayed."""
    price = draw(st.sampled_from(CHAT_PRICES))
    conv = parse_request(
        {
            "provider": price.provider,
            "model": price.model,
            "messages": draw(st.lists(MESSAGE, min_size=1, max_size=5)),
            "max_tokens": draw(st.integers(1, price.max_output_tokens)),
        }
    )
    sell = pricing.Sell("markup", markup_bp=draw(st.integers(-10_000, 1_000_000)))
    bound = pipeline.prompt_token_bound(conv, price)
    admission = {
        "leased_tokens": draw(st.integers(1, conv.max_tokens)),
        "clamped_to": None,
        "prompt_tokens": bound,
    }
    call = pipeline.Call(ctx=None, conv=conv, install_id=None, admission=admission)  # type: ignore[arg-type]
    call.price, call.sell = price, sell
    said = draw(
        st.none()
        | st.builds(
            Usage,
            input_tokens=st.integers(0, bound),
            output_tokens=st.integers(0, conv.max_tokens),
            cached_input_tokens=st.just(0),
            # builds() draws every field of a NamedTuple; the others stay 0 as before (the
            # bound assumes no cache writes: see pricing.worst_case_nanos).
            cache_write_tokens=st.just(0),
            cache_write_1h_tokens=st.just(0),
            tool_prompt_tokens=st.just(0),
            reasoning_tokens=st.just(0),
        )
    )
    return call, said, draw(st.integers(0, 10**7))


@SETTINGS
@given(admitted_call())
def test_a_call_billed_from_an_estimate_never_costs_more_than_it_reserved(
    case: tuple[pipeline.Call, Usage | None, int],
):
    """A stream cut short is billed from the provider's partial usage completed by estimates
    (``Call.estimated_usage``), never more output than its lease held (``Call.within_lease``):
    within the reservation, at cost and at any markup, so no cap can be passed that way."""
    call, said, relayed_bytes = case
    usage = call.within_lease(call.estimated_usage(said, relayed_bytes))
    bound = pipeline.prompt_token_bound(call.conv, call.price)
    reserved = pricing.worst_case_nanos(
        call.price, bound, call.leased_tokens
    )  # ADMIT's and the lease's kx_cost
    cost = pricing.cost_nanos(call.price, usage)
    assert 0 <= cost <= reserved
    assert pricing.sell_nanos(cost, usage, call.sell) <= pricing.marked_up(reserved, call.sell.markup_bp)
    assert usage.output_tokens <= call.conv.max_tokens
    assert usage.input_tokens <= pipeline.prompt_token_bound(call.conv, call.price)
