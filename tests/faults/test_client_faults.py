"""Clients that break a gateway-stream call: gone while sending the body, gone before the
admission answers, after ``meta``, mid-delta, after ``done``, or still connected but no longer
reading. Each call is settled exactly once with the outcome that says how it ended, and
nothing stays reserved."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.calls import body
from tests.support.database import wait_for
from tests.support.ledger import assert_ledger_balances, usage

WORDS = [f"word{i} " for i in range(12)]


def _raw_request(
    server: str, key, payload: bytes, request_id: str, *, receive_buffer: int = 0
) -> socket.socket:
    """A socket with POST gateway-stream's head sent (declaring all of ``payload``), nothing more."""
    parts = urlsplit(server)
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((parts.hostname, parts.port))
    head = (
        f"POST /.netlify/functions/gateway-stream HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"authorization: {key.auth['authorization']}\r\ncontent-type: application/json\r\n"
        f"x-kaixu-request-id: {request_id}\r\ncontent-length: {len(payload)}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def _monitor_row(db, request_id: str):
    sql = "SELECT status FROM gateway_events WHERE request_id = %s"
    return wait_for(lambda: db.execute(sql, (request_id,)).fetchone(), timeout=10)


@pytest.mark.parametrize("sent", ["half the body", "the whole body"])
def test_a_client_gone_before_its_body_is_read_is_never_admitted(server, db, make_key, upstreams, sent):
    """A key the process has not met costs a lookup before the body is read; by then the
    hang-up is known, and uvicorn drops whatever of the body had come."""
    payload = json.dumps(body()).encode()
    sock = _raw_request(server, make_key(), payload, "gone-with-body")
    sock.sendall(payload if sent == "the whole body" else payload[: len(payload) // 2])
    sock.close()
    assert _monitor_row(db, "gone-with-body") is not None  # the request has ended on the server
    assert upstreams.requests == []
    assert_ledger_balances(db, calls=0)


def test_a_client_gone_before_the_provider_answers_is_billed_from_the_providers_usage(
    server, db, make_key, upstreams
):
    upstreams.script("openai", delay_s=0.5, input_tokens=21, output_tokens=34)
    payload = json.dumps(body()).encode()
    sock = _raw_request(server, make_key(), payload, "gone-before-meta")
    sock.sendall(payload)
    assert upstreams.wait_for(lambda: len(upstreams.requests) == 1)  # admitted, the provider asked
    sock.close()
    rows = wait_for(lambda: usage(db), timeout=10)
    assert [(r["outcome"], r["estimated"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        ("client_disconnect", False, 21, 34)
    ]
    assert_ledger_balances(db, calls=1)


def _leave(server: str, key, when: str) -> list[str]:
    """Read gateway-stream's frames until ``when``, then hang up."""
    seen: list[str] = []
    with (
        httpx.Client(base_url=f"{server}/.netlify/functions/", timeout=30) as http,
        http.stream("POST", "gateway-stream", json=body(), headers=key.auth) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("event: "):
                seen.append(line[len("event: ") :])
            if (when, seen[-1:]) in (("after meta", ["meta"]), ("after done", ["done"])) or (
                when == "mid-delta" and seen.count("delta") == 3
            ):
                return seen
    return seen


@pytest.mark.parametrize(
    ("when", "outcome"),
    [("after meta", "client_disconnect"), ("mid-delta", "client_disconnect"), ("after done", "ok")],
)
def test_a_client_that_hangs_up_is_billed_once_from_the_providers_usage(
    server, db, make_key, upstreams, when, outcome
):
    """OpenAI says its usage only in the last chunk: the gateway reads on after the hang-up."""
    upstreams.script("openai", deltas=WORDS, chunk_delay_s=0.03, input_tokens=21, output_tokens=34)
    seen = _leave(server, make_key(), when)
    assert seen[0] == "meta" and ("done" in seen) == (when == "after done")
    rows = wait_for(lambda: usage(db), timeout=10)
    assert [(r["outcome"], r["estimated"], r["input_tokens"], r["output_tokens"]) for r in rows] == [
        (outcome, False, 21, 34)
    ]
    assert upstreams.streams_cancelled == 0  # read to its end
    time.sleep(0.2)  # nothing settles twice
    assert_ledger_balances(db, calls=1)


def test_a_client_that_stops_reading_is_cut_and_billed_from_the_providers_usage(
    server, db, make_key, upstreams, configure
):
    configure(STREAM_WRITE_TIMEOUT_S="1", STREAM_USAGE_WAIT_S="10")
    upstreams.script("openai", deltas=["x" * 16_000] * 600, input_tokens=40, output_tokens=16_000)
    payload = json.dumps(body(max_tokens=16_384)).encode()
    sock = _raw_request(server, make_key(), payload, "stopped-reading", receive_buffer=4096)
    sock.sendall(payload)
    try:
        rows = wait_for(lambda: usage(db), timeout=20)
        assert [(r["outcome"], r["estimated"], r["output_tokens"]) for r in rows] == [
            ("client_disconnect", False, 16_000)
        ]
        assert upstreams.wait_for(lambda: upstreams.streams_closed == 1)
        assert_ledger_balances(db, calls=1)
    finally:
        sock.close()
