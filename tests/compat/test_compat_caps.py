"""The compatible APIs hold calls to their budget as gateway-chat does: a clamped call says so
in ``x-kaixu-max-tokens`` and a top-level ``max_tokens_clamped_to`` (the SDKs ignore a field
they do not know), and a stream stopped at the cap ends with the format's own error event,
which the official SDKs raise, then its end with the usage billed."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from shared.billing import pricing
from tests.support.sse import parse_sse

OPUS = "claude-opus-4-1-20250805"
CENT = 10_000_000
HELLO = [{"role": "user", "content": "Hi"}]


@pytest.fixture
def key(make_key, upstreams):
    return make_key(customer={"monthly_cap_cents": 1})


def _affordable(provider: str, model: str, prompt_bound_tokens: int) -> int:
    price = pricing.lookup(provider, model)
    assert price is not None
    return (CENT - prompt_bound_tokens * price.input - price.request) // price.output


def test_openai_format_clamps_with_its_header_and_field(server, key, db, upstreams):
    sdk = openai.OpenAI(base_url=f"{server}/.netlify/functions/openai/v1", api_key=key.secret, max_retries=0)
    upstreams.script("anthropic", text="Hi!", input_tokens=12, output_tokens=10)
    raw = sdk.chat.completions.with_raw_response.create(
        model=f"anthropic/{OPUS}", messages=HELLO, max_tokens=8192
    )
    expected = _affordable("anthropic", OPUS, 2 + 32 + 8)  # "Hi", framing, one message
    assert raw.headers["x-kaixu-max-tokens"] == str(expected)
    reply = raw.parse()
    assert reply.choices[0].message.content == "Hi!"
    assert reply.model_extra["max_tokens_clamped_to"] == expected
    assert upstreams.last_request("anthropic").body["max_tokens"] == expected  # translated, clamped

    # To OpenAI the body goes through as sent, with the field the client used clamped.
    upstreams.script("openai", text="Hi!", input_tokens=12, output_tokens=10)
    raw = sdk.chat.completions.with_raw_response.create(
        model="openai/gpt-4o", messages=HELLO, max_completion_tokens=16_000
    )
    sent = upstreams.last_request("openai").body
    assert sent["max_completion_tokens"] == int(raw.headers["x-kaixu-max-tokens"]) < 16_000
    assert "max_tokens" not in sent
    assert raw.parse().model_extra["max_tokens_clamped_to"] == sent["max_completion_tokens"]
    assert_books(db, calls=2)


def test_openai_format_without_max_tokens_is_clamped_in_max_completion_tokens(server, key, upstreams):
    sdk = openai.OpenAI(base_url=f"{server}/.netlify/functions/openai/v1", api_key=key.secret, max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(model="openai/gpt-4o", messages=HELLO)
    sent = upstreams.last_request("openai").body
    assert sent["max_completion_tokens"] == int(raw.headers["x-kaixu-max-tokens"])


def test_anthropic_format_clamps_with_its_header_and_field(server, key, db, upstreams):
    sdk = anthropic.Anthropic(
        base_url=f"{server}/.netlify/functions/anthropic", api_key=key.secret, max_retries=0
    )
    upstreams.script("anthropic", text="Hi!", input_tokens=12, output_tokens=10)
    raw = sdk.messages.with_raw_response.create(model=OPUS, messages=HELLO, max_tokens=8192)
    # Passed through as it came, every byte of the body counts, then framing and one message.
    expected = _affordable("anthropic", OPUS, len(raw.http_request.content) + 32 + 8)
    assert raw.headers["x-kaixu-max-tokens"] == str(expected)
    reply = raw.parse()
    assert [block.text for block in reply.content] == ["Hi!"]
    assert reply.model_extra["max_tokens_clamped_to"] == expected
    assert upstreams.last_request("anthropic").body["max_tokens"] == expected
    assert db.execute("SELECT clamped_to FROM usage_events").fetchone() == {"clamped_to": expected}


def test_a_prompt_that_may_write_the_cache_is_clamped_at_the_dearest_write_rate(client, key, db, upstreams):
    """Anthropic bills a prompt marked ``cache_control`` as cache writes, up to twice the input
    rate (an hour's): the call is clamped to what the month affords with every prompt token
    written at that rate, so a prompt written whole still leaves the month within its cap."""
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    sent = json.dumps({"model": OPUS, "system": system, "messages": HELLO, "max_tokens": 8192}).encode()
    price = pricing.lookup("anthropic", OPUS)
    assert price is not None and price.cache_write_1h == 2 * price.input
    bound = len(sent) + 32 + 2 * 8  # every byte sent, framing, two messages (the system's, Hi)
    expected = (CENT - bound * price.cache_write_1h - price.request) // price.output
    # The provider bills all the prompt as (five-minute) writes and all the output it may.
    upstreams.script(
        "anthropic", text="Hi!", input_tokens=bound, cache_write_tokens=bound, output_tokens=expected
    )
    headers = {"x-api-key": key.secret, "content-type": "application/json"}
    response = client.post("anthropic/v1/messages", content=sent, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-kaixu-max-tokens"] == str(expected)
    assert upstreams.last_request("anthropic").body["system"] == system  # passed through as sent
    event = db.execute("SELECT input_tokens, output_tokens, sell_nanos FROM usage_events").fetchone()
    assert (event["input_tokens"], event["output_tokens"]) == (bound, expected)
    assert event["sell_nanos"] == bound * price.cache_write_5m + expected * price.output
    assert_books(db, calls=1)  # within the cap


def _long_stream(upstreams, provider: str) -> None:
    upstreams.script(provider, deltas=["w" * 32] * 200, output_tokens=6_400, chunk_delay_s=0.001)


def assert_books(db, calls: int) -> None:
    """Nothing held; the month's spend is its events' sum, and within the cap."""
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0
    events = db.execute(
        "SELECT customer_id, sum(sell_nanos) AS s, count(*) AS n FROM usage_events GROUP BY 1"
    )
    for row in events.fetchall():
        rollup = db.execute(
            "SELECT m.spent_nanos, m.reserved_nanos, m.calls, c.monthly_cap_cents FROM monthly_usage m "
            "JOIN customers c ON c.id = m.customer_id WHERE m.customer_id = %s",
            (row["customer_id"],),
        ).fetchone()
        assert (rollup["spent_nanos"], rollup["reserved_nanos"], rollup["calls"]) == (row["s"], 0, row["n"])
        assert rollup["spent_nanos"] <= rollup["monthly_cap_cents"] * CENT
        calls -= row["n"]
    assert calls == 0


def test_openai_format_stream_stopped_at_the_cap(server, make_key, key, client, db, upstreams):
    """gpt-4o against a cent: three steps of 256 tokens fit, the fourth does not."""
    _long_stream(upstreams, "openai")
    payload = {
        "model": "openai/gpt-4o",
        "messages": HELLO,
        "max_tokens": 8192,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    response = client.post("openai/v1/chat/completions", json=payload, headers=key.auth)
    assert response.status_code == 200
    events = [block for block in response.text.split("\n\n") if block]
    assert events[-1] == "data: [DONE]"
    usage_chunk, error = parse_data(events[-2]), parse_data(events[-3])
    assert error["error"]["code"] == "CAP_REACHED"
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] > 0
    assert upstreams.wait_for(lambda: upstreams.streams_cancelled == 1)

    fresh = make_key(customer={"monthly_cap_cents": 1})
    sdk = openai.OpenAI(
        base_url=f"{server}/.netlify/functions/openai/v1", api_key=fresh.secret, max_retries=0
    )
    _long_stream(upstreams, "openai")
    with pytest.raises(openai.APIError, match="cap"):
        for _ in sdk.chat.completions.create(
            model="openai/gpt-4o", messages=HELLO, max_tokens=8192, stream=True
        ):
            pass
    outcomes = db.execute("SELECT outcome, stopped_code FROM usage_events").fetchall()
    assert outcomes == [{"outcome": "stopped", "stopped_code": "CAP_REACHED"}] * 2
    assert_books(db, calls=2)


def parse_data(block: str) -> dict:
    assert block.startswith("data: "), block
    return json.loads(block[len("data: ") :])


def test_anthropic_format_stream_stopped_at_the_cap(server, make_key, client, db, upstreams):
    """Opus against three cents: one step of 256 tokens fits, the next does not (the body
    passed through counts whole in the prompt's bound, about 2 cents less here)."""
    key = make_key(customer={"monthly_cap_cents": 3})
    _long_stream(upstreams, "anthropic")
    payload = {"model": OPUS, "messages": HELLO, "max_tokens": 8192, "stream": True}
    response = client.post("anthropic/v1/messages", json=payload, headers=key.auth)
    assert response.status_code == 200
    frames = parse_sse(response.text)
    kinds = [name for name, _ in frames]
    assert kinds[-3:] == ["error", "message_delta", "message_stop"]
    assert frames[-3][1]["error"]["code"] == "CAP_REACHED"
    assert frames[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert frames[-2][1]["usage"]["output_tokens"] > 0

    fresh = make_key(customer={"monthly_cap_cents": 3})
    sdk = anthropic.Anthropic(
        base_url=f"{server}/.netlify/functions/anthropic", api_key=fresh.secret, max_retries=0
    )
    _long_stream(upstreams, "anthropic")
    stream = sdk.messages.create(model=OPUS, messages=HELLO, max_tokens=8192, stream=True)
    with pytest.raises(anthropic.APIStatusError, match="cap"):
        for _ in stream:
            pass
    rows = db.execute("SELECT outcome, stopped_code, sell_nanos FROM usage_events").fetchall()
    assert [(r["outcome"], r["stopped_code"]) for r in rows] == [("stopped", "CAP_REACHED")] * 2
    assert_books(db, calls=2)
