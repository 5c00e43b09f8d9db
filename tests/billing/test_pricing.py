"""The price book: exact integer nanos, exact lookups, half-up cents."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from shared import money
from shared.billing import pricing
from shared.providers import anthropic, gemini, openai
from shared.providers.base import Usage


def price(provider: str, model: str) -> pricing.ModelPrice:
    found = pricing.lookup(provider, model)
    assert found is not None, (provider, model)
    return found


# The worked examples of the protocol notes (section 5), with the usage each fixture reports.
WORKED_EXAMPLES = [
    # openai_chat.json: 8 in, 9 out
    ("openai", "gpt-4o-mini-2024-07-18", Usage(input_tokens=8, output_tokens=9), "0.0000066"),
    # openai_stream.txt: 78 in, 9 out
    ("openai", "gpt-4o-mini", Usage(input_tokens=78, output_tokens=9), "0.0000171"),
    # anthropic_message_cache.json: 3 fresh + 418 written (5m) + 1111 read, 33 out
    (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        Usage(
            input_tokens=3 + 418 + 1111, output_tokens=33, cached_input_tokens=1111, cache_write_tokens=418
        ),
        "0.0024048",
    ),
    # anthropic_stream_tool_use.txt: 377 in, 65 out
    ("anthropic", "claude-sonnet-4-20250514", Usage(input_tokens=377, output_tokens=65), "0.002106"),
    # gemini_generate.json: 9 prompt, 9 candidates + 34 thoughts
    ("gemini", "gemini-2.5-flash", Usage(input_tokens=9, output_tokens=9 + 34), "0.0001102"),
    # gemini_stream.txt: 18 prompt, 80 candidates + 35 thoughts
    ("gemini", "gemini-2.5-flash", Usage(input_tokens=18, output_tokens=80 + 35), "0.0002929"),
]


@pytest.mark.parametrize(("provider", "model", "usage", "usd"), WORKED_EXAMPLES)
def test_worked_examples_exact(provider: str, model: str, usage: Usage, usd: str) -> None:
    nanos = pricing.cost_nanos(price(provider, model), usage)
    assert isinstance(nanos, int)
    assert nanos == int(Decimal(usd) * 10**9)


def test_worked_examples_as_integers() -> None:
    expected = [6_600, 17_100, 2_404_800, 2_106_000, 110_200, 292_900]
    got = [pricing.cost_nanos(price(p, m), u) for p, m, u, _ in WORKED_EXAMPLES]
    assert got == expected


def test_fixture_usage_blocks_parse_and_price_exactly() -> None:
    """The raw usage objects of the fixtures, through the adapters' parsers."""
    openai_usage = openai.usage_from(
        {
            "completion_tokens": 9,
            "prompt_tokens": 8,
            "total_tokens": 17,
            "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
    )
    anthropic_usage = anthropic.usage_from(
        {
            "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 418},
            "cache_creation_input_tokens": 418,
            "cache_read_input_tokens": 1111,
            "input_tokens": 3,
            "output_tokens": 33,
            "service_tier": "standard",
        }
    )
    gemini_usage = gemini.usage_from(
        {
            "candidatesTokenCount": 9,
            "promptTokenCount": 9,
            "thoughtsTokenCount": 34,
            "totalTokenCount": 52,
        }
    )
    assert openai_usage and anthropic_usage and gemini_usage
    assert anthropic_usage.input_tokens == 1532
    assert pricing.cost_nanos(price("openai", "gpt-4o-mini"), openai_usage) == 6_600
    assert pricing.cost_nanos(price("anthropic", "claude-sonnet-4-5"), anthropic_usage) == 2_404_800
    assert pricing.cost_nanos(price("gemini", "gemini-2.5-flash"), gemini_usage) == 110_200


def test_openai_cached_tokens_are_part_of_the_prompt() -> None:
    # 1000 prompt of which 800 cached: 200 x 150 + 800 x 75 + 10 x 600
    usage = Usage(input_tokens=1000, output_tokens=10, cached_input_tokens=800)
    assert pricing.cost_nanos(price("openai", "gpt-4o-mini"), usage) == 30_000 + 60_000 + 6_000


def test_gemini_cached_content_is_a_subset_of_the_prompt() -> None:
    # gemini_generate_cached.json: 17713 prompt (17379 cached), 68 + 821 out, at 2.5-flash
    usage = gemini.usage_from(
        {
            "cachedContentTokenCount": 17379,
            "candidatesTokenCount": 68,
            "promptTokenCount": 17713,
            "thoughtsTokenCount": 821,
        }
    )
    assert usage is not None
    expected = (17713 - 17379) * 300 + 17379 * 30 + (68 + 821) * 2500
    assert pricing.cost_nanos(price("gemini", "gemini-2.5-flash"), usage) == expected


def test_anthropic_one_hour_cache_writes() -> None:
    usage = anthropic.usage_from(
        {
            "input_tokens": 10,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
            "output_tokens": 1,
        }
    )
    assert usage == Usage(
        input_tokens=310, output_tokens=1, cache_write_tokens=100, cache_write_1h_tokens=200
    )
    expected = 10 * 1000 + 100 * 1250 + 200 * 2000 + 1 * 5000
    assert pricing.cost_nanos(price("anthropic", "claude-haiku-4-5"), usage) == expected


def test_anthropic_writes_without_breakdown_are_5m_writes() -> None:
    usage = anthropic.usage_from({"input_tokens": 5, "cache_creation_input_tokens": 40, "output_tokens": 2})
    assert usage == Usage(input_tokens=45, output_tokens=2, cache_write_tokens=40)


def test_long_context_tier_applies_to_every_token_above_200k() -> None:
    pro = price("gemini", "gemini-2.5-pro")
    at_limit = Usage(input_tokens=200_000, output_tokens=1_000)
    above = Usage(input_tokens=200_001, output_tokens=1_000, cached_input_tokens=1)
    assert pricing.cost_nanos(pro, at_limit) == 200_000 * 1_250 + 1_000 * 10_000
    assert pricing.cost_nanos(pro, above) == 200_000 * 2_500 + 1 * 250 + 1_000 * 15_000


def test_gemini_tool_use_prompt_does_not_count_toward_the_threshold() -> None:
    usage = gemini.usage_from(
        {"promptTokenCount": 199_000, "toolUsePromptTokenCount": 5_000, "candidatesTokenCount": 1}
    )
    assert usage is not None and usage.input_tokens == 204_000
    assert pricing.cost_nanos(price("gemini", "gemini-2.5-pro"), usage) == 204_000 * 1_250 + 10_000


def test_anthropic_long_context_tier_and_its_1h_write_rate() -> None:
    sonnet = price("anthropic", "claude-sonnet-4-5")
    assert sonnet.long_context == pricing.Rates(
        input=6_000, output=22_500, cache_read=600, cache_write_5m=7_500, cache_write_1h=12_000
    )
    usage = Usage(input_tokens=250_000, output_tokens=10, cached_input_tokens=50_000)
    assert pricing.cost_nanos(sonnet, usage) == 200_000 * 6_000 + 50_000 * 600 + 10 * 22_500
    assert price("openai", "gpt-4o").long_context is None


def test_no_prefix_match_between_gpt_4o_and_gpt_4o_mini() -> None:
    assert price("openai", "gpt-4o").model == "gpt-4o"
    assert price("openai", "gpt-4o").input == 2_500
    assert price("openai", "gpt-4o-mini").model == "gpt-4o-mini"
    assert price("openai", "gpt-4o-mini").input == 150
    for name in ("gpt-4", "gpt-4o-min", "gpt-4o-mini-2", "gpt-4o-", "GPT-4O"):
        assert pricing.lookup("openai", name) is None, name


def test_aliases_resolve_to_the_canonical_model() -> None:
    assert price("openai", "gpt-4o-mini-2024-07-18").model == "gpt-4o-mini"
    assert price("anthropic", "claude-sonnet-4-5").model == "claude-sonnet-4-5-20250929"
    assert price("anthropic", "claude-sonnet-4-0").model == "claude-sonnet-4-20250514"
    assert price("gemini", "gemini-2.0-flash-001").model == "gemini-2.0-flash"


def test_dated_suffix_is_not_stripped_and_old_snapshots_are_unknown() -> None:
    assert pricing.lookup("openai", "gpt-4o-2024-05-13") is None  # 5/15, not gpt-4o's 2.5/10
    assert pricing.lookup("anthropic", "claude-sonnet-4-5-20991231") is None
    assert pricing.lookup("openai", "gpt-4o-mini-20240718") is None


def test_unknown_model_or_wrong_provider_is_none() -> None:
    assert pricing.lookup("openai", "no-such-model") is None
    assert pricing.lookup("anthropic", "gpt-4o") is None
    assert pricing.lookup("gemini", "claude-sonnet-4-5") is None
    assert pricing.lookup("mistral", "gpt-4o") is None


def test_every_listed_price_is_exact_integer_nanos() -> None:
    raw = json.loads(pricing.PRICES_FILE.read_text())
    rounded = {(model, key) for model, key, _ in pricing.rounded_up_prices()}
    fields = {
        "input": "input_per_mtok_usd",
        "output": "output_per_mtok_usd",
        "cache_read": "cache_read_per_mtok_usd",
        "cache_write_5m": "cache_write_5m_per_mtok_usd",
        "cache_write_1h": "cache_write_1h_per_mtok_usd",
    }
    for model, entry in raw.items():
        found = price(entry["provider"], model)
        assert found.max_input_tokens == entry["max_input_tokens"]
        assert found.max_output_tokens == entry["max_output_tokens"]
        for name, key in fields.items():
            value = getattr(found, name)
            assert isinstance(value, int)
            if key not in entry:
                assert value == found.input  # not billed separately
            elif (model, key) not in rounded:
                assert value == Decimal(str(entry[key])) * 1000, (model, key)


def test_the_only_fractional_price_is_rounded_up() -> None:
    """gemini-2.0-flash-lite's cache read (0.01875 USD/Mtok) is 18.75 nanos per token."""
    assert pricing.rounded_up_prices() == (("gemini-2.0-flash-lite", "cache_read_per_mtok_usd", "18.75"),)
    assert price("gemini", "gemini-2.0-flash-lite").cache_read == 19


def test_worst_case_prices_all_input_at_input_rate() -> None:
    assert pricing.worst_case_nanos(price("openai", "gpt-4o-mini"), 1_000, 500) == 1_000 * 150 + 500 * 600
    opus = price("anthropic", "claude-opus-4-1")
    assert pricing.worst_case_nanos(opus, 10, 10) == 10 * 15_000 + 10 * 75_000
    pro = price("gemini", "gemini-2.5-pro")
    assert pricing.worst_case_nanos(pro, 200_000, 10) == 200_000 * 1_250 + 10 * 10_000
    assert pricing.worst_case_nanos(pro, 250_000, 10) == 250_000 * 2_500 + 10 * 15_000


def test_a_prompt_that_may_write_the_cache_is_bounded_at_the_dearest_write_rate() -> None:
    opus = price("anthropic", "claude-opus-4-1")
    assert pricing.worst_case_nanos(opus, 10, 10, cache_writes=True) == 10 * 30_000 + 10 * 75_000
    mini = price("openai", "gpt-4o-mini")  # no cache writes billed: the input rate stands
    assert pricing.worst_case_nanos(mini, 1_000, 500, cache_writes=True) == 1_000 * 150 + 500 * 600


SPLITS = [
    (reads, writes_5m, writes_1h)
    for reads in (0, 1, 500, 1_000)
    for writes_5m in (0, 1, 500, 1_000)
    for writes_1h in (0, 1, 500, 1_000)
    if reads + writes_5m + writes_1h <= 1_000
]


@pytest.mark.parametrize(("reads", "writes_5m", "writes_1h"), SPLITS)
def test_no_split_of_a_prompt_costs_more_than_its_cache_writing_bound(reads, writes_5m, writes_1h) -> None:
    """Whatever part of a 1,000-token prompt the provider bills as cache reads or writes of
    either lifetime, the call costs at most the bound ADMIT reserves for it; and without
    writes, at most the plain bound."""
    for each in pricing.list_prices():
        usage = Usage(
            input_tokens=1_000,
            output_tokens=7,
            cached_input_tokens=reads,
            cache_write_tokens=writes_5m,
            cache_write_1h_tokens=writes_1h,
        )
        cost = pricing.cost_nanos(each, usage)
        assert cost <= pricing.worst_case_nanos(each, 1_000, 7, cache_writes=True), each.model
        if writes_5m == writes_1h == 0:
            assert cost <= pricing.worst_case_nanos(each, 1_000, 7), each.model


@pytest.mark.parametrize(
    ("nanos", "expected"),
    [
        (0, 0),
        (1, 0),
        (4_999_999, 0),
        (5_000_000, 1),
        (9_999_999, 1),
        (10_000_000, 1),
        (14_999_999, 1),
        (15_000_000, 2),
        (2_404_800, 0),
        (1_234_567_890, 123),
        (-5_000_000, -1),
        (-4_999_999, 0),
    ],
)
def test_cents_round_half_up(nanos: int, expected: int) -> None:
    assert money.cents(nanos) == expected


def test_model_price_is_frozen() -> None:
    with pytest.raises(AttributeError):
        price("openai", "gpt-4o").input = 1  # type: ignore[misc]


def test_the_seed_lists_every_model_of_the_price_file_once() -> None:
    models = pricing.list_prices()
    raw = json.loads(pricing.PRICES_FILE.read_text())
    assert sorted(m.model for m in models) == sorted(raw)
    gpt4o = next(m for m in models if m.model == "gpt-4o")
    assert (gpt4o.provider, gpt4o.aliases) == ("openai", ("gpt-4o-2024-08-06", "gpt-4o-2024-11-20"))
    assert (gpt4o.base.input, gpt4o.base.output, gpt4o.base.cache_read) == (2_500, 10_000, 1_250)
    pro = next(m for m in models if m.model == "gemini-2.5-pro")
    assert pro.long_context is not None and pro.long_context.input == 2_500
