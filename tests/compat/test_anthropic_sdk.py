"""The official ``anthropic`` SDK pointed at the gateway: only its base URL and key change."""

from __future__ import annotations

import anthropic
import pytest

from shared.billing import pricing
from shared.providers import Usage
from tests.support.calls import PROVIDER_MODELS
from tests.support.database import usage_rows, wait_for

MODELS = {p: f"{p}/{m}" for p, m in PROVIDER_MODELS.items()}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def key(make_key, upstreams):
    return make_key(customer={"monthly_cap_cents": 5000})


@pytest.fixture
def sdk(server, key):
    return anthropic.Anthropic(
        base_url=f"{server}/.netlify/functions/anthropic", api_key=key.secret, max_retries=0
    )


@pytest.mark.parametrize("provider", list(MODELS))
def test_a_message_reaches_each_provider_and_is_billed(sdk, key, db, upstreams, provider):
    upstreams.script(provider, text="Hi from upstream.", input_tokens=40, output_tokens=7)
    reply = sdk.messages.create(model=MODELS[provider], system="Be brief.", messages=HELLO, max_tokens=50)
    assert [block.text for block in reply.content] == ["Hi from upstream."]
    assert reply.stop_reason == "end_turn"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (40, 7)
    price = pricing.lookup(provider, PROVIDER_MODELS[provider])
    cost = pricing.cost_nanos(price, Usage(input_tokens=40, output_tokens=7))
    assert [
        (r["provider"], r["input_tokens"], r["output_tokens"], r["cost_nanos"]) for r in usage_rows(db, key)
    ] == [(provider, 40, 7, cost)]


def test_to_anthropic_the_body_goes_through_as_sent(sdk, upstreams):
    sdk.messages.create(
        model="claude-sonnet-4-5",
        system=[{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}],
        messages=HELLO,
        max_tokens=20,
        extra_body={"top_k": 5},  # this SDK release has no top_k argument
    )
    sent = upstreams.last_request("anthropic").body
    assert sent["system"] == [{"type": "text", "text": "Long rules", "cache_control": {"type": "ephemeral"}}]
    assert (sent["model"], sent["top_k"], sent["max_tokens"]) == ("claude-sonnet-4-5", 5, 20)


def test_to_openai_the_system_prompt_is_a_system_message(sdk, upstreams):
    sdk.messages.create(
        model=MODELS["openai"], system="Be brief.", messages=HELLO, max_tokens=20, stop_sequences=["END"]
    )
    sent = upstreams.last_request("openai").body
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    assert (sent["max_completion_tokens"], sent["stop"]) == (20, ["END"])


@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (6000, "medium"), (10000, "high")])
def test_a_thinking_budget_reaches_openai_as_an_effort(sdk, upstreams, budget, effort):
    sdk.messages.create(
        model=MODELS["openai"],
        messages=HELLO,
        max_tokens=100,
        thinking={"type": "enabled", "budget_tokens": budget},
        timeout=60,  # else this SDK refuses a large budget unstreamed
    )
    assert upstreams.last_request("openai").body["reasoning_effort"] == effort


@pytest.mark.parametrize("provider", list(MODELS))
def test_streaming_in_anthropics_events(sdk, key, db, upstreams, provider):
    upstreams.script(provider, text="One two three.", input_tokens=11, output_tokens=3)
    with sdk.messages.stream(model=MODELS[provider], messages=HELLO, max_tokens=20) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "One two three."
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3
    rows = wait_for(lambda: usage_rows(db, key), timeout=15)
    assert [(r["outcome"], r["output_tokens"]) for r in rows] == [("ok", 3)]


@pytest.mark.parametrize("provider", list(MODELS))
def test_a_tool_round_trip(sdk, upstreams, provider):
    upstreams.script(provider, once=True, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    first = sdk.messages.create(model=MODELS[provider], messages=messages, tools=[WEATHER], max_tokens=50)
    call = next(block for block in first.content if block.type == "tool_use")
    assert first.stop_reason == "tool_use"
    assert (call.name, call.input) == ("get_weather", {"city": "Oslo"})
    messages += [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "3 °C"}]},
    ]
    upstreams.script(provider, once=True, text="It is 3 °C in Oslo.")
    final = sdk.messages.create(model=MODELS[provider], messages=messages, tools=[WEATHER], max_tokens=50)
    assert final.content[0].text == "It is 3 °C in Oslo."
    sent = upstreams.last_request(provider).body
    if provider == "openai":
        assert sent["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER["input_schema"],
                    "description": "The weather in a city.",
                },
            }
        ]
        assert sent["messages"][1]["tool_calls"][0]["function"] == {
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        }
        assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.id, "content": "3 °C"}
    if provider == "gemini":
        assert sent["contents"][2]["parts"] == [
            {"functionResponse": {"name": "get_weather", "response": {"result": "3 °C"}}}
        ]


@pytest.mark.parametrize("provider", list(MODELS))
def test_streamed_tool_use_arrives_as_input_json_deltas(sdk, upstreams, provider):
    upstreams.script(provider, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    with sdk.messages.stream(
        model=MODELS[provider], messages=HELLO, tools=[WEATHER], max_tokens=50
    ) as stream:
        final = stream.get_final_message()
    call = next(block for block in final.content if block.type == "tool_use")
    assert (call.name, call.input, final.stop_reason) == ("get_weather", {"city": "Oslo"}, "tool_use")


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_an_image_input(sdk, upstreams, provider):
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
    ]
    sdk.messages.create(
        model=MODELS[provider], messages=[{"role": "user", "content": content}], max_tokens=20
    )
    sent = upstreams.last_request(provider).body
    if provider == "openai":
        assert sent["messages"][0]["content"][1] == {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PIXEL}"},
        }
    else:
        assert sent["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PIXEL}}


def test_the_key_may_come_as_a_bearer_token_and_on_the_api_origin(server, key, upstreams):
    client = anthropic.Anthropic(base_url=server, auth_token=key.secret, max_retries=0)
    reply = client.messages.create(model=MODELS["anthropic"], messages=HELLO, max_tokens=5)
    assert reply.content[0].text


def test_errors_raise_the_sdks_typed_exceptions(server, sdk, key, db, make_key, upstreams):
    def create(client, **changes):
        args = {"model": MODELS["anthropic"], "messages": HELLO, "max_tokens": 5}
        return client.messages.create(**(args | changes))

    base = f"{server}/.netlify/functions/anthropic"
    with pytest.raises(anthropic.AuthenticationError):
        create(anthropic.Anthropic(base_url=base, api_key="kx_live_" + "x" * 43, max_retries=0))
    with pytest.raises(anthropic.NotFoundError) as missing:
        create(sdk, model="anthropic/claude-imaginary")
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        create(sdk, extra_body={"temperature": 1.5})
    assert "temperature" in bad.value.message
    limited = make_key(allowed_providers=["gemini"])
    with pytest.raises(anthropic.PermissionDeniedError):
        create(anthropic.Anthropic(base_url=base, api_key=limited.secret, max_retries=0))
    slow = anthropic.Anthropic(base_url=base, api_key=make_key(rpm_limit=1).secret, max_retries=0)
    create(slow)
    with pytest.raises(anthropic.RateLimitError) as limited_rate:
        create(slow)
    assert limited_rate.value.response.headers["retry-after"]
    capped = make_key(customer={"monthly_cap_cents": 0})
    with pytest.raises(anthropic.APIStatusError) as cap:
        create(anthropic.Anthropic(base_url=base, api_key=capped.secret, max_retries=0))
    assert cap.value.status_code == 402 and cap.value.body["error"]["code"] == "CAP_REACHED"
    assert usage_rows(db, key) == []
