"""The provider adapters, end to end against the loopback fake upstreams."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from shared import config, http11, providers
from shared.gateway.request import parse_request
from shared.providers import UpstreamError, Usage, anthropic, errors, gemini, openai
from shared.providers.conversation import Conversation
from shared.providers.sse import SSEEvent
from tests.support.fakes.upstreams import FakeUpstreams

T = TypeVar("T")
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
LABELS = {"openai": "OpenAI", "anthropic": "Anthropic", "gemini": "Gemini"}
ALL = pytest.mark.parametrize("provider", list(MODELS))


@pytest.fixture
def fake(upstreams: FakeUpstreams) -> FakeUpstreams:
    return upstreams


def run(make: Callable[[], Awaitable[T]]) -> T:
    """Run one test coroutine on a fresh loop, closing that loop's HTTP client after."""

    async def main() -> T:
        try:
            return await make()
        finally:
            await providers.aclose()

    return asyncio.run(main())


def request(provider: str, **changes: Any) -> Conversation:
    data: dict[str, Any] = {
        "provider": provider,
        "model": MODELS[provider],
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 64,
        "temperature": 0.5,
    }
    return parse_request({**data, **changes})


async def collect(req: Conversation) -> tuple[list[str], providers.UpstreamStream]:
    """The text deltas of a stream (it also yields events, tool-call pieces and the finish)."""
    async with providers.open_stream(req) as stream:
        return [item async for item in stream if isinstance(item, str)], stream


def stream_until_error(req: Conversation) -> tuple[list[str], UpstreamError, providers.UpstreamStream]:
    async def go() -> tuple[list[str], UpstreamError, providers.UpstreamStream]:
        seen: list[str] = []
        async with providers.open_stream(req) as stream:
            with pytest.raises(UpstreamError) as caught:
                async for item in stream:
                    if isinstance(item, str):
                        seen.append(item)
        return seen, caught.value, stream

    return run(go)


def fails(make: Callable[[], Awaitable[Any]]) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        run(make)
    return caught.value


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    config.reload()


# --------------------------------------------------------------------------- happy paths

EXPECTED_USAGE = {
    "openai": Usage(input_tokens=40, output_tokens=9, cached_input_tokens=8, reasoning_tokens=3),
    "anthropic": Usage(input_tokens=40, output_tokens=9, cached_input_tokens=8, cache_write_tokens=5),
    "gemini": Usage(input_tokens=40, output_tokens=9, cached_input_tokens=8, reasoning_tokens=3),
}


def script_usage(fake: FakeUpstreams, provider: str) -> None:
    fake.script(
        provider,
        text="Bonjour tout le monde",
        input_tokens=40,
        output_tokens=9,
        cached_tokens=8,
        cache_write_tokens=5 if provider == "anthropic" else 0,
        thoughts_tokens=3 if provider != "anthropic" else 0,
    )


@ALL
def test_complete_default_reply(fake: FakeUpstreams, provider: str) -> None:
    completion = run(lambda: providers.complete(request(provider)))
    assert completion.text == f"Hello from {provider}!"
    assert completion.usage == Usage(input_tokens=12, output_tokens=5)
    assert completion.upstream_request_id


@ALL
def test_complete_text_and_exact_usage(fake: FakeUpstreams, provider: str) -> None:
    script_usage(fake, provider)
    completion = run(lambda: providers.complete(request(provider)))
    assert completion.text == "Bonjour tout le monde"
    assert completion.usage == EXPECTED_USAGE[provider]


@ALL
def test_stream_deltas_usage_and_finish(fake: FakeUpstreams, provider: str) -> None:
    script_usage(fake, provider)
    deltas, stream = run(lambda: collect(request(provider)))
    assert deltas == ["Bonjour ", "tout ", "le ", "monde"]
    assert stream.usage == EXPECTED_USAGE[provider]
    assert stream.finished is True


@ALL
def test_unicode_line_separators_survive_the_stream(fake: FakeUpstreams, provider: str) -> None:
    pieces = ["Zeile\u2028eins ", "Absatz\u2029zwei ", "nel\u0085drei ", "日本語🙂"]
    fake.script(provider, deltas=pieces)
    deltas, stream = run(lambda: collect(request(provider)))
    assert deltas == pieces
    assert stream.finished


def test_upstream_request_ids(fake: FakeUpstreams) -> None:
    assert run(lambda: providers.complete(request("openai"))).upstream_request_id.startswith("req_")
    assert run(lambda: providers.complete(request("anthropic"))).upstream_request_id.startswith("req_011C")
    # Google sends no request-id header: the body's responseId stands in
    assert run(lambda: providers.complete(request("gemini"))).upstream_request_id.startswith("fake")


def test_stream_usage_is_readable_while_iterating(fake: FakeUpstreams) -> None:
    fake.script("gemini", deltas=["a", "b", "c"], output_tokens=30)

    async def go() -> list[int]:
        seen = []
        async with providers.open_stream(request("gemini")) as stream:
            async for item in stream:
                assert stream.usage is not None
                if isinstance(item, str):
                    seen.append(stream.usage.output_tokens)
            assert stream.finished
        return seen

    assert run(go) == [10, 20, 30]  # cumulative, never summed


def test_connections_are_kept_alive_within_a_loop(fake: FakeUpstreams) -> None:
    async def go() -> None:
        assert http11.pool() is http11.pool()
        await providers.complete(request("openai"))
        await providers.complete(request("openai"))
        await collect(request("openai"))

    run(go)
    ports = {r.client_port for r in fake.requests}
    assert len(fake.requests) == 3 and len(ports) == 1


def test_one_pool_per_event_loop(fake: FakeUpstreams) -> None:
    async def current() -> Any:
        return http11.pool()

    first, second = asyncio.run(current()), asyncio.run(current())
    assert first is not second


# --------------------------------------------------------------------------- request shapes


def test_openai_request_shape(fake: FakeUpstreams) -> None:
    req = request(
        "openai",
        messages=[
            {"role": "system", "content": "S"},
            {"role": "developer", "content": "D"},
            {"role": "user", "content": [{"type": "text", "text": "U1"}, {"type": "text", "text": "U2"}]},
            {"role": "assistant", "content": "A"},
            {"role": "user", "content": "U3"},
        ],
    )
    run(lambda: providers.complete(req))
    plain = fake.last_request("openai")
    run(lambda: collect(req))
    streamed = fake.last_request("openai")

    assert plain.path == streamed.path == "/v1/chat/completions"
    assert plain.headers["authorization"] == f"Bearer {fake.keys['openai']}"
    assert plain.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "developer", "content": "D"},
            {"role": "user", "content": "U1U2"},
            {"role": "assistant", "content": "A"},
            {"role": "user", "content": "U3"},
        ],
        "max_completion_tokens": 64,
        "temperature": 0.5,
    }
    assert streamed.body["stream"] is True
    assert streamed.body["stream_options"] == {"include_usage": True}
    assert streamed.headers["accept"] == "text/event-stream"


def test_anthropic_request_shape(fake: FakeUpstreams) -> None:
    req = request(
        "anthropic",
        temperature=1.7,
        messages=[
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U1"},
            {"role": "developer", "content": "D"},
            {"role": "user", "content": "U2"},
            {"role": "assistant", "content": "A"},
            {"role": "user", "content": "U3"},
        ],
    )
    run(lambda: providers.complete(req))
    plain = fake.last_request("anthropic")
    run(lambda: collect(req))
    streamed = fake.last_request("anthropic")

    assert plain.path == "/v1/messages"
    assert plain.headers["x-api-key"] == fake.keys["anthropic"]
    assert plain.headers["anthropic-version"] == "2023-06-01"
    assert plain.body == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "system": "S\n\nD",
        "messages": [
            {"role": "user", "content": "U1\n\nU2"},
            {"role": "assistant", "content": "A"},
            {"role": "user", "content": "U3"},
        ],
        "temperature": 1.0,  # clamped to Anthropic's range
    }
    assert "stream" not in plain.body
    assert streamed.body["stream"] is True
    assert streamed.headers["anthropic-version"] == "2023-06-01"


def test_gemini_request_shape(fake: FakeUpstreams) -> None:
    req = request(
        "gemini",
        messages=[
            {"role": "system", "content": "S"},
            {"role": "developer", "content": "D"},
            {"role": "user", "content": "U"},
            {"role": "assistant", "content": "A"},
            {"role": "user", "content": "U2"},
        ],
    )
    run(lambda: providers.complete(req))
    plain = fake.last_request("gemini")
    run(lambda: collect(req))
    streamed = fake.last_request("gemini")

    assert plain.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert plain.query == {}
    assert streamed.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert streamed.query == {"alt": "sse"}
    assert plain.headers["x-goog-api-key"] == fake.keys["gemini"]
    assert "key" not in plain.query  # the key never goes into a URL (it would be logged)
    assert (
        plain.body
        == streamed.body
        == {
            "contents": [
                {"role": "user", "parts": [{"text": "U"}]},
                {"role": "model", "parts": [{"text": "A"}]},
                {"role": "user", "parts": [{"text": "U2"}]},
            ],
            "systemInstruction": {"parts": [{"text": "S"}, {"text": "D"}]},
            "generationConfig": {"maxOutputTokens": 64, "temperature": 0.5},
        }
    )


# --------------------------------------------------------------------------- errors before the first byte


def both_ways(provider: str) -> list[Callable[[], Awaitable[Any]]]:
    return [lambda: providers.complete(request(provider)), lambda: collect(request(provider))]


@ALL
def test_missing_key_is_503_before_any_network_call(
    fake: FakeUpstreams, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    set_env(monkeypatch, **{f"{provider.upper()}_API_KEY": ""})
    assert providers.is_configured(provider) is False
    for make in both_ways(provider):
        error = fails(make)
        assert (error.status, error.code, error.upstream_status) == (503, "PROVIDER_NOT_CONFIGURED", None)
    assert fake.requests == []


def test_is_configured(fake: FakeUpstreams) -> None:
    assert all(providers.is_configured(p) for p in MODELS)


@pytest.mark.parametrize(
    ("provider", "upstream_status"), [("openai", 401), ("anthropic", 401), ("gemini", 400)]
)
def test_wrong_key_is_upstream_auth(
    fake: FakeUpstreams, monkeypatch: pytest.MonkeyPatch, provider: str, upstream_status: int
) -> None:
    wrong = {
        "openai": "sk-wrong-key-123456",
        "anthropic": "sk-ant-wrong-123456",
        "gemini": "AIzaWrongKey123456",
    }
    set_env(monkeypatch, **{f"{provider.upper()}_API_KEY": wrong[provider]})
    for make in both_ways(provider):
        error = fails(make)
        assert (error.status, error.code, error.upstream_status) == (502, "UPSTREAM_AUTH", upstream_status)
        assert wrong[provider] not in error.message
        assert "sk-VKMIs" not in error.message  # OpenAI echoes part of the key: not quoted
        assert error.retry_after is None


# (provider, scripted upstream status, gateway status, code)
STATUS_MAP = [
    ("openai", 403, 502, "UPSTREAM_AUTH"),
    ("anthropic", 403, 502, "UPSTREAM_AUTH"),
    ("openai", 400, 502, "UPSTREAM_REJECTED"),
    ("openai", 404, 502, "UPSTREAM_REJECTED"),
    ("anthropic", 400, 502, "UPSTREAM_REJECTED"),
    ("anthropic", 404, 502, "UPSTREAM_REJECTED"),
    ("anthropic", 413, 502, "UPSTREAM_REJECTED"),
    ("gemini", 400, 502, "UPSTREAM_REJECTED"),
    ("gemini", 404, 502, "UPSTREAM_REJECTED"),
    ("openai", 500, 502, "UPSTREAM_ERROR"),
    ("openai", 503, 502, "UPSTREAM_ERROR"),
    ("anthropic", 500, 502, "UPSTREAM_ERROR"),
    ("anthropic", 529, 502, "UPSTREAM_ERROR"),
    ("gemini", 500, 502, "UPSTREAM_ERROR"),
    ("gemini", 503, 502, "UPSTREAM_ERROR"),
]


@pytest.mark.parametrize(("provider", "upstream", "status", "code"), STATUS_MAP)
def test_status_mapping(fake: FakeUpstreams, provider: str, upstream: int, status: int, code: str) -> None:
    fake.script(provider, status=upstream)
    for make in both_ways(provider):
        error = fails(make)
        assert (error.status, error.code, error.upstream_status) == (status, code, upstream)
        assert f"HTTP {upstream}" in error.message
        assert error.retry_after is None


def test_rejected_message_quotes_the_provider(fake: FakeUpstreams) -> None:
    fake.script("openai", status=404)
    error = fails(lambda: providers.complete(request("openai")))
    assert error.message == (
        "OpenAI rejected the request (HTTP 404): "
        "The model `gpt-5.2-proo` does not exist or you do not have access to it."
    )
    fake.script("anthropic", status=529)
    error = fails(lambda: providers.complete(request("anthropic")))
    assert error.message == "Anthropic failed to answer (HTTP 529): Overloaded"
    assert error.upstream_request_id and error.upstream_request_id.startswith("req_011C")


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_rate_limit_passes_retry_after_header(fake: FakeUpstreams, provider: str) -> None:
    fake.script(provider, status=429, headers={"retry-after": "7"})
    for make in both_ways(provider):
        error = fails(make)
        assert (error.status, error.code, error.upstream_status) == (429, "UPSTREAM_RATE_LIMITED", 429)
        assert error.retry_after == "7"


def test_gemini_rate_limit_reads_retry_info(fake: FakeUpstreams) -> None:
    fake.script("gemini", status=429)
    for make in both_ways("gemini"):
        error = fails(make)
        assert (error.status, error.code, error.retry_after) == (429, "UPSTREAM_RATE_LIMITED", "26")


def test_configured_key_is_scrubbed_from_quoted_messages(fake: FakeUpstreams) -> None:
    key = fake.keys["openai"]
    message = f"Key {key} is not allowed here " + "x" * 400
    body = {"error": {"message": message, "type": "invalid_request_error"}}
    fake.script("openai", status=400, error_body=body)
    error = fails(lambda: providers.complete(request("openai")))
    assert key not in error.message and "[redacted]" in error.message
    assert len(error.message) < 400


def test_the_operators_provider_account_never_reaches_a_customer(fake: FakeUpstreams) -> None:
    message = (
        "Rate limit reached for gpt-4o-mini in organization org-AbCdEf123456 on tokens per min "
        "(project proj_Zyx987654321abc, user user-Q1w2E3r4T5y6)."
    )
    fake.script("openai", status=429, error_body={"error": {"message": message, "type": "tokens"}})
    error = fails(lambda: providers.complete(request("openai")))
    assert "org-AbCdEf" not in error.message and "proj_Zyx" not in error.message
    assert "user-Q1w2" not in error.message and "[account]" in error.message
    assert "Rate limit reached for gpt-4o-mini" in error.message  # the useful part stays


def test_timeout_before_answer_is_504(fake: FakeUpstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, UPSTREAM_TIMEOUT_S="0.2")
    fake.script(delay_s=0.8)
    for provider in MODELS:
        for make in both_ways(provider):
            started = time.monotonic()
            error = fails(make)
            assert (error.status, error.code, error.upstream_status) == (504, "UPSTREAM_TIMEOUT", None)
            assert time.monotonic() - started < 0.7  # the timeout fired, not the answer


def test_timeout_mid_stream_is_504(fake: FakeUpstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, UPSTREAM_TIMEOUT_S="0.2")
    fake.script("anthropic", chunk_delay_s=0.6)
    seen, error, stream = stream_until_error(request("anthropic"))
    assert seen == [] and (error.status, error.code) == (504, "UPSTREAM_TIMEOUT")
    assert stream.usage == Usage(input_tokens=12, output_tokens=1)  # from message_start
    assert stream.finished is False


def test_unreachable_is_502(fake: FakeUpstreams, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    set_env(monkeypatch, OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
    for make in both_ways("openai"):
        error = fails(make)
        assert (error.status, error.code, error.upstream_status) == (502, "UPSTREAM_UNREACHABLE", None)


def test_connection_dropped_mid_body_is_unreachable(fake: FakeUpstreams) -> None:
    fake.script("gemini", drop_after=0)
    error = fails(lambda: providers.complete(request("gemini")))
    assert (error.status, error.code) == (502, "UPSTREAM_UNREACHABLE")


# --------------------------------------------------------------------------- errors mid-stream


PARTIAL_USAGE = {
    "openai": None,  # OpenAI sends usage only at the very end
    "anthropic": Usage(input_tokens=12, output_tokens=1),  # message_start's placeholder
    "gemini": Usage(input_tokens=12, output_tokens=6),  # cumulative after 2 of 4 chunks
}


@ALL
def test_midstream_error_after_earlier_deltas(fake: FakeUpstreams, provider: str) -> None:
    fake.script(provider, deltas=["one ", "two ", "three ", "four"], output_tokens=12, error_after=2)
    seen, error, stream = stream_until_error(request(provider))
    assert seen == ["one ", "two "]
    assert (error.status, error.code, error.upstream_status) == (502, "UPSTREAM_STREAM_ERROR", 200)
    assert error.message.startswith(f"{LABELS[provider]} reported an error mid-stream: ")
    if provider != "gemini":  # Google sends no request-id header
        assert error.upstream_request_id and error.upstream_request_id.startswith("req_")
    assert stream.usage == PARTIAL_USAGE[provider]
    assert stream.finished is False


@ALL
def test_connection_drop_mid_stream(fake: FakeUpstreams, provider: str) -> None:
    fake.script(provider, deltas=["one ", "two ", "three"], drop_after=1)
    seen, error, stream = stream_until_error(request(provider))
    assert seen == ["one "]
    assert (error.status, error.code) == (502, "UPSTREAM_STREAM_ERROR")
    assert stream.finished is False


@ALL
def test_stream_without_terminal_marker_is_not_finished(fake: FakeUpstreams, provider: str) -> None:
    fake.script(provider, no_terminal=True, output_tokens=9)
    deltas, stream = run(lambda: collect(request(provider)))
    assert "".join(deltas) == f"Hello from {provider}!"
    assert stream.finished is False
    assert stream.usage is not None and stream.usage.output_tokens == 9


@ALL
def test_leaving_early_cancels_the_upstream_request(fake: FakeUpstreams, provider: str) -> None:
    fake.script(provider, deltas=[f"w{i} " for i in range(40)], chunk_delay_s=0.05)

    async def go() -> tuple[list[str], bool, bool]:
        seen = []
        async with providers.open_stream(request(provider)) as stream:
            async for item in stream:
                if isinstance(item, str):
                    seen.append(item)
                if len(seen) == 2:
                    break
        # Checked before this loop's HTTP client is closed: leaving the block must suffice.
        cancelled = await asyncio.to_thread(fake.wait_for, lambda: fake.streams_cancelled == 1, 1.5)
        return seen, stream.finished, cancelled

    started = time.monotonic()
    seen, finished, cancelled = run(go)
    assert seen == ["w0 ", "w1 "] and finished is False
    assert cancelled
    assert (fake.streams_opened, fake.streams_closed, fake.streams_cancelled) == (1, 1, 1)
    assert time.monotonic() - started < 1.5  # not the 2 s the whole stream would take


def test_a_finished_stream_is_not_counted_as_cancelled(fake: FakeUpstreams) -> None:
    run(lambda: collect(request("openai")))
    assert fake.wait_for(lambda: fake.streams_closed == 1)
    assert fake.streams_cancelled == 0


def test_iterating_outside_the_context_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        providers.open_stream(request("openai")).__aiter__()


# --------------------------------------------------------------------------- adapter parsing details


def test_openai_null_content_is_empty_text() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": None}}], "usage": {"prompt_tokens": 3}}
    completion = openai.OpenAI().parse_completion(body, request("openai"))
    assert (completion.text, completion.usage) == ("", Usage(input_tokens=3))


def test_anthropic_text_blocks_are_the_answer_and_tool_use_blocks_the_calls() -> None:
    body = {
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "x"},
            {"type": "text", "text": "A"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            {"type": "text", "text": "B"},
        ],
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    completion = anthropic.Anthropic().parse_completion(body, request("anthropic"))
    assert completion.text == "AB"
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [("t", "f", "{}")]


def test_gemini_skips_thoughts_and_tolerates_missing_parts() -> None:
    adapter = gemini.Gemini()
    thoughtful = {
        "candidates": [{"content": {"parts": [{"text": "thinking...", "thought": True}, {"text": "Answer"}]}}]
    }
    assert adapter.parse_completion(thoughtful, request("gemini")).text == "Answer"
    empty = {
        "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}],
        "usageMetadata": {"promptTokenCount": 15, "thoughtsTokenCount": 2, "totalTokenCount": 17},
    }
    completion = adapter.parse_completion(empty, request("gemini"))
    assert (completion.text, completion.finish) == ("", "length")
    assert completion.usage == Usage(input_tokens=15, output_tokens=2, reasoning_tokens=2)


def test_anthropic_message_delta_usage_overwrites_never_sums() -> None:
    parser = anthropic.Anthropic().stream_parser(request("anthropic"))
    start = {
        "type": "message_start",
        "message": {"usage": {"input_tokens": 20, "cache_read_input_tokens": 100, "output_tokens": 1}},
    }
    parser.feed(SSEEvent("message_start", json.dumps(start)))
    for output in (3, 7):
        delta = {"type": "message_delta", "usage": {"output_tokens": output, "input_tokens": None}}
        parser.feed(SSEEvent("message_delta", json.dumps(delta)))
    assert parser.usage == Usage(input_tokens=120, output_tokens=7, cached_input_tokens=100)


def test_gemini_error_wrapped_in_an_array_raises() -> None:
    parser = gemini.Gemini().stream_parser(request("gemini"))
    chunk = {"candidates": [{"content": {"parts": [{"text": "x"}]}}]}
    assert parser.feed(SSEEvent("message", json.dumps(chunk))) == ["x"]
    wrapped = [{"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}]
    with pytest.raises(UpstreamError) as caught:
        parser.feed(SSEEvent("message", json.dumps(wrapped)))
    assert caught.value.code == "UPSTREAM_STREAM_ERROR"
    assert "The model is overloaded." in caught.value.message


def test_unreadable_stream_event_raises() -> None:
    with pytest.raises(UpstreamError) as caught:
        openai.OpenAI().stream_parser(request("openai")).feed(SSEEvent("message", '{"choices": [tru'))
    assert caught.value.code == "UPSTREAM_STREAM_ERROR"


def test_scrub_removes_keys_and_truncates() -> None:
    text = errors.scrub("use sk-abcdefghijkl or AIzaSyABCDEFGHIJ or mysecret " + "y" * 500, ["mysecret"])
    assert "sk-abc" not in text and "AIzaSy" not in text and "mysecret" not in text
    assert len(text) == errors.MAX_QUOTE


def test_fake_one_shot_scripts_apply_to_the_next_request_only(fake: FakeUpstreams) -> None:
    fake.script("openai", once=True, status=503)
    error = fails(lambda: providers.complete(request("openai")))
    assert (error.code, error.upstream_status) == ("UPSTREAM_ERROR", 503)
    assert run(lambda: providers.complete(request("openai"))).text == "Hello from openai!"
    with pytest.raises(TypeError):
        fake.script("openai", no_such_behaviour=True)
