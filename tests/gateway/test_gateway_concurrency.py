"""Admission under concurrency, against the real database: caps, rate limits, seats, revocation,
and row parity (every admitted call ends in exactly one usage event)."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.statements import StatementLog
from shared.billing import pricing
from tests.support.calls import body


async def _fire(server: str, requests: list[tuple[str, dict, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=f"{server}/.netlify/functions/", timeout=60, limits=limits) as http:
        return await asyncio.gather(
            *(http.post(path, json=payload, headers=headers) for path, payload, headers in requests)
        )


def fire(server: str, requests: list[tuple[str, dict, dict]]) -> list[httpx.Response]:
    return asyncio.run(_fire(server, requests))


def statuses(responses: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for response in responses:
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
    return counts


def test_parallel_calls_never_exceed_the_cap(server, db, make_key, upstreams):
    price = pricing.lookup("openai", "gpt-4o-mini")
    call = body(max_tokens=1655, messages=[{"role": "user", "content": "Hello"}])
    # The worst case of one call is just under a tenth of a cent: headroom for exactly 10.
    worst = pricing.worst_case_nanos(price, 5 + 32 + 8, 1655)
    assert 10 * worst <= 10_000_000 < 11 * worst
    key = make_key(customer={"monthly_cap_cents": 1})
    upstreams.script("openai", delay_s=0.5, input_tokens=40, output_tokens=1_500)
    responses = fire(server, [("gateway-chat", call, key.auth)] * 100)
    counts = statuses(responses)
    assert counts == {200: 10, 402: 90}, counts
    assert all(r.json()["code"] == "CAP_REACHED" for r in responses if r.status_code == 402)
    spent = db.execute("SELECT sum(cost_nanos) AS s, count(*) AS n FROM usage_events").fetchone()
    assert spent["n"] == 10 and spent["s"] <= 10_000_000
    rollup = db.execute("SELECT spent_nanos, reserved_nanos FROM monthly_usage").fetchone()
    assert rollup == {"spent_nanos": spent["s"], "reserved_nanos": 0}


def test_parallel_calls_admit_exactly_the_rpm(server, db, make_key, upstreams):
    key = make_key(rpm_limit=10)
    responses = fire(server, [("gateway-chat", body(), key.auth)] * 30)
    assert statuses(responses) == {200: 10, 429: 20}
    assert db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"] == 10


def test_parallel_new_devices_claim_exactly_the_seats(server, db, make_key, upstreams):
    key = make_key(max_devices=5)
    requests = [
        ("gateway-chat", body(), {**key.auth, "x-kaixu-install-id": f"device-{i}"}) for i in range(20)
    ]
    responses = fire(server, requests)
    assert statuses(responses) == {200: 5, 403: 15}
    assert {r.json()["code"] for r in responses if r.status_code == 403} == {"DEVICE_LIMIT"}
    assert db.execute("SELECT count(*) AS n FROM key_devices").fetchone()["n"] == 5


def test_a_key_revoked_mid_flight_admits_nothing_afterwards(server, db, make_key, upstreams):
    key = make_key(rpm_limit=1000)
    upstreams.script("openai", delay_s=0.6)

    async def scenario() -> tuple[list[httpx.Response], list[httpx.Response]]:
        in_flight = asyncio.ensure_future(_fire(server, [("gateway-chat", body(), key.auth)] * 10))
        await asyncio.sleep(0.3)  # the ten are admitted and waiting on the provider
        await asyncio.to_thread(
            db.execute, "UPDATE api_keys SET revoked_at = now() WHERE id = %s", (key.key_id,)
        )
        after = await _fire(server, [("gateway-chat", body(), key.auth)] * 10)
        return await in_flight, after

    started = time.monotonic()
    before, after = asyncio.run(scenario())
    assert time.monotonic() - started < 5
    assert statuses(before) == {200: 10}
    assert statuses(after) == {401: 10}
    assert {r.json()["code"] for r in after} == {"KEY_REVOKED"}
    assert db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"] == 10


def test_row_parity_across_every_ending(server, db, make_key, upstreams):
    key = make_key(rpm_limit=1000)
    upstreams.script("openai", once=True, status=500)
    upstreams.script("openai", once=True, error_after=1)
    upstreams.script("openai", once=True, no_terminal=True)
    requests = [
        ("gateway-chat", body(), key.auth),
        ("gateway-stream", body(), key.auth),
        ("gateway-stream", body(), key.auth),
    ]
    for path, payload, headers in requests:  # one at a time: the scripted answers are queued in order
        fire(server, [(path, payload, headers)])
    fire(server, [("gateway-chat", body(), key.auth)] * 6 + [("gateway-stream", body(), key.auth)] * 6)
    outcomes = db.execute("SELECT outcome, count(*) AS n FROM usage_events GROUP BY 1 ORDER BY 1").fetchall()
    assert {row["outcome"]: row["n"] for row in outcomes} == {
        "ok": 12,
        "stream_error": 2,
        "upstream_error": 1,
    }
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0
    rollup = db.execute("SELECT calls, reserved_nanos FROM monthly_usage").fetchone()
    assert rollup == {"calls": 15, "reserved_nanos": 0}


def test_two_round_trips_per_gateway_call(client, db, make_key, upstreams):
    """Counted by PostgreSQL itself: every statement it received while ten calls ran."""
    key = make_key(rpm_limit=1000)
    client.post("gateway-chat", json=body(), headers=key.auth)  # warm the pool
    with StatementLog(db) as log:
        for _ in range(10):
            assert client.post("gateway-chat", json=body(), headers=key.auth).status_code == 200
        for _ in range(5):
            assert client.post("gateway-stream", json=body(), headers=key.auth).status_code == 200
    assert log.count == 2 * 15


def test_top_ups_during_traffic_never_deadlock(server, db, make_key, upstreams, configure):
    """Top-ups lock the customer, then its month row; admissions hold the month row: no lock
    may be taken in the other order, or one side dies as a deadlock victim."""
    configure(ADMIN_PASSWORD="pw")
    key = make_key(customer={"max_concurrent": 0}, rpm_limit=1000)
    topup = ("admin-topups", {"customer_id": key.customer_id, "amount_cents": 1}, {"x-admin-password": "pw"})
    calls = [("gateway-chat", body(), key.auth)] * 40
    responses = fire(
        server, [item for pair in zip(calls[::4], [topup] * 10, strict=True) for item in pair] + calls
    )
    assert {r.status_code for r in responses} <= {200, 201}, [
        r.text for r in responses if r.status_code >= 300
    ]
    assert db.execute("SELECT sum(amount_cents) AS s FROM topups").fetchone()["s"] == 10


def test_a_reply_without_usage_is_billed_as_an_estimate(client, db, make_key, upstreams):
    upstreams.script("openai", text="A reply of some length.", input_tokens=0, output_tokens=0)
    response = client.post("gateway-chat", json=body(), headers=make_key().auth)
    assert response.status_code == 200
    event = db.execute(
        "SELECT input_tokens, output_tokens, estimated, cost_nanos FROM usage_events"
    ).fetchone()
    assert event["estimated"] is True and event["input_tokens"] > 0 and event["output_tokens"] > 0
    assert event["cost_nanos"] > 0
    assert response.json()["usage"]["input_tokens"] == event["input_tokens"]
