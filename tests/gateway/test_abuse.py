"""What strangers can no longer do: grow the database with reports and monitor rows, or make
the gateway read a body for a key that does not exist."""

from __future__ import annotations

import json
import time

import httpx

from shared.gateway import settlements
from tests.support.admin import ADMIN_PASSWORD
from tests.support.calls import body
from tests.support.database import hold_stale_reservation, wait_for
from tests.support.tail import TailReader

FAKE_KEY = {"authorization": "Bearer kx_live_" + "A" * 43}


def _monitor_rows(db) -> list[dict]:
    return db.execute("SELECT function_name, method, status FROM gateway_events ORDER BY id").fetchall()


def test_an_unknown_key_is_refused_before_the_body_is_read(client, db, make_key, upstreams):
    refused = client.post("gateway-chat", content=b"{this is not json", headers=FAKE_KEY)
    assert refused.status_code == 401 and refused.json()["code"] == "INVALID_KEY"
    stream = client.post("gateway-stream", content=b"x" * 900_000, headers=FAKE_KEY)
    assert stream.status_code == 401 and stream.json()["code"] == "INVALID_KEY"
    key = make_key()  # a real key still has its body parsed and validated
    bad = client.post("gateway-chat", content=b"{this is not json", headers=key.auth)
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_JSON"
    assert client.post("gateway-chat", json=body(), headers=key.auth).status_code == 200
    assert db.execute("SELECT count(*) AS n FROM usage_events").fetchone()["n"] == 1


def test_error_reports_share_one_budget_whatever_the_address(client, configure, db):
    configure(CLIENT_ERROR_GLOBAL_PER_MIN="3")
    statuses = [
        client.post(
            "client-error-report", json={"message": f"boom {i}"}, headers={"x-forwarded-for": f"192.0.2.{i}"}
        ).status_code
        for i in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    assert (
        db.execute("SELECT count(*) AS n FROM gateway_events WHERE kind = 'client_error'").fetchone()["n"]
        == 3
    )


def test_an_error_report_is_stored_in_a_few_kb(client, db):
    big = {
        "error": {"message": "m" * 30_000, "stack": "s" * 20_000, "name": "n" * 500},
        "context": {"blob": "c" * 5_000},
    }
    assert client.post("client-error-report", content=json.dumps(big)[:32_000]).status_code == 400
    assert client.post("client-error-report", content=json.dumps(big)).status_code == 413  # over 32 KiB
    report = {"error": {"message": "m" * 10_000, "stack": "s" * 10_000}, "context": {"blob": "c" * 5_000}}
    assert client.post("client-error-report", json=report).status_code == 200
    stored = db.execute(
        "SELECT length(summary) + length(extra::text) AS size FROM gateway_events WHERE kind = 'client_error'"
    ).fetchone()
    assert stored["size"] < 8_000


def test_preflights_and_health_checks_write_no_monitor_row(client, db):
    assert client.get("health").status_code == 200
    preflight = client.options(
        "gateway-chat", headers={"origin": "https://x.example", "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 204
    assert client.get("admin-customers").status_code == 503  # other requests still do (no admin here)
    assert wait_for(lambda: _monitor_rows(db))
    time.sleep(0.2)
    assert _monitor_rows(db) == [{"function_name": "admin-customers", "method": "GET", "status": 503}]


def test_maintenance_prunes_the_monitor_past_its_retention(client, db, configure):
    configure(KAIXU_MAINTENANCE_SECRET="m-secret", MONITOR_RETENTION_DAYS="30")
    db.execute(
        "INSERT INTO gateway_events (level, kind, function_name, status, created_at) VALUES "
        "('info', 'http', 'old', 200, now() - interval '31 days'), ('info', 'http', 'recent', 200, now())"
    )
    run = client.post("maintenance", headers={"x-kaixu-maintenance-secret": "m-secret"})
    assert run.status_code == 200 and run.json()["item"]["pruned_monitor_rows"] == 1
    left = {row["function_name"] for row in _monitor_rows(db)}
    assert "old" not in left and "recent" in left


def test_the_admin_screen_is_served_with_security_headers(server):
    for path in ("/", "/assets/js/main.js"):
        response = httpx.get(server + path)
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_the_live_tail_ends_with_the_admin_session(server, configure):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, STREAM_PING_S="0.2", ADMIN_TOKEN_TTL_S="2")
    token = httpx.post(f"{server}/.netlify/functions/admin-login", json={"password": ADMIN_PASSWORD}).json()[
        "token"
    ]
    reader = TailReader(server, headers={"authorization": f"Bearer {token}"})
    try:
        assert wait_for(lambda: reader.frames and reader.frames[0][0] == "hello", timeout=5)
        assert wait_for(lambda: reader.done, timeout=8), "the tail outlived the session"
        assert reader.frames[-1] == (
            "error",
            {"error": "Your admin session ended; log in again.", "code": "SESSION_EXPIRED"},
        )
    finally:
        reader.close()


def test_a_settlement_naming_another_customers_reservation_releases_nothing(db, make_key):
    victim, other = make_key(), make_key()
    hold_stale_reservation(db, victim)
    reservation = db.execute("SELECT id, month FROM reservations").fetchone()
    db.execute(
        settlements.SETTLE,
        {
            "reservation_id": reservation["id"],
            "customer_id": other.customer_id,
            "api_key_id": other.key_id,
            "month": reservation["month"],
            "provider": "openai",
            "model": "gpt-4o-mini",
            "install_id": None,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_nanos": 0,
            "sell_nanos": 0,
            "price_version_id": None,
            "sell_version_id": None,
            "outcome": "ok",
            "estimated": False,
            "request_id": "forged",
            "function": "gateway-chat",
            "app": None,
            "build": None,
            "status": 200,
            "duration_ms": 1.0,
            "summary": None,
            "user_agent": None,
            "clamped_to": None,
            "stopped_code": None,
        },
    )
    held = db.execute(
        "SELECT reserved_nanos FROM monthly_usage WHERE customer_id = %s", (victim.customer_id,)
    )
    assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 1
    assert held.fetchone()["reserved_nanos"] == 4_999_800  # the victim's hold is still there
