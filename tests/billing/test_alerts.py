"""Cap alerts: once per month and scope, signed, durable and retried, and free without a webhook."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared import db as shared_db
from shared.billing import alerts
from shared.money import Month
from tests.support.fakes.server import free_port
from tests.support.fakes.webhooks import Endpoint, WebhookReceiver, verifies

SECRET = "whsec_test_secret"
CENT = 10_000_000
MONTH = "2026-02"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture
def hook(receiver: WebhookReceiver, configure) -> Endpoint:
    receiver.reset()
    endpoint = Endpoint(receiver, "hook")
    configure(ALERT_WEBHOOK_URL=endpoint.url, ALERT_WEBHOOK_SECRET=SECRET)
    return endpoint


def run(coroutine: Any) -> Any:
    """Run library code on a fresh loop, closing that loop's pool afterwards."""

    async def wrapped() -> Any:
        try:
            return await coroutine
        finally:
            await shared_db.close()

    return asyncio.run(wrapped())


def after_call(
    customer_id: int, key_id: int, spent_cents: float, key_cap: int | None = None, **kw: Any
) -> None:
    """A settled call leaving ``spent_cents`` of a 1000-cent cap spent (the key spent the same)."""
    spent = int(spent_cents * CENT)
    figures = {"month": MONTH, "cap_cents": 1000, "spent_nanos": spent, "key_cap_cents": key_cap}
    month = Month(**{"key_spent_nanos": spent, **figures, **kw})
    run(alerts.check_after_call(customer_id, key_id, month))


def test_one_warning_per_month_and_scope_when_spend_crosses_85_percent(hook, db, make_key):
    key = make_key()
    after_call(key.customer_id, key.key_id, 500)
    after_call(key.customer_id, key.key_id, 849.99)
    assert hook.received == []
    after_call(key.customer_id, key.key_id, 850)
    after_call(key.customer_id, key.key_id, 900)
    after_call(key.customer_id, key.key_id, 950)
    assert hook.payloads() == [
        {
            "type": "cap_warning",
            "scope": "customer",
            "customer_id": key.customer_id,
            "api_key_id": None,
            "month": MONTH,
            "cap_cents": 1000,
            "spent_cents": 850,
            "pct": 85.0,
        }
    ]
    after_call(key.customer_id, key.key_id, 860, month="2026-03")  # a new month warns again
    assert [p["month"] for p in hook.payloads()] == [MONTH, "2026-03"]
    rows = db.execute("SELECT * FROM alert_deliveries ORDER BY id").fetchall()
    assert [(r["status"], r["attempts"], r["api_key_id"]) for r in rows] == [("sent", 1, 0), ("sent", 1, 0)]


def test_key_scope_warns_on_its_own_tighter_cap_and_the_cap_reached_alert(hook, make_key):
    key = make_key()
    after_call(key.customer_id, key.key_id, 90, key_cap=100)  # 90% of the key's 1-dollar cap
    after_call(key.customer_id, key.key_id, 95, key_cap=100)
    after_call(key.customer_id, key.key_id, 100, key_cap=100)
    assert [(p["type"], p["scope"], p["api_key_id"], p["pct"]) for p in hook.payloads()] == [
        ("cap_warning", "key", key.key_id, 90.0),
        ("cap_reached", "key", key.key_id, 100.0),
    ]
    hook.received.clear()
    after_call(
        key.customer_id, key.key_id, 99, key_cap=1000
    )  # a key cap equal to the customer's: no key alerts
    assert hook.received == []


def test_a_refusal_sends_cap_reached_once(hook, make_key):
    key = make_key()
    for _ in range(2):
        run(
            alerts.check_refusal(
                key.customer_id, key.key_id, Month(MONTH, 1000, 400 * CENT, 1000, 0), "customer"
            )
        )
    assert [(p["type"], p["scope"], p["spent_cents"]) for p in hook.payloads()] == [
        ("cap_reached", "customer", 400)
    ]


def test_signature_verifies(hook, make_key):
    key = make_key()
    after_call(key.customer_id, key.key_id, 1200)  # straight past the cap: warning and reached
    assert sorted(p["type"] for p in hook.payloads()) == ["cap_reached", "cap_warning"]
    for headers, body in hook.received:
        assert verifies(SECRET, headers, body)  # the HMAC over "<t>.<body>", and a recent t
        assert headers["content-type"] == "application/json"


def test_a_failing_receiver_is_retried_with_backoff(hook, db, make_key):
    key = make_key()
    hook.failures_left = 1
    after_call(key.customer_id, key.key_id, 870)
    row = db.execute("SELECT *, next_attempt_at > now() AS later FROM alert_deliveries").fetchone()
    assert (row["status"], row["attempts"], row["last_error"], row["later"]) == (
        "pending",
        1,
        "HTTP 500",
        True,
    )
    assert run(alerts.deliver_due()) == 0  # not due yet
    db.execute("UPDATE alert_deliveries SET next_attempt_at = now()")
    assert run(alerts.deliver_due()) == 1
    row = db.execute("SELECT * FROM alert_deliveries").fetchone()
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)
    assert row["sent_at"] is not None and len(hook.received) == 1


def test_delivery_gives_up_after_max_attempts(hook, db, make_key):
    key = make_key()
    hook.failures_left = alerts.MAX_ATTEMPTS + 5
    after_call(key.customer_id, key.key_id, 870)
    for _ in range(alerts.MAX_ATTEMPTS - 1):
        db.execute("UPDATE alert_deliveries SET next_attempt_at = now()")
        run(alerts.deliver_due())
    row = db.execute("SELECT * FROM alert_deliveries").fetchone()
    assert (row["status"], row["attempts"]) == ("failed", alerts.MAX_ATTEMPTS)
    assert [alerts.backoff_s(n) for n in (1, 2, 3, 8)] == [30, 60, 120, 3600]


def test_concurrent_workers_never_send_a_delivery_twice(hook, db, make_key):
    key = make_key()
    hook.failures_left = 1
    after_call(key.customer_id, key.key_id, 870)
    db.execute("UPDATE alert_deliveries SET next_attempt_at = now()")

    async def three_workers() -> list[int]:
        return list(await asyncio.gather(alerts.deliver_due(), alerts.deliver_due(), alerts.deliver_due()))

    assert sorted(run(three_workers())) == [0, 0, 1]
    assert len(hook.received) == 1


def test_unreachable_webhook_records_the_error_without_the_url(configure, db, make_key):
    configure(ALERT_WEBHOOK_URL=f"http://127.0.0.1:{free_port()}/secret-path-token")
    key = make_key()
    after_call(key.customer_id, key.key_id, 870)
    row = db.execute("SELECT * FROM alert_deliveries").fetchone()
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"].startswith("ConnectError") and "secret-path-token" not in row["last_error"]


def test_nothing_is_recorded_without_a_webhook(configure, db, make_key, monkeypatch):
    configure(ALERT_WEBHOOK_URL="")
    key = make_key()

    async def no_database(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the database was touched without a webhook")

    monkeypatch.setattr(shared_db, "connection", no_database)
    monkeypatch.setattr(shared_db, "fetch_all", no_database)
    after_call(key.customer_id, key.key_id, 1500)
    run(alerts.check_refusal(key.customer_id, key.key_id, Month(MONTH, 1000, 0, 10, 10 * CENT), "key"))
    monkeypatch.undo()
    assert db.execute("SELECT count(*) AS n FROM alert_deliveries").fetchone()["n"] == 0


def test_checks_never_raise_into_the_caller(hook, monkeypatch, caplog):
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(alerts, "_record_and_send", broken)
    after_call(1, 1, 990)
    run(alerts.check_refusal(1, 1, Month(MONTH, 1000, 990 * CENT, None, 0), "customer"))
    assert "cap alert check failed" in caplog.text


def test_the_gateway_sends_the_warning_when_a_call_crosses_the_threshold(hook, client, upstreams, make_key):
    """End to end: a call whose cost takes the month past 85 % of a 1-cent cap."""
    from tests.support.calls import body

    key = make_key(customer={"monthly_cap_cents": 1})
    upstreams.script("openai", input_tokens=40, output_tokens=15_000)  # 9,006,000 nanos: 90 %
    assert client.post("gateway-chat", json=body(max_tokens=16_000), headers=key.auth).status_code == 200
    deadline = time.monotonic() + 5
    while not hook.received and time.monotonic() < deadline:
        time.sleep(0.02)
    [payload] = hook.payloads()
    assert (payload["type"], payload["scope"], payload["customer_id"]) == (
        "cap_warning",
        "customer",
        key.customer_id,
    )
