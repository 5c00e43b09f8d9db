"""KaixuPush billing: invoices are the formula over the recorded events; the push cap holds."""

from __future__ import annotations

import threading
from typing import Any

import httpx

from shared.admin.policy import MAX_CAP_CENTS
from shared.kaixupush import billing
from tests.support import admin as admin_support
from tests.support import kaixupush as kaixupush_support
from tests.support.kaixupush import PushEnv, ok, random_bytes, sha1

admin = admin_support.admin  # fixture
netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture

NANOS_PER_CENT = 10_000_000
GIB = 1 << 30


def _expected_nanos(events: list[dict[str, Any]], per_deploy_cents: int = 10, per_gib_cents: int = 25) -> int:
    """The published formula, written out independently of the code under test."""
    ready = sum(e["kind"] == "deploy_ready" for e in events)
    uploaded = sum(e["bytes"] for e in events if e["kind"] == "file_upload")
    transfer = uploaded * per_gib_cents * NANOS_PER_CENT / GIB
    return ready * per_deploy_cents * NANOS_PER_CENT + int(transfer + 0.5)


def _deploy(push_env: PushEnv, files: dict[str, bytes]) -> dict[str, Any]:
    init = ok(push_env.init(files), 201)
    for path, data in files.items():
        if sha1(data) not in init["required"]:
            continue
        response = push_env.upload(init["push_id"], path, data)
        assert response.status_code == 200, response.text
    return ok(push_env.complete(init["push_id"]))


def _set_cap(admin: httpx.Client, customer_id: int, cap: int | None, **extra: Any) -> httpx.Response:
    body = {"customer_id": customer_id, "monthly_cap_cents": cap, **extra}
    return admin.post("admin-kaixupush-invoices", params={"action": "set_cap"}, json=body)


def test_charges_are_exact_in_nanos() -> None:
    plan = billing.Pricing(1, "usd", 0, 10, 25, None)
    assert billing.charges(plan, 0, GIB)["total_nanos"] == 25 * NANOS_PER_CENT
    assert billing.charges(plan, 3, 0)["total_cents"] == 30
    # 1 MiB costs 25/1024 cents = 244140.625 nanos: rounded half up once, at the nano
    assert billing.charges(plan, 0, 1 << 20)["transfer_cost_nanos"] == 244141
    assert billing.charges(plan, 0, 1 << 20)["total_cents"] == 0
    assert billing.charges(plan, 0, 21474837)["total_cents"] == 1  # 0.5 cents rounds up


def test_push_invoices_equal_the_formula_over_the_events(push_env: PushEnv, admin: httpx.Client) -> None:
    _deploy(push_env, {"/a.bin": random_bytes(300_000, seed=1), "/b.html": b"b"})
    _deploy(push_env, {"/a.bin": random_bytes(300_000, seed=1), "/c.bin": random_bytes(123_457, seed=2)})
    ok(push_env.init({"/never.html": b"n"}), 201)  # initiated, never finished: not charged
    events = push_env.db.execute("SELECT kind, bytes, month FROM push_usage_events").fetchall()
    assert sorted({e["kind"] for e in events}) == ["deploy_init", "deploy_ready", "file_upload"]
    invoice = push_env.db.execute("SELECT * FROM push_invoices").fetchone()
    assert invoice["total_nanos"] == _expected_nanos(events)
    assert invoice["total_cents"] == (invoice["total_nanos"] + NANOS_PER_CENT // 2) // NANOS_PER_CENT == 20
    assert invoice["deploys"] == 2 and invoice["bytes"] == 300_000 + 1 + 123_457
    assert invoice["pricing_version"] == 1 and invoice["month"] == events[0]["month"]
    listed = ok(admin.get("admin-kaixupush-invoices", params={"customer_id": push_env.key.customer_id}))[
        "items"
    ]
    assert len(listed) == 1 and listed[0]["total_cents"] == 20 and listed[0]["bytes"] == invoice["bytes"]
    assert listed[0]["breakdown"]["deploys_init"] == 3 and listed[0]["breakdown"]["deploys_ready"] == 2
    mine = ok(push_env.call("GET", "kaixupush-billing"))["item"]
    assert mine["total_nanos"] == invoice["total_nanos"] and mine["deploys_in_flight"] == 1
    assert mine["projected_total_cents"] == 30  # the open deploy may still be charged
    assert (
        ok(push_env.call("GET", "kaixupush-billing", params={"month": "2020-01"}))["item"]["total_cents"] == 0
    )
    assert push_env.call("GET", "kaixupush-billing", params={"month": "2020-13"}).status_code == 400
    snapshot = ok(
        admin.get("admin-invoices", params={"preview": "1", "customer_id": push_env.key.customer_id})
    )
    assert snapshot["item"]["snapshot"]["push"]["total_cents"] == 20  # joins the customer's invoice


def test_the_push_cap_refuses_a_deploy_that_would_pass_it(push_env: PushEnv, admin: httpx.Client) -> None:
    customer = push_env.key.customer_id
    item = ok(_set_cap(admin, customer, 15))["item"]
    assert (item["customer_id"], item["monthly_cap_cents"], item["pricing_version"]) == (customer, 15, 1)
    _deploy(push_env, {"/a.html": b"a"})  # 10 cents
    refused = push_env.init({"/b.html": b"b"})
    assert refused.status_code == 402 and refused.json()["code"] == "PUSH_CAP_REACHED"
    assert refused.json()["projected_total_cents"] == 20 and refused.json()["monthly_cap_cents"] == 15
    assert push_env.netlify.count("create") == 1
    ok(_set_cap(admin, customer, None))  # no cap
    ok(push_env.init({"/b.html": b"b"}), 201)
    audit = push_env.db.execute(
        "SELECT details FROM audit_events WHERE action = 'push.billing_set' ORDER BY id"
    ).fetchall()
    assert [a["details"]["monthly_cap_cents"] for a in audit] == [15, None]


def test_the_cap_counts_declared_and_uploaded_bytes(push_env: PushEnv, admin: httpx.Client) -> None:
    ok(_set_cap(admin, push_env.key.customer_id, 10))
    too_big = push_env.init({"/a.bin": b"a"}, bytes=50_000)  # 10 cents + the bytes it will upload
    assert too_big.status_code == 402 and too_big.json()["proposed"]["extra_bytes"] == 50_000
    push_id = ok(push_env.init({"/a.bin": b"a" * 5000}), 201)["push_id"]  # exactly the cap
    refused = push_env.upload(push_id, "/a.bin", b"a" * 5000)
    assert refused.status_code == 402 and refused.json()["current"]["deploys_in_flight"] == 1
    assert push_env.netlify.count("upload") == 0


def test_concurrent_inits_cannot_overshoot_the_cap(push_env: PushEnv, admin: httpx.Client) -> None:
    ok(_set_cap(admin, push_env.key.customer_id, 20))
    push_env.netlify.slow("create", 0.1, times=10)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(push_env.init({"/a.html": b"a"}).status_code))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201, 201, 402, 402, 402, 402]


def test_set_cap_validation_and_pricing_versions(push_env: PushEnv, admin: httpx.Client) -> None:
    customer = push_env.key.customer_id
    missing = admin.post(
        "admin-kaixupush-invoices", params={"action": "set_cap"}, json={"customer_id": customer}
    )
    assert missing.status_code == 400 and missing.json()["field"] == "monthly_cap_cents"
    assert _set_cap(admin, customer, -1).status_code == 400
    assert _set_cap(admin, customer, 10, pricing_version=9).json()["field"] == "pricing_version"
    assert _set_cap(admin, 999999, 10).status_code == 404
    for cap in (2**63, MAX_CAP_CENTS + 1):  # beyond bigint was a 500
        too_big = _set_cap(admin, customer, cap)
        assert too_big.status_code == 400 and too_big.json()["field"] == "monthly_cap_cents"
    for version in (0, 2**31, 2**63):  # bounded before any query
        bad = _set_cap(admin, customer, 10, pricing_version=version)
        assert bad.status_code == 400 and bad.json()["field"] == "pricing_version"
    assert ok(_set_cap(admin, customer, MAX_CAP_CENTS))["item"]["monthly_cap_cents"] == MAX_CAP_CENTS
    assert admin.post("admin-kaixupush-invoices", params={"action": "nope"}, json={}).status_code == 400
    _deploy(push_env, {"/a.html": b"a"})
    push_env.db.execute(
        "INSERT INTO push_pricing_versions (version, per_deploy_cents, per_gib_cents) VALUES (2, 50, 0)"
    )
    try:
        ok(_set_cap(admin, customer, None, pricing_version=2))
        invoice = push_env.db.execute("SELECT * FROM push_invoices").fetchone()
        assert (
            invoice["pricing_version"] == 2 and invoice["total_cents"] == 50
        )  # this month follows the change
    finally:  # pricing versions are reference data, kept between tests
        push_env.db.execute("DELETE FROM customer_push_billing WHERE pricing_version = 2")
        push_env.db.execute("DELETE FROM push_invoices WHERE pricing_version = 2")
        push_env.db.execute("DELETE FROM push_pricing_versions WHERE version = 2")
    assert push_env.call("GET", "admin-kaixupush-invoices").status_code == 401


def _billed_bytes(push_env: PushEnv) -> int:
    row = push_env.db.execute(
        "SELECT coalesce(sum(bytes), 0)::bigint AS n FROM push_usage_events WHERE kind = 'file_upload'"
    ).fetchone()
    return row["n"]


def test_a_digest_at_several_paths_is_sent_once_and_billed_as_sent(push_env: PushEnv) -> None:
    data = random_bytes(10_000, seed=7)
    files = {"/a.bin": data, "/copy/a.bin": data, "/b.bin": data}
    init = ok(push_env.init(files), 201)
    assert init["required"] == [sha1(data)]
    ok(push_env.upload(init["push_id"], "/copy/a.bin", data))
    sent = push_env.netlify.uploads()
    assert len(sent) == 1  # Netlify asks per SHA-1: one upload serves every path
    assert _billed_bytes(push_env) == sum(r["bytes"] for r in sent) == len(data)
    assert ok(push_env.complete(init["push_id"]))["state"] == "ready"


def test_a_chunked_digest_at_several_paths_is_sent_once_and_billed_as_sent(
    push_env: PushEnv, configure: Any
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(2500, seed=8)
    init = ok(push_env.init({"/x.bin": data, "/y.bin": data}), 201)
    parts = push_env.send_parts(init["push_id"], data, 1000)
    assert ok(push_env.finish_parts(init["push_id"], data, parts))["status"] == "done"
    sent = push_env.netlify.uploads()
    assert len(sent) == 1 and _billed_bytes(push_env) == sum(r["bytes"] for r in sent) == len(data)
