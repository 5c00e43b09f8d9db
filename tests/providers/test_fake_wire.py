"""The fake upstreams themselves: scripted tool calls, stop reasons and embeddings come back in
each provider's wire shape (plain httpx, no gateway code), so tests built on the fake can trust it."""

from __future__ import annotations

import base64
import json
import re
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.fakes.upstreams import FakeUpstreams, embedding_values

CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris", "units": ["c", "f"]}},
    {"name": "get_time", "arguments": {"tz": "Europe/Paris"}, "id": "call_scripted"},
]
PROVIDERS = ["openai", "anthropic", "gemini"]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeUpstreams]:
    with FakeUpstreams() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeUpstreams) -> FakeUpstreams:
    server.reset()
    return server


def chat(fake: FakeUpstreams, provider: str, stream: bool = False) -> httpx.Response:
    """One chat request, authenticated as the real SDKs do."""
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    if provider == "openai":
        url, headers = (
            f"{fake.openai_base_url}/chat/completions",
            {"authorization": f"Bearer {fake.keys[provider]}"},
        )
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": messages, "stream": stream}
        body |= {"stream_options": {"include_usage": True}} if stream else {}
    elif provider == "anthropic":
        url = f"{fake.anthropic_base_url}/v1/messages"
        headers = {"x-api-key": fake.keys[provider], "anthropic-version": "2023-06-01"}
        body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": messages, "stream": stream}
    else:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        url = f"{fake.gemini_base_url}/v1beta/models/gemini-2.5-flash:{method}"
        headers = {"x-goog-api-key": fake.keys[provider]}
        body = {"contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}]}
    response = httpx.post(url, headers=headers, json=body, timeout=5)
    assert response.status_code == 200, response.text
    return response


def events(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON data of each SSE frame, in order ([DONE] as the string)."""
    frames = [f for f in re.split(r"\r?\n\r?\n", response.text) if f.strip()]
    datas = ["\n".join(line[6:] for line in f.splitlines() if line.startswith("data: ")) for f in frames]
    return [d if d == "[DONE]" else json.loads(d) for d in datas]


# --------------------------------------------------------------------------- tool calls


def test_openai_tool_calls(fake: FakeUpstreams) -> None:
    fake.script("openai", tool_calls=CALLS)
    choice = chat(fake, "openai").json()["choices"][0]
    message = choice["message"]
    assert choice["finish_reason"] == "tool_calls"
    assert message["content"] is None
    assert [c["type"] for c in message["tool_calls"]] == ["function", "function"]
    assert message["tool_calls"][0]["id"].startswith("call_")
    assert message["tool_calls"][1]["id"] == "call_scripted"
    assert message["tool_calls"][0]["function"]["arguments"] == '{"city":"Paris","units":["c","f"]}'
    got = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message["tool_calls"]]
    assert got == [(c["name"], c["arguments"]) for c in CALLS]


def test_openai_tool_calls_streamed(fake: FakeUpstreams) -> None:
    fake.script("openai", tool_calls=CALLS)
    *chunks, usage, done = events(chat(fake, "openai", stream=True))
    assert done == "[DONE]" and usage["choices"] == [] and usage["usage"]["prompt_tokens"] == 12
    first = chunks[0]["choices"][0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"][0]["function"]["name"] == "get_weather"  # as recorded: on the role delta
    calls: dict[int, dict[str, Any]] = {}
    for chunk in chunks[:-1]:
        for delta in chunk["choices"][0]["delta"].get("tool_calls", []):
            if "id" in delta:
                assert delta["type"] == "function" and delta["function"]["arguments"] == ""
                calls[delta["index"]] = {"id": delta["id"], "name": delta["function"]["name"], "pieces": []}
            else:
                calls[delta["index"]]["pieces"].append(delta["function"]["arguments"])
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "tool_calls",
    }
    assert [2 <= len(c["pieces"]) <= 3 for c in calls.values()] == [True, True]
    assert calls[1]["id"] == "call_scripted"
    got = [(c["name"], json.loads("".join(c["pieces"]))) for c in calls.values()]
    assert got == [(c["name"], c["arguments"]) for c in CALLS]


def test_anthropic_tool_use(fake: FakeUpstreams) -> None:
    fake.script("anthropic", tool_calls=CALLS)
    message = chat(fake, "anthropic").json()
    assert message["stop_reason"] == "tool_use"
    assert [b["type"] for b in message["content"]] == ["tool_use", "tool_use"]
    assert message["content"][0]["id"].startswith("toolu_")
    assert message["content"][1]["id"] == "call_scripted"
    assert [(b["name"], b["input"]) for b in message["content"]] == [
        (c["name"], c["arguments"]) for c in CALLS
    ]


def test_anthropic_tool_use_streamed(fake: FakeUpstreams) -> None:
    fake.script("anthropic", tool_calls=CALLS)
    got = events(chat(fake, "anthropic", stream=True))
    starts = [e["content_block"] for e in got if e["type"] == "content_block_start"]
    assert [(b["type"], b["name"], b["input"]) for b in starts] == [
        ("tool_use", c["name"], {}) for c in CALLS
    ]
    pieces: dict[int, list[str]] = {0: [], 1: []}
    for e in got:
        if e["type"] == "content_block_delta":
            assert e["delta"]["type"] == "input_json_delta"
            pieces[e["index"]].append(e["delta"]["partial_json"])
    assert [p[0] for p in pieces.values()] == ["", ""]  # as recorded: the first piece is empty
    assert [2 <= len(p) - 1 <= 3 for p in pieces.values()] == [True, True]
    assert [json.loads("".join(p)) for p in pieces.values()] == [c["arguments"] for c in CALLS]
    assert [e["type"] for e in got][-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert got[-2]["delta"]["stop_reason"] == "tool_use"


def test_gemini_function_calls(fake: FakeUpstreams) -> None:
    fake.script("gemini", tool_calls=CALLS)
    candidate = chat(fake, "gemini").json()["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    expected = [{"functionCall": {"name": c["name"], "args": c["arguments"]}} for c in CALLS]
    assert candidate["content"]["parts"] == expected


def test_gemini_function_calls_streamed(fake: FakeUpstreams) -> None:
    fake.script("gemini", tool_calls=CALLS)
    candidates = [e["candidates"][0] for e in events(chat(fake, "gemini", stream=True))]
    parts = [p for c in candidates for p in c["content"]["parts"]]
    assert parts == [{"functionCall": {"name": c["name"], "args": c["arguments"]}} for c in CALLS]
    assert [c.get("finishReason") for c in candidates][-1] == "STOP"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_explicit_text_comes_before_the_tool_calls(fake: FakeUpstreams, provider: str) -> None:
    fake.script(provider, text="Checking.", tool_calls=CALLS[:1])
    body = chat(fake, provider).json()
    if provider == "openai":
        message = body["choices"][0]["message"]
        assert (message["content"], len(message["tool_calls"])) == ("Checking.", 1)
    elif provider == "anthropic":
        assert [b["type"] for b in body["content"]] == ["text", "tool_use"]
    else:
        assert [next(iter(p)) for p in body["candidates"][0]["content"]["parts"]] == ["text", "functionCall"]


# --------------------------------------------------------------------------- stop reasons

STOPS = {
    "openai": lambda e: e["choices"][0]["finish_reason"] if e["choices"] else None,
    "anthropic": lambda e: e.get("stop_reason") or e.get("delta", {}).get("stop_reason"),
    "gemini": lambda e: e["candidates"][0].get("finishReason"),
}


@pytest.mark.parametrize(
    ("provider", "finish", "reason"),
    [
        ("openai", None, "stop"),
        ("openai", "length", "length"),
        ("anthropic", None, "end_turn"),
        ("anthropic", "length", "max_tokens"),
        ("gemini", None, "STOP"),
        ("gemini", "length", "MAX_TOKENS"),
    ],
)
def test_finish_maps_per_provider(
    fake: FakeUpstreams, provider: str, finish: str | None, reason: str
) -> None:
    fake.script(provider, finish=finish)
    stop = STOPS[provider]
    assert stop(chat(fake, provider).json()) == reason
    streamed = [stop(e) for e in events(chat(fake, provider, stream=True)) if e != "[DONE]"]
    assert [s for s in streamed if s] == [reason]


# --------------------------------------------------------------------------- embeddings


def openai_embed(fake: FakeUpstreams, key: str | None = None, **body: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key or fake.keys['openai']}"}
    return httpx.post(f"{fake.openai_base_url}/embeddings", headers=headers, json=body, timeout=5)


def gemini_embed(fake: FakeUpstreams, method: str, body: dict[str, Any]) -> httpx.Response:
    url = f"{fake.gemini_base_url}/v1beta/models/gemini-embedding-001:{method}"
    return httpx.post(url, headers={"x-goog-api-key": fake.keys["gemini"]}, json=body, timeout=5)


def test_openai_embeddings_float(fake: FakeUpstreams) -> None:
    fake.script("openai", input_tokens=3)
    response = openai_embed(fake, model="text-embedding-3-small", input=["a", "b"], encoding_format="float")
    assert response.status_code == 200
    body = response.json()
    assert (body["object"], body["model"]) == ("list", "text-embedding-3-small")
    assert body["usage"] == {"prompt_tokens": 6, "total_tokens": 6}
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    assert [d["embedding"] for d in body["data"]] == [embedding_values("a"), embedding_values("b")]
    assert (
        len(body["data"][0]["embedding"]) == 8
        and body["data"][0]["embedding"] != body["data"][1]["embedding"]
    )
    request = fake.last_request("openai")
    assert (request.path, request.body["input"]) == ("/v1/embeddings", ["a", "b"])


def test_openai_embeddings_base64(fake: FakeUpstreams) -> None:
    body = openai_embed(
        fake, model="text-embedding-3-small", input="hi", encoding_format="base64", dimensions=4
    ).json()
    raw = base64.b64decode(body["data"][0]["embedding"])
    assert list(struct.unpack("<4f", raw)) == embedding_values("hi", 4)
    assert body["usage"]["prompt_tokens"] == 12


def test_openai_embeddings_refuse_a_bad_key_and_scripted_errors(fake: FakeUpstreams) -> None:
    bad = openai_embed(fake, key="sk-wrong", model="m", input="x")
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "invalid_api_key")
    fake.script("openai", once=True, status=429)
    limited = openai_embed(fake, model="m", input="x")
    assert (limited.status_code, limited.json()["error"]["code"]) == (429, "rate_limit_exceeded")


def test_gemini_embeddings(fake: FakeUpstreams) -> None:
    one = gemini_embed(fake, "embedContent", {"content": {"parts": [{"text": "hi"}]}})
    assert one.json() == {"embedding": {"values": embedding_values("hi")}}
    requests = [
        {
            "model": "models/gemini-embedding-001",
            "content": {"parts": [{"text": t}]},
            "outputDimensionality": 3,
        }
        for t in ("a", "b")
    ]
    batch = gemini_embed(fake, "batchEmbedContents", {"requests": requests})
    assert batch.json() == {"embeddings": [{"values": embedding_values(t, 3)} for t in ("a", "b")]}
    assert fake.last_request().provider == "gemini"


def test_gemini_embeddings_answer_scripted_errors(fake: FakeUpstreams) -> None:
    fake.script("gemini", once=True, status=503)
    response = gemini_embed(fake, "embedContent", {"content": {"parts": [{"text": "hi"}]}})
    assert (response.status_code, response.json()["error"]["status"]) == (503, "UNAVAILABLE")
