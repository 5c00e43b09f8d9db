"""Providers that break: a stall past UPSTREAM_TIMEOUT_S, a connection reset mid-stream, a storm
of 529/503 refusals, bodies that are not what the provider's API says, and a stream that ends
without its end marker and usage. Each gives the status or SSE ``error`` frame the code
documents (shared/providers/errors.py), and the books stay exact."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from tests.support.calls import body
from tests.support.ledger import assert_ledger_balances, prompt_bound, usage
from tests.support.sse import names, parse_sse


def _stream(client: httpx.Client, key, provider: str = "openai") -> list[tuple[str, dict]]:
    response = client.post("gateway-stream", json=body(provider), headers=key.auth)
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


def test_a_provider_silent_past_the_timeout_is_504_before_the_stream_and_an_error_frame_within_it(
    client, db, make_key, upstreams, configure
):
    configure(UPSTREAM_TIMEOUT_S="0.4")
    key = make_key()
    upstreams.script("openai", once=True, delay_s=1.5)  # no headers in time
    upstreams.script("openai", once=True, deltas=["one ", "two"], chunk_delay_s=1.5)  # silent after them
    before = client.post("gateway-stream", json=body(), headers=key.auth)
    assert before.status_code == 504 and before.headers["content-type"] == "application/json"
    assert before.json()["code"] == "UPSTREAM_TIMEOUT"
    frames = _stream(client, key)
    assert names(frames) == ["meta", "error"]
    assert frames[-1][1]["code"] == "UPSTREAM_TIMEOUT"
    tokens, nanos = prompt_bound(body())
    assert [(r["outcome"], r["estimated"], r["input_tokens"], r["cost_nanos"]) for r in usage(db)] == [
        ("upstream_error", False, 0, 0),  # nothing came back: nothing billed
        ("stream_error", True, tokens, nanos),  # the stream had started: its prompt was read
    ]
    assert_ledger_balances(db, calls=2)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_connection_reset_mid_stream_ends_in_an_error_frame_billed_for_what_streamed(
    client, db, make_key, upstreams, provider
):
    key = make_key()
    upstreams.script(provider, deltas=["alpha ", "beta ", "gamma ", "delta"], drop_after=2)
    frames = _stream(client, key, provider)
    assert names(frames) == ["meta", "delta", "delta", "error"]
    assert frames[-1][1]["code"] == "UPSTREAM_STREAM_ERROR" and "broke" in frames[-1][1]["error"]
    [row] = usage(db)
    # Anthropic and Gemini said the prompt's size before the reset; OpenAI says it only at the end.
    said = {"openai": prompt_bound(body(provider))[0], "anthropic": 12, "gemini": 12}[provider]
    assert (row["outcome"], row["estimated"], row["input_tokens"]) == ("stream_error", True, said)
    assert row["output_tokens"] >= 2  # "alpha beta " at about four bytes a token
    assert_ledger_balances(db, calls=1)


def test_a_connection_reset_mid_body_is_a_502_billed_nothing(client, db, make_key, upstreams):
    upstreams.script("anthropic", drop_after=0)  # half the JSON body, then the connection is cut
    response = client.post("gateway-chat", json=body("anthropic"), headers=make_key().auth)
    assert response.status_code == 502 and response.json()["code"] == "UPSTREAM_UNREACHABLE"
    assert [(r["outcome"], r["cost_nanos"]) for r in usage(db)] == [("upstream_error", 0)]
    assert_ledger_balances(db, calls=1)


async def _storm(server: str, key, calls: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=calls, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=f"{server}/.netlify/functions/", timeout=30, limits=limits) as http:
        return await asyncio.gather(
            *(
                http.post(
                    "gateway-stream" if i % 2 else "gateway-chat",
                    json=body("anthropic" if i % 3 else "gemini"),
                    headers=key.auth,
                )
                for i in range(calls)
            )
        )


def test_a_storm_of_overloaded_refusals_is_answered_502_each_billed_nothing(
    server, client, db, make_key, upstreams
):
    key = make_key(customer={"max_concurrent": 0}, rpm_limit=1000)
    upstreams.script("anthropic", status=529, delay_s=0.05)
    upstreams.script("gemini", status=503, delay_s=0.05)
    responses = asyncio.run(_storm(server, key, 30))
    assert {(r.status_code, r.json()["code"]) for r in responses} == {(502, "UPSTREAM_ERROR")}
    assert {r.json()["provider_status"] for r in responses} == {529, 503}
    assert {(r["outcome"], r["cost_nanos"]) for r in usage(db)} == {("upstream_error", 0)}
    assert_ledger_balances(db, calls=30)
    upstreams.reset()
    assert client.post("gateway-chat", json=body("anthropic"), headers=key.auth).status_code == 200
    assert_ledger_balances(db, calls=31)


@pytest.mark.parametrize(
    ("reply", "status", "code"),
    [
        ({"recorded": "<html><body>502 Bad Gateway</body></html>"}, 502, "UPSTREAM_ERROR"),
        ({"recorded": '[{"choices": []}]'}, 502, "UPSTREAM_ERROR"),
        ({"status": 500, "error_body": "<html>oops</html>"}, 502, "UPSTREAM_ERROR"),
        ({"status": 400, "error_body": {"unexpected": "shape"}}, 502, "UPSTREAM_REJECTED"),
    ],
    ids=["html-200", "json-not-an-object", "html-500", "error-of-another-shape"],
)
def test_a_body_the_provider_api_never_sends_is_a_502_billed_nothing(
    client, db, make_key, upstreams, reply, status, code
):
    upstreams.script("openai", **reply)
    response = client.post("gateway-chat", json=body(), headers=make_key().auth)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert [(r["outcome"], r["cost_nanos"]) for r in usage(db)] == [("upstream_error", 0)]
    assert_ledger_balances(db, calls=1)


def test_an_answer_without_choices_or_usage_is_billed_its_prompt_as_an_estimate(
    client, db, make_key, upstreams
):
    upstreams.script("openai", recorded='{"id": "chatcmpl-x", "object": "chat.completion"}')
    response = client.post("gateway-chat", json=body(), headers=make_key().auth)
    assert response.status_code == 200 and response.json()["output_text"] == ""
    tokens, nanos = prompt_bound(body())
    assert [(r["outcome"], r["estimated"], r["input_tokens"], r["cost_nanos"]) for r in usage(db)] == [
        ("ok", True, tokens, nanos)
    ]
    assert_ledger_balances(db, calls=1)


def test_an_unreadable_stream_event_ends_in_an_error_frame(client, db, make_key, upstreams):
    garbled = 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"choices": [tru\n\n'
    upstreams.script("openai", recorded=garbled)
    frames = _stream(client, make_key())
    assert names(frames) == ["meta", "delta", "error"]
    assert frames[-1][1]["code"] == "UPSTREAM_STREAM_ERROR"
    assert [(r["outcome"], r["estimated"]) for r in usage(db)] == [("stream_error", True)]
    assert_ledger_balances(db, calls=1)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_a_stream_that_ends_without_its_end_marker_and_usage_is_an_error_frame_billed_an_estimate(
    client, db, make_key, upstreams, provider
):
    upstreams.script(provider, deltas=["a ", "b ", "c"], no_terminal=True, output_tokens=3)
    frames = _stream(client, make_key(), provider)
    assert names(frames) == ["meta", "delta", "delta", "delta", "error"]
    assert frames[-1][1]["code"] == "UPSTREAM_STREAM_ERROR" and "ended early" in frames[-1][1]["error"]
    [row] = usage(db)
    assert (row["outcome"], row["estimated"]) == ("stream_error", True) and row["cost_nanos"] > 0
    assert_ledger_balances(db, calls=1)


def test_a_complete_stream_whose_usage_never_came_is_done_billed_an_estimate(client, db, make_key, upstreams):
    """The reply was whole (finish reason and [DONE] came); only the usage chunk did not."""
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello "}}]},
        {"choices": [{"index": 0, "delta": {"content": "there"}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
    sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    upstreams.script("openai", recorded=sse)
    frames = _stream(client, make_key())
    assert names(frames) == ["meta", "delta", "delta", "done"], frames
    tokens, _ = prompt_bound(body())
    [row] = usage(db)
    assert (row["outcome"], row["estimated"], row["input_tokens"]) == ("ok", True, tokens)
    assert frames[-1][1]["usage"]["input_tokens"] == tokens
    assert_ledger_balances(db, calls=1)
