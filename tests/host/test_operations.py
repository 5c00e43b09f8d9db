"""Operator tooling: the CLI and the maintenance endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from shared import config
from shared.gateway import keys
from tests.support.calls import body
from tests.support.database import hold_stale_reservation
from tests.support.operations import cli


def test_cli_creates_customers_keys_and_topups_that_the_gateway_honours(database_url, client, db, upstreams):
    created = cli(database_url, "create-customer", "ops@example.com", "--cap-cents", "0", "--rpm", "50")
    assert created["key"].startswith("kx_live_") and isinstance(created["customer_id"], int)
    master = {"authorization": f"Bearer {created['key']}"}
    assert client.post("gateway-chat", json=body(), headers=master).status_code == 402

    topup = cli(database_url, "topup", str(created["customer_id"]), "250")
    assert topup["amount_cents"] == 250
    assert client.post("gateway-chat", json=body(), headers=master).status_code == 200

    sub = cli(
        database_url,
        "create-key",
        str(created["customer_id"]),
        "--label",
        "tablet",
        "--rpm",
        "7",
        "--max-devices",
        "2",
        "--require-install-id",
    )
    row = db.execute("SELECT * FROM api_keys WHERE id = %s", (sub["key_id"],)).fetchone()
    assert (row["label"], row["rpm_limit"], row["max_devices"], row["require_install_id"]) == (
        "tablet",
        7,
        2,
        True,
    )
    assert bytes(row["key_hash"]) == keys.hash_key(sub["key"]) and sub["key"] not in json.dumps(str(row))
    audit = {r["action"] for r in db.execute("SELECT action FROM audit_events WHERE actor = 'cli'")}
    assert audit == {"customer.create", "topup.create", "key.create"}

    duplicate = subprocess.run(
        [sys.executable, "-m", "shared.cli", "create-customer", "OPS@example.com"],
        env={**os.environ, "DATABASE_URL": database_url},
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert duplicate.returncode == 1 and "DUPLICATE_EMAIL" in duplicate.stderr


def test_maintenance_needs_its_secret_and_releases_stale_reservations_billing_their_prompt(
    client, db, make_key, configure
):
    assert client.post("maintenance").status_code == 503
    configure(KAIXU_MAINTENANCE_SECRET="m-secret")
    assert client.post("maintenance", headers={"x-kaixu-maintenance-secret": "nope"}).status_code == 401
    hold_stale_reservation(db, make_key())
    assert db.execute("SELECT reserved_nanos FROM monthly_usage").fetchone()["reserved_nanos"] == 4_999_800
    response = client.post("maintenance", headers={"x-kaixu-maintenance-secret": "m-secret"})
    assert response.status_code == 200 and response.json()["item"]["released_reservations"] == 1
    rollup = db.execute("SELECT reserved_nanos, spent_nanos, input_tokens FROM monthly_usage").fetchone()
    assert rollup == {"reserved_nanos": 0, "spent_nanos": 6000, "input_tokens": 40}
    event = db.execute("SELECT outcome, cost_nanos, input_tokens, estimated FROM usage_events").fetchone()
    # The provider read the prompt before the process died: it bills it, so we do.
    assert event == {"outcome": "abandoned", "cost_nanos": 6000, "input_tokens": 40, "estimated": True}


def test_a_call_that_outlives_the_reaper_is_still_billed_once(
    server, client, db, make_key, upstreams, configure
):
    """The reaper releases a reservation it thinks is dead; the stream then ends for real:
    its settlement replaces the 'abandoned' record, so one event, billed for what it used."""
    import threading

    import httpx

    configure(KAIXU_MAINTENANCE_SECRET="m-secret")
    key = make_key()
    upstreams.script("openai", deltas=[f"w{i} " for i in range(8)], chunk_delay_s=0.15, output_tokens=8)
    result: dict = {}

    def stream() -> None:
        with httpx.Client(timeout=30) as http:
            result["text"] = http.post(
                f"{server}/.netlify/functions/gateway-stream", json=body(), headers=key.auth
            ).text

    runner = threading.Thread(target=stream)
    runner.start()
    assert upstreams.wait_for(lambda: upstreams.streams_opened == 1, timeout=5)
    db.execute("UPDATE reservations SET created_at = now() - interval '1 hour'")
    released = client.post("maintenance", headers={"x-kaixu-maintenance-secret": "m-secret"}).json()
    assert released["item"]["released_reservations"] == 1
    assert db.execute("SELECT outcome FROM usage_events").fetchone()["outcome"] == "abandoned"
    runner.join(30)
    assert "event: done" in result["text"]
    events = db.execute("SELECT outcome, cost_nanos, output_tokens FROM usage_events").fetchall()
    assert len(events) == 1 and events[0]["outcome"] == "ok" and events[0]["output_tokens"] == 8
    rollup = db.execute("SELECT calls, spent_nanos, reserved_nanos FROM monthly_usage").fetchone()
    assert rollup == {"calls": 1, "spent_nanos": events[0]["cost_nanos"], "reserved_nanos": 0}
