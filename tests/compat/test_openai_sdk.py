"""The official ``openai`` SDK pointed at the gateway: only its base URL and key change.

Every call goes through the real server and the loopback provider fakes; the fakes assert the
upstream wire format each provider receives, and the usage rows prove the call was metered.
"""

from __future__ import annotations

import json

import openai
import pytest

from shared.billing import pricing
from shared.providers import Usage
from tests.support.calls import PROVIDER_MODELS
from tests.support.database import usage_rows, wait_for
from tests.support.fakes.upstreams import embedding_values

MODELS = {p: f"{p}/{m}" for p, m in PROVIDER_MODELS.items()}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def sdk(server, make_key, upstreams):
    key = make_key(customer={"monthly_cap_cents": 5000})
    client = openai.OpenAI(
        base_url=f"{server}/.netlify/functions/openai/v1", api_key=key.secret, max_retries=0
    )
    client.key = key  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("provider", list(MODELS))
def test_plain_chat_reaches_each_provider_and_is_billed(sdk, db, upstreams, provider):
    upstreams.script(provider, text="Hi from upstream.", input_tokens=40, output_tokens=7)
    reply = sdk.chat.completions.create(
        model=MODELS[provider],
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}],
        max_tokens=50,
    )
    assert reply.choices[0].message.content == "Hi from upstream."
    assert reply.choices[0].finish_reason == "stop"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (40, 7)
    price = pricing.lookup(provider, PROVIDER_MODELS[provider])
    cost = pricing.cost_nanos(price, Usage(input_tokens=40, output_tokens=7))
    assert usage_rows(db, sdk.key) == [
        {
            "provider": provider,
            "model": PROVIDER_MODELS[provider],
            "input_tokens": 40,
            "output_tokens": 7,
            "cost_nanos": cost,
            "outcome": "ok",
        }
    ]


def test_to_openai_the_body_goes_through_as_sent(sdk, upstreams):
    sdk.chat.completions.create(
        model="gpt-4o-mini",  # a bare name the price book resolves
        messages=[{"role": "user", "content": "Hello"}],
        logprobs=True,
        presence_penalty=0.5,
        max_completion_tokens=20,
        service_tier="default",  # standard processing, as the price book prices it
        modalities=["text"],
    )
    sent = upstreams.last_request("openai").body
    assert sent["model"] == "gpt-4o-mini"
    assert (sent["logprobs"], sent["presence_penalty"], sent["max_completion_tokens"]) == (True, 0.5, 20)
    assert (sent["service_tier"], sent["modalities"]) == ("default", ["text"])
    assert "stream" not in sent


@pytest.mark.parametrize("provider", list(MODELS))
def test_streaming_in_chunks_with_a_usage_chunk_when_asked(sdk, db, upstreams, provider):
    upstreams.script(provider, text="One two three.", input_tokens=11, output_tokens=3)
    chunks = list(
        sdk.chat.completions.create(
            model=MODELS[provider],
            messages=[{"role": "user", "content": "Count"}],
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "One two three."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    rows = wait_for(lambda: usage_rows(db, sdk.key), timeout=15)  # settled as the last chunk goes out
    assert [(r["outcome"], r["output_tokens"]) for r in rows] == [("ok", 3)]


def test_without_include_usage_no_usage_chunk_but_the_call_is_still_metered(sdk, db, upstreams):
    chunks = list(
        sdk.chat.completions.create(
            model=MODELS["openai"], messages=[{"role": "user", "content": "Hi"}], max_tokens=20, stream=True
        )
    )
    assert all(c.choices for c in chunks)
    assert upstreams.last_request("openai").body["stream_options"] == {"include_usage": True}
    assert [r["outcome"] for r in wait_for(lambda: usage_rows(db, sdk.key), timeout=15)] == ["ok"]


@pytest.mark.parametrize("provider", list(MODELS))
def test_a_tool_round_trip(sdk, upstreams, provider):
    upstreams.script(provider, once=True, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    first = sdk.chat.completions.create(
        model=MODELS[provider], messages=messages, tools=[WEATHER], max_tokens=50
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Oslo"})
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 3}'},
    ]
    upstreams.script(provider, once=True, text="It is 3 °C in Oslo.")
    final = sdk.chat.completions.create(
        model=MODELS[provider], messages=messages, tools=[WEATHER], max_tokens=50
    )
    assert final.choices[0].message.content == "It is 3 °C in Oslo."
    sent = upstreams.last_request(provider).body
    if provider == "anthropic":
        assert sent["tools"] == [
            {
                "name": "get_weather",
                "input_schema": WEATHER["function"]["parameters"],
                "description": "The weather in a city.",
            }
        ]
        assert sent["messages"][1]["content"] == [
            {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Oslo"}}
        ]
        assert sent["messages"][2]["content"] == [
            {"type": "tool_result", "tool_use_id": call.id, "content": '{"temp_c": 3}'}
        ]
    if provider == "gemini":
        declaration = sent["tools"][0]["functionDeclarations"][0]
        assert declaration["name"] == "get_weather"
        assert sent["contents"][1]["parts"] == [
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}
        ]
        assert sent["contents"][2]["parts"] == [
            {"functionResponse": {"name": "get_weather", "response": {"temp_c": 3}}}
        ]


@pytest.mark.parametrize("provider", list(MODELS))
def test_streamed_tool_calls_arrive_as_tool_call_deltas(sdk, upstreams, provider):
    upstreams.script(provider, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    chunks = list(
        sdk.chat.completions.create(
            model=MODELS[provider],
            messages=[{"role": "user", "content": "Weather?"}],
            tools=[WEATHER],
            max_tokens=50,
            stream=True,
        )
    )
    deltas = [d for c in chunks if c.choices for d in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].function.name == "get_weather" and deltas[0].id
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "tool_calls"
    ]


@pytest.mark.parametrize("provider", list(MODELS))
def test_an_image_input(sdk, upstreams, provider):
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    sdk.chat.completions.create(
        model=MODELS[provider], messages=[{"role": "user", "content": content}], max_tokens=20
    )
    sent = upstreams.last_request(provider).body
    if provider == "anthropic":
        image = sent["messages"][0]["content"][1]
        assert image == {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": PIXEL},
        }
    elif provider == "gemini":
        assert sent["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PIXEL}}
    else:
        assert sent["messages"][0]["content"] == content


SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("provider", list(MODELS))
def test_json_schema_output(sdk, upstreams, provider):
    if provider == "anthropic":  # Anthropic answers by the forced tool: its input is the JSON
        upstreams.script(provider, tool_calls=[{"name": "answer", "arguments": {"answer": "42"}}])
    else:
        upstreams.script(provider, text='{"answer": "42"}')
    reply = sdk.chat.completions.create(
        model=MODELS[provider],
        messages=[{"role": "user", "content": "The answer?"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
        },
        max_tokens=50,
    )
    assert json.loads(reply.choices[0].message.content) == {"answer": "42"}
    assert reply.choices[0].finish_reason == "stop" and not reply.choices[0].message.tool_calls
    sent = upstreams.last_request(provider).body
    if provider == "anthropic":
        assert sent["tool_choice"] == {"type": "tool", "name": "answer"}
        assert sent["tools"][-1] == {"name": "answer", "input_schema": SCHEMA}
    elif provider == "gemini":
        config = sent["generationConfig"]
        assert (config["responseMimeType"], config["responseJsonSchema"]) == ("application/json", SCHEMA)


def test_models_lists_what_the_key_may_call(server, make_key, upstreams):
    key = make_key(allowed_providers=["anthropic"])
    client = openai.OpenAI(
        base_url=f"{server}/.netlify/functions/openai/v1", api_key=key.secret, max_retries=0
    )
    ids = [m.id for m in client.models.list()]
    assert f"anthropic/{pricing.lookup('anthropic', 'claude-sonnet-4-5').model}" in ids
    assert all(i.startswith("anthropic/") for i in ids)


def test_the_api_origin_serves_v1_too(server, sdk):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=sdk.api_key, max_retries=0)
    reply = client.chat.completions.create(
        model=MODELS["openai"], messages=[{"role": "user", "content": "Hi"}], max_tokens=5
    )
    assert reply.choices[0].message.content


def test_errors_raise_the_sdks_typed_exceptions(server, sdk, db, make_key, upstreams):
    def chat(client, **changes):
        args = {"model": MODELS["openai"], "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
        return client.chat.completions.create(**(args | changes))

    base = f"{server}/.netlify/functions/openai/v1"
    stranger = openai.OpenAI(base_url=base, api_key="kx_live_" + "x" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        chat(stranger)
    with pytest.raises(openai.NotFoundError) as missing:
        chat(sdk, model="openai/gpt-9-imaginary")
    assert missing.value.body["code"] == "MODEL_NOT_FOUND"
    with pytest.raises(openai.BadRequestError) as bad:
        chat(sdk, temperature=5)
    assert bad.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as unsupported:
        chat(sdk, model=MODELS["anthropic"], seed=7)
    assert unsupported.value.body["param"] == "seed"
    limited = make_key(allowed_providers=["gemini"])
    with pytest.raises(openai.PermissionDeniedError):
        chat(openai.OpenAI(base_url=base, api_key=limited.secret, max_retries=0))
    slow = make_key(rpm_limit=1)
    client = openai.OpenAI(base_url=base, api_key=slow.secret, max_retries=0)
    chat(client)
    with pytest.raises(openai.RateLimitError) as limited_rate:
        chat(client)
    assert limited_rate.value.response.headers["retry-after"]
    capped = make_key(customer={"monthly_cap_cents": 0})
    with pytest.raises(openai.APIStatusError) as cap:
        chat(openai.OpenAI(base_url=base, api_key=capped.secret, max_retries=0))
    assert cap.value.status_code == 402 and cap.value.body["code"] == "CAP_REACHED"
    assert usage_rows(db, sdk.key) == []  # nothing refused was billed


@pytest.mark.parametrize(
    ("provider", "model"), [("openai", "openai/text-embedding-3-small"), ("gemini", "gemini-embedding-001")]
)
def test_embeddings_are_priced_per_input_token_and_billed(sdk, db, upstreams, provider, model):
    upstreams.script(provider, input_tokens=6)
    result = sdk.embeddings.create(
        model=model, input=["hello world", "second"], dimensions=4
    )  # base64 on the wire
    assert [len(item.embedding) for item in result.data] == [4, 4]
    assert result.data[0].embedding == pytest.approx(embedding_values("hello world", 4))
    sent = upstreams.last_request(provider).body
    price = pricing.lookup(provider, model.split("/")[-1])
    if provider == "openai":  # the provider's count: 6 tokens an input
        assert (sent["input"], sent["dimensions"], sent["encoding_format"]) == (
            ["hello world", "second"],
            4,
            "float",
        )
        tokens, estimated = 12, False
    else:  # Gemini says no count: about four bytes a token, recorded as an estimate
        assert [r["outputDimensionality"] for r in sent["requests"]] == [4, 4]
        tokens, estimated = 3 + 2, True
    assert result.usage.prompt_tokens == tokens
    row = db.execute("SELECT input_tokens, output_tokens, cost_nanos, estimated FROM usage_events").fetchone()
    assert row == {
        "input_tokens": tokens,
        "output_tokens": 0,
        "cost_nanos": tokens * price.input,
        "estimated": estimated,
    }


def test_chat_and_embedding_models_are_not_mixed_up(sdk):
    with pytest.raises(openai.BadRequestError) as chat_on_embedder:
        sdk.chat.completions.create(
            model="openai/text-embedding-3-small", messages=[{"role": "user", "content": "x"}], max_tokens=5
        )
    assert chat_on_embedder.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as embed_on_chat:
        sdk.embeddings.create(model=MODELS["openai"], input="x")
    assert embed_on_chat.value.body["param"] == "model"


@pytest.mark.parametrize("provider", list(MODELS))
@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls_come_back_each_with_its_id(sdk, upstreams, provider, stream):
    cities = [{"name": "get_weather", "arguments": {"city": c}} for c in ("Oslo", "Lima")]
    upstreams.script(provider, tool_calls=cities)
    args = {"model": MODELS[provider], "messages": [{"role": "user", "content": "Both?"}], "tools": [WEATHER]}
    if stream:
        pieces: dict[int, dict[str, str]] = {}
        for chunk in sdk.chat.completions.create(**args, max_tokens=50, stream=True):
            for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                call = pieces.setdefault(delta.index, {"id": "", "arguments": ""})
                call["id"] = delta.id or call["id"]
                call["arguments"] += delta.function.arguments or ""
        calls = [(c["id"], json.loads(c["arguments"])) for _, c in sorted(pieces.items())]
    else:
        message = sdk.chat.completions.create(**args, max_tokens=50).choices[0].message
        calls = [(c.id, json.loads(c.function.arguments)) for c in message.tool_calls]
    assert [arguments for _, arguments in calls] == [{"city": "Oslo"}, {"city": "Lima"}]
    assert all(call_id for call_id, _ in calls) and calls[0][0] != calls[1][0]
