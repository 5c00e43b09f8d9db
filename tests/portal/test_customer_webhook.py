"""customer-webhook: a customer's own signed cap alerts, its delivery log, and its boundaries."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from shared import crypto
from shared import db as shared_db
from shared.admin import auth as admin_auth
from shared.billing import alerts
from shared.errors import ApiError
from shared.money import Month
from shared.portal import webhook
from tests.support import admin as admin_support
from tests.support import portal as portal_support
from tests.support.admin import audit_rows, ok
from tests.support.calls import body as chat_body
from tests.support.database import wait_for
from tests.support.fakes.server import free_port
from tests.support.fakes.webhooks import WebhookReceiver, verifies

admin = admin_support.admin  # the fixture

ENCRYPTION_KEYS = "k1:" + base64.b64encode(bytes(range(32))).decode()
OPERATOR_SECRET = "whsec_the_operators_own"
CENT = 10_000_000
MONTH = "2026-02"
WEBHOOK = "customer-webhook"


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver()
    yield server
    server.stop()


@pytest.fixture
def hooks(receiver: WebhookReceiver, admin: httpx.Client, configure) -> WebhookReceiver:
    """The receiver, emptied; secrets can be sealed; no operator webhook unless a test sets one."""
    receiver.reset()
    configure(KAIXU_ENCRYPTION_KEYS=ENCRYPTION_KEYS, ALERT_WEBHOOK_URL="", ALERT_WEBHOOK_SECRET="")
    return receiver


def sign_in(server: str, admin: httpx.Client, email: str, **fields: Any) -> portal_support.Customer:
    return portal_support.sign_in(server, admin, email, **fields)


def set_url(customer: portal_support.Customer, url: str, **extra: Any) -> dict[str, Any]:
    return ok(customer.http.put(WEBHOOK, json={"url": url, **extra}))


def run(coroutine: Any) -> Any:
    """Run library code on a fresh loop, closing that loop's pool afterwards."""

    async def wrapped() -> Any:
        try:
            return await coroutine
        finally:
            await shared_db.close()

    return asyncio.run(wrapped())


def after_call(customer_id: int, key_id: int, spent_cents: float) -> None:
    """What the gateway does after a settled call leaving ``spent_cents`` of a 1000-cent cap."""
    spent = int(spent_cents * CENT)
    run(alerts.check_after_call(customer_id, key_id, Month(MONTH, 1000, spent, None, spent)))


def pending_deliveries(db: Any) -> list[dict[str, Any]]:
    """Deliveries of either audience not yet answered."""
    return db.execute(
        "SELECT id FROM alert_deliveries WHERE status = 'pending'"
        " UNION ALL SELECT id FROM customer_alert_deliveries WHERE status = 'pending'"
    ).fetchall()


def log_of(customer: portal_support.Customer, **query: Any) -> list[dict[str, Any]]:
    return ok(customer.http.get(WEBHOOK, params=query))["deliveries"]


def test_the_secret_is_shown_once_then_only_its_last_four(hooks, server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    assert ok(alice.http.get(WEBHOOK)) == {"item": None, "deliveries": []}
    created = set_url(alice, hooks.url("alice"))
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert created["item"]["url"] == hooks.url("alice") and created["item"]["secret_last4"] == secret[-4:]

    shown = ok(alice.http.get(WEBHOOK))
    assert set(shown["item"]) == {"url", "secret_last4", "created_at", "updated_at"}
    assert secret not in json.dumps(shown) and shown["item"]["secret_last4"] == secret[-4:]
    row = db.execute(
        "SELECT * FROM customer_webhooks WHERE customer_id = %s", (alice.customer_id,)
    ).fetchone()
    assert secret not in str(row) and row["key_id"] == "k1"  # sealed at rest, bound to alice
    assert crypto.open_sealed(row["secret_enc"], alerts.secret_associated_data(alice.customer_id)) == secret

    moved = set_url(alice, hooks.url("alice-new"))  # a new URL keeps the secret
    assert "secret" not in moved and moved["item"]["secret_last4"] == secret[-4:]
    rotated = set_url(alice, hooks.url("alice-new"), rotate_secret=True)
    assert rotated["secret"] != secret and rotated["item"]["secret_last4"] == rotated["secret"][-4:]

    events = audit_rows(db, "customer.webhook_set")
    assert [e["details"] for e in events] == [
        {"replaced": False, "secret_rotated": False},
        {"replaced": True, "secret_rotated": False},
        {"replaced": True, "secret_rotated": True},
    ]
    actor = f"customer:{alice.customer_id}/key:{alice.master_key_id}"
    assert {(e["actor"], e["target"]) for e in events} == {(actor, f"customer:{alice.customer_id}")}
    assert "alice" not in json.dumps([e["details"] for e in events])  # the URL stays the customer's


def test_gateway_calls_crossing_the_cap_alert_the_customer_and_the_operator_each_with_its_own_secret(
    hooks, server, admin, configure, upstreams, db
):
    configure(ALERT_WEBHOOK_URL=hooks.url("operator"), ALERT_WEBHOOK_SECRET=OPERATOR_SECRET)
    alice = sign_in(server, admin, "alice@example.com", monthly_cap_cents=1)
    alice_secret = set_url(alice, hooks.url("alice"))["secret"]
    upstreams.script("openai", input_tokens=40, output_tokens=15_000)  # 90 % of the 1-cent cap a call
    gateway = f"{server}{admin_support.FUNCTIONS}gateway-chat"
    auth = {"authorization": f"Bearer {alice.master_key}"}
    assert httpx.post(gateway, json=chat_body(max_tokens=16_000), headers=auth, timeout=30).status_code == 200
    assert wait_for(lambda: hooks.types("alice") == ["cap_warning"] and hooks.types("operator"))
    httpx.post(
        gateway, json=chat_body(max_tokens=16_000), headers=auth, timeout=30
    )  # past the cap, or refused
    assert wait_for(lambda: len(hooks.got("alice")) == 2 and len(hooks.got("operator")) == 2)
    # A receiver holds the body before its sender has read the answer and marked the row sent.
    assert wait_for(lambda: not pending_deliveries(db))

    assert hooks.types("alice") == hooks.types("operator") == ["cap_warning", "cap_reached"]
    for headers, body in hooks.got("alice"):
        assert verifies(alice_secret, headers, body) and not verifies(OPERATOR_SECRET, headers, body)
        payload = json.loads(body)
        assert (payload["customer_id"], payload["scope"]) == (alice.customer_id, "customer")
    for headers, body in hooks.got("operator"):
        assert verifies(OPERATOR_SECRET, headers, body) and not verifies(alice_secret, headers, body)

    log = log_of(alice)
    assert [(d["alert_type"], d["status"], d["attempts"], d["api_key_id"]) for d in log] == [
        ("cap_reached", "sent", 1, None),
        ("cap_warning", "sent", 1, None),
    ]
    assert all(d["sent_at"] and d["created_at"] and d["month"] for d in log)
    operator_rows = db.execute("SELECT alert_type, status FROM alert_deliveries ORDER BY id").fetchall()
    assert [(r["alert_type"], r["status"]) for r in operator_rows] == [
        ("cap_warning", "sent"),
        ("cap_reached", "sent"),
    ]
    stored = json.dumps(db.execute("SELECT * FROM customer_alert_deliveries").fetchall(), default=str)
    assert OPERATOR_SECRET not in stored and "/operator" not in stored


def test_the_customer_is_alerted_without_an_operator_webhook(hooks, server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    alice_secret = set_url(alice, hooks.url("alice"))["secret"]
    after_call(alice.customer_id, alice.master_key_id, 870)
    after_call(alice.customer_id, alice.master_key_id, 900)  # the warning is once a month
    [(headers, body)] = hooks.got("alice")
    assert verifies(alice_secret, headers, body)
    assert json.loads(body) == {
        "type": "cap_warning",
        "scope": "customer",
        "customer_id": alice.customer_id,
        "api_key_id": None,
        "month": MONTH,
        "cap_cents": 1000,
        "spent_cents": 870,
        "pct": 87.0,
    }
    assert db.execute("SELECT count(*) AS n FROM alert_deliveries").fetchone()["n"] == 0
    assert [(d["alert_type"], d["month"], d["status"]) for d in log_of(alice)] == [
        ("cap_warning", MONTH, "sent")
    ]


def test_a_customer_without_a_webhook_gets_no_rows(hooks, server, admin, configure, db):
    configure(ALERT_WEBHOOK_URL=hooks.url("operator"), ALERT_WEBHOOK_SECRET=OPERATOR_SECRET)
    alice = sign_in(server, admin, "alice@example.com")
    set_url(sign_in(server, admin, "bob@example.com"), hooks.url("bob"))  # someone has one
    after_call(alice.customer_id, alice.master_key_id, 1200)
    assert hooks.types("operator") == ["cap_warning", "cap_reached"] and not hooks.got("bob")
    assert db.execute("SELECT count(*) AS n FROM customer_alert_deliveries").fetchone()["n"] == 0


def test_a_failing_receiver_is_retried_with_backoff(hooks, server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    set_url(alice, hooks.url("alice"))
    hooks.failures_left["alice"] = 1
    after_call(alice.customer_id, alice.master_key_id, 870)
    [pending] = log_of(alice)
    assert (pending["status"], pending["attempts"], pending["last_error"]) == ("pending", 1, "HTTP 500")
    later = db.execute("SELECT next_attempt_at > now() AS later FROM customer_alert_deliveries").fetchone()
    assert later["later"]
    assert run(alerts.deliver_due()) == 0  # not due yet
    db.execute("UPDATE customer_alert_deliveries SET next_attempt_at = now()")
    assert run(alerts.deliver_due()) == 1
    [sent] = log_of(alice)
    assert (sent["id"], sent["status"], sent["attempts"], sent["last_error"]) == (
        pending["id"],
        "sent",
        2,
        None,
    )
    assert sent["sent_at"] is not None and hooks.types("alice") == ["cap_warning"]


def test_an_unreachable_url_is_logged_without_the_url(hooks, server, admin):
    alice = sign_in(server, admin, "alice@example.com")
    set_url(alice, f"http://127.0.0.1:{free_port()}/secret-path-token")
    after_call(alice.customer_id, alice.master_key_id, 870)
    [row] = log_of(alice)
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["last_error"].startswith("ConnectError") and "secret-path-token" not in row["last_error"]


def test_a_name_is_judged_by_the_address_it_resolves_to_each_time_a_delivery_is_sent(
    hooks, server, admin, configure, db
):
    """A name passes when it is set; in production what it resolves to (loopback here, a
    private address in a hostile customer's DNS) is not called, and in development it is,
    at the address judged, with the name kept in the Host header."""
    alice = sign_in(server, admin, "alice@example.com")
    port = urlsplit(hooks.base).port
    set_url(alice, f"http://localhost:{port}/alice")
    configure(KAIXU_ENV="production")
    after_call(alice.customer_id, alice.master_key_id, 870)
    [refused] = log_of(alice)
    assert (refused["status"], refused["last_error"]) == (
        "pending",
        "the webhook's host resolves to 127.0.0.1, which is not a public address: not sent",
    )
    assert hooks.got("alice") == []
    configure(KAIXU_ENV="development")
    db.execute("UPDATE customer_alert_deliveries SET next_attempt_at = now()")
    assert run(alerts.deliver_due()) == 1
    [(headers, _)] = hooks.got("alice")
    assert headers["host"] == f"localhost:{port}"


def test_every_delivery_has_its_own_connection(hooks, server, admin):
    """A connection goes to an address, its TLS checked for one webhook's name: another
    customer's name at the same address must not ride on it."""
    alice = sign_in(server, admin, "alice@example.com")
    set_url(alice, hooks.url("alice"))
    after_call(alice.customer_id, alice.master_key_id, 1000)  # the warning and the cap at once
    assert hooks.types("alice") == ["cap_warning", "cap_reached"]
    first, second = hooks.client_ports["alice"]
    assert first != second


def test_a_test_delivery_is_signed_logged_and_tried_once(hooks, server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    missing = alice.http.post(WEBHOOK, params={"action": "test"})
    assert missing.status_code == 409 and missing.json()["code"] == "WEBHOOK_NOT_SET"
    secret = set_url(alice, hooks.url("alice"))["secret"]
    item = ok(alice.http.post(WEBHOOK, params={"action": "test"}))["item"]
    assert (item["alert_type"], item["status"], item["attempts"], item["api_key_id"]) == (
        "webhook.test",
        "sent",
        1,
        None,
    )
    [(headers, body)] = hooks.got("alice")
    assert verifies(secret, headers, body)
    assert json.loads(body)["type"] == "webhook.test" and json.loads(body)["customer_id"] == alice.customer_id

    hooks.failures_left["alice"] = 5
    failed = ok(alice.http.post(WEBHOOK, params={"action": "test"}))["item"]
    assert (failed["status"], failed["attempts"], failed["last_error"]) == ("failed", 1, "HTTP 500")
    db.execute("UPDATE customer_alert_deliveries SET next_attempt_at = now()")
    assert run(alerts.deliver_due()) == 0  # a test is not retried
    assert [d["id"] for d in log_of(alice)] == [failed["id"], item["id"]]
    assert [d["id"] for d in log_of(alice, limit=1)] == [failed["id"]]
    bad = alice.http.post(WEBHOOK, params={"action": "ping"})
    assert bad.status_code == 400 and bad.json()["field"] == "action"


def test_test_deliveries_are_throttled(hooks, server, admin):
    alice = sign_in(server, admin, "alice@example.com")
    set_url(alice, hooks.url("alice"))
    for _ in range(webhook.TESTS_PER_MINUTE):
        ok(alice.http.post(WEBHOOK, params={"action": "test"}))
    refused = alice.http.post(WEBHOOK, params={"action": "test"})
    assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED"
    assert int(refused.headers["retry-after"]) >= 1
    assert len(hooks.got("alice")) == webhook.TESTS_PER_MINUTE


BAD_URLS = [
    "http://example.com/hook",  # http to a host that is not loopback
    "https://user:pass@example.com/hook",
    "https://token@example.com/hook",
    "not a url",
    "example.com/hook",
    "ftp://example.com/hook",
    "https://",
    "https://example.com/" + "a" * 2000,
    "https://example.com:99999/hook",
    "https://example.com/a b",
    "https://example.com/\x00",
    "https://10.0.0.7/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[fd00::1]/hook",
    "https://0.0.0.0/hook",
    "https://a..b/hook",
    "",
    5,
    None,
]


@pytest.mark.parametrize("url", BAD_URLS, ids=range(len(BAD_URLS)))
def test_bad_urls_are_refused_and_nothing_is_written(hooks, server, admin, db, url):
    alice = sign_in(server, admin, "alice@example.com")
    response = alice.http.put(WEBHOOK, json={"url": url})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_INPUT" and response.json()["field"] == "url"
    assert response.json()["request_id"]
    assert db.execute("SELECT count(*) AS n FROM customer_webhooks").fetchone()["n"] == 0
    assert audit_rows(db, "customer.webhook_set") == []


def test_bad_bodies_are_refused_and_nothing_changes(hooks, server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    set_url(alice, hooks.url("alice"))
    before = db.execute("SELECT * FROM customer_webhooks").fetchall()
    url = "https://hooks.example.com/kaixu"
    refusals = [
        ({"json": {"url": url, "events": ["cap_warning"]}}, "INVALID_INPUT", "events"),
        ({"json": {"url": url, "rotate_secret": "yes"}}, "INVALID_INPUT", "rotate_secret"),
        ({"json": {"rotate_secret": True}}, "INVALID_INPUT", "url"),
        ({"json": [url]}, "INVALID_JSON", None),
        ({"json": url}, "INVALID_JSON", None),
        ({"content": b"{url"}, "INVALID_JSON", None),
        ({"content": b""}, "INVALID_JSON", None),
    ]
    for request, code, field in refusals:
        response = alice.http.put(WEBHOOK, **request)
        assert response.status_code == 400, (request, response.text)
        assert (response.json()["code"], response.json().get("field")) == (code, field)
    for query in ({"limit": 101}, {"limit": 0}, {"limit": "ten"}):
        response = alice.http.get(WEBHOOK, params=query)
        assert response.status_code == 400 and response.json()["field"] == "limit"
    assert db.execute("SELECT * FROM customer_webhooks").fetchall() == before
    assert len(audit_rows(db, "customer.webhook_set")) == 1


def test_loopback_receivers_are_for_development_only(configure):
    for url in ("http://127.0.0.1:9/hook", "https://localhost/hook", "http://[::1]:9/hook"):
        assert webhook.clean_url(url) == url
    configure(KAIXU_ENV="production")
    for url in (
        "http://127.0.0.1:9/hook",
        "https://localhost/hook",
        "https://\u24dbocalhost/hook",  # read as a resolver reads it: localhost
        "https://2130706433/",
        "https://127.1/",
    ):
        with pytest.raises(ApiError) as refused:
            webhook.clean_url(url)
        assert refused.value.extra == {"field": "url"}
    assert webhook.clean_url("https://hooks.example.com/kaixu") == "https://hooks.example.com/kaixu"


def test_without_encryption_keys_nothing_is_stored(hooks, server, admin, configure, db):
    alice = sign_in(server, admin, "alice@example.com")
    configure(KAIXU_ENCRYPTION_KEYS="")
    response = alice.http.put(WEBHOOK, json={"url": "https://hooks.example.com/kaixu"})
    assert response.status_code == 503 and response.json()["code"] == "ENCRYPTION_NOT_CONFIGURED"
    assert db.execute("SELECT count(*) AS n FROM customer_webhooks").fetchone()["n"] == 0


def test_delete_is_idempotent_and_ends_pending_deliveries(hooks, server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    set_url(alice, hooks.url("alice"))
    hooks.failures_left["alice"] = 1
    after_call(alice.customer_id, alice.master_key_id, 870)
    assert ok(alice.http.delete(WEBHOOK)) == {"item": None}
    assert ok(alice.http.delete(WEBHOOK)) == {"item": None}
    shown = ok(alice.http.get(WEBHOOK))
    assert shown["item"] is None
    assert [(d["status"], d["last_error"]) for d in shown["deliveries"]] == [("failed", alerts.NO_WEBHOOK)]
    db.execute("UPDATE customer_alert_deliveries SET next_attempt_at = now()")
    assert run(alerts.deliver_due()) == 0 and hooks.got("alice") == []
    [event] = audit_rows(db, "customer.webhook_delete")
    assert event["actor"] == f"customer:{alice.customer_id}/key:{alice.master_key_id}"
    after_call(alice.customer_id, alice.master_key_id, 1200)  # no webhook now: no new rows
    assert len(log_of(alice)) == 1


def test_customers_only_ever_see_and_change_their_own_webhook(hooks, server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    bob = sign_in(server, admin, "bob@example.com")
    alice_secret = set_url(alice, hooks.url("alice"))["secret"]
    after_call(alice.customer_id, alice.master_key_id, 1200)  # alice: warning and reached
    assert ok(bob.http.get(WEBHOOK)) == {"item": None, "deliveries": []}
    bob_secret = set_url(bob, hooks.url("bob"))["secret"]
    ok(bob.http.post(WEBHOOK, params={"action": "test"}))
    after_call(bob.customer_id, bob.master_key_id, 870)

    bob_view = ok(bob.http.get(WEBHOOK))
    assert bob_view["item"]["url"] == hooks.url("bob") and bob_view["item"]["secret_last4"] == bob_secret[-4:]
    assert [d["alert_type"] for d in bob_view["deliveries"]] == ["cap_warning", "webhook.test"]
    alice_view = ok(alice.http.get(WEBHOOK))
    assert alice_view["item"]["url"] == hooks.url("alice")
    assert [d["alert_type"] for d in alice_view["deliveries"]] == ["cap_reached", "cap_warning"]
    assert not {d["id"] for d in alice_view["deliveries"]} & {d["id"] for d in bob_view["deliveries"]}
    assert hooks.types("alice") == ["cap_warning", "cap_reached"]
    assert hooks.types("bob") == ["webhook.test", "cap_warning"]
    assert all(json.loads(b)["customer_id"] == bob.customer_id for _, b in hooks.got("bob"))
    assert all(verifies(bob_secret, h, b) and not verifies(alice_secret, h, b) for h, b in hooks.got("bob"))

    set_url(bob, hooks.url("bob-new"), rotate_secret=True)
    ok(bob.http.delete(WEBHOOK))
    after = ok(alice.http.get(WEBHOOK))
    assert after["item"] == alice_view["item"] and after["deliveries"] == alice_view["deliveries"]
    rows = db.execute("SELECT customer_id FROM customer_webhooks").fetchall()
    assert rows == [{"customer_id": alice.customer_id}]


def test_customer_sessions_and_admin_credentials_are_not_interchangeable(hooks, server, admin):
    alice = sign_in(server, admin, "alice@example.com")
    for endpoint in ("admin-customers", "admin-keys?customer_id=1", "admin-audit"):
        assert alice.http.get(endpoint).status_code == 401
    assert admin.get(WEBHOOK).status_code == 401  # the admin password header
    admin_token, _ = admin_auth.issue_token()
    for method in ("GET", "PUT", "DELETE", "POST"):
        response = httpx.request(
            method,
            f"{server}{admin_support.FUNCTIONS}{WEBHOOK}",
            json={"url": "https://hooks.example.com/kaixu"},
            headers={"authorization": f"Bearer {admin_token}"},
            timeout=30,
        )
        assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"
    assert ok(alice.http.get(WEBHOOK))["item"] is None
