"""The operator's KaixuPush views through HTTP: what a chunk job received once its parts are
gone, retrying a failed job from the screen, and the customer's push cap and pricing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support import admin as admin_support
from tests.support import kaixupush as kaixupush_support
from tests.support.kaixupush import PushEnv, ok, random_bytes, sha1

admin = admin_support.admin  # fixture
netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture

BEYOND_BIGINT = str(2**63)


def _jobs(admin: httpx.Client, customer_id: int) -> dict[str, dict[str, Any]]:
    items = ok(admin.get("admin-kaixupush-jobs", params={"customer_id": customer_id}))["items"]
    return {item["path"]: item for item in items}


def _staged(push_env: PushEnv) -> int:
    return push_env.db.execute("SELECT count(*) AS n FROM push_parts").fetchone()["n"]


def _audits(push_env: PushEnv, action: str) -> int:
    row = push_env.db.execute("SELECT count(*) AS n FROM audit_events WHERE action = %s", (action,))
    return row.fetchone()["n"]


def _failed_job(push_env: PushEnv, configure: Callable[..., Any]) -> tuple[dict[str, Any], bytes]:
    """A two-part file whose delivery Netlify refused for good."""
    configure(KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(1500, seed=31)
    push_id = ok(push_env.init({"/refused.bin": data}), 201)["push_id"]
    parts = push_env.send_parts(push_id, data, 1000)
    push_env.netlify.fail("upload", 422, message="File type not allowed")
    assert push_env.finish_parts(push_id, data, parts).status_code == 409
    job = push_env.db.execute("SELECT * FROM push_jobs WHERE sha1 = %s", (sha1(data),)).fetchone()
    assert job["status"] == "failed"
    return job, data


def test_a_finished_job_keeps_what_it_received(
    push_env: PushEnv, admin: httpx.Client, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000")
    done, pending = random_bytes(2500, seed=21), random_bytes(2200, seed=22)
    push_id = ok(push_env.init({"/done.bin": done, "/pending.bin": pending}), 201)["push_id"]
    parts = push_env.send_parts(push_id, done, 1000)
    ok(push_env.chunk(push_id, sha1(done), 1, parts, done[1000:2000]))  # a part sent twice counts once
    assert ok(push_env.finish_parts(push_id, done, parts))["bytes"] == 2500
    ok(push_env.chunk(push_id, sha1(pending), 0, 3, pending[:1000]))
    ok(push_env.chunk(push_id, sha1(pending), 2, 3, pending[2000:]))
    assert _staged(push_env) == 2  # the delivered file's parts are gone

    listed = _jobs(admin, push_env.key.customer_id)
    finished = listed["/done.bin"]
    assert finished["status"] == "done" and finished["parts"] == 3
    assert (finished["received"], finished["staged_bytes"], finished["parts_staged"]) == (3, 2500, False)
    assert finished["project_name"] == "Website"
    receiving = listed["/pending.bin"]
    assert (receiving["received"], receiving["staged_bytes"], receiving["parts_staged"]) == (2, 1200, True)
    one = ok(admin.get("admin-kaixupush-jobs", params={"id": finished["id"]}))["item"]
    assert (one["received"], one["staged_bytes"]) == (3, 2500)


def test_an_expired_job_keeps_what_it_received(
    push_env: PushEnv, admin: httpx.Client, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(1500, seed=23)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    ok(push_env.chunk(push_id, sha1(data), 0, 2, data[:1000]))
    push_env.db.execute("UPDATE push_pushes SET created_at = now() - interval '49 hours'")
    assert ok(push_env.worker())["item"]["kaixupush_expired_jobs"] == 1
    assert _staged(push_env) == 0
    job = _jobs(admin, push_env.key.customer_id)["/a.bin"]
    assert (job["status"], job["received"], job["staged_bytes"]) == ("expired", 1, 1000)


def test_a_failed_file_sent_again_in_other_parts_starts_over(
    push_env: PushEnv, admin: httpx.Client, configure: Callable[..., Any]
) -> None:
    job, data = _failed_job(push_env, configure)
    push_id = push_env.db.execute("SELECT push_id FROM push_pushes").fetchone()["push_id"]
    ok(push_env.chunk(push_id, sha1(data), 0, 3, data[:1000]))  # the two old parts are void
    again = _jobs(admin, push_env.key.customer_id)["/refused.bin"]
    assert (again["status"], again["parts"], again["received"], again["staged_bytes"]) == (
        "receiving",
        3,
        1,
        1000,
    )
    kept = push_env.db.execute("SELECT * FROM push_jobs WHERE id = %s", (job["id"],)).fetchone()
    assert (kept["received_parts"], kept["staged_bytes"]) == (1, 1000)


def test_a_failed_job_is_retried_only_as_asked(
    push_env: PushEnv, admin: httpx.Client, configure: Callable[..., Any]
) -> None:
    job, data = _failed_job(push_env, configure)
    other = push_env.make_key(role="deployer")
    retry = {"id": job["id"], "action": "retry", "customer_id": push_env.key.customer_id}
    for bad, field in (
        ({**retry, "id": "x"}, "id"),
        ({**retry, "id": "0"}, "id"),
        ({**retry, "customer_id": "-1"}, "customer_id"),
        ({**retry, "customer_id": "abc"}, "customer_id"),
        ({**retry, "action": "redo"}, "action"),
        ({"id": job["id"]}, "action"),
        ({"action": "retry"}, "id"),
        ({**retry, "id": BEYOND_BIGINT}, "id"),
        ({**retry, "customer_id": BEYOND_BIGINT}, "customer_id"),
    ):
        refused = admin.post("admin-kaixupush-jobs", params=bad)
        assert refused.status_code == 400 and refused.json()["field"] == field, (bad, refused.text)
    for missing in (
        {**retry, "customer_id": other.customer_id},  # another customer's job
        {**retry, "id": job["id"] + 1000},
    ):
        assert admin.post("admin-kaixupush-jobs", params=missing).status_code == 404, missing
    after = push_env.db.execute(
        "SELECT status, attempts FROM push_jobs WHERE id = %s", (job["id"],)
    ).fetchone()
    assert (after["status"], after["attempts"]) == ("failed", 1)  # nothing written
    assert _audits(push_env, "push.job_retry") == 0

    retried = ok(admin.post("admin-kaixupush-jobs", params=retry))["item"]
    assert retried["status"] == "queued" and retried["attempts"] == 0 and retried["received"] == 2
    assert _audits(push_env, "push.job_retry") == 1
    again = admin.post("admin-kaixupush-jobs", params=retry)  # no longer failed
    assert again.status_code == 409 and again.json()["code"] == "NOT_RETRYABLE"
    assert ok(push_env.worker())["item"]["kaixupush_jobs_done"] == 1
    assert push_env.netlify.blobs[sha1(data)] == data
    done = _jobs(admin, push_env.key.customer_id)["/refused.bin"]
    assert (done["status"], done["received"], done["staged_bytes"], done["parts_staged"]) == (
        "done",
        2,
        1500,
        False,
    )
    assert push_env.call("POST", "admin-kaixupush-jobs", params=retry).status_code == 401


def test_the_billing_view_shows_the_cap_and_pricing_in_force(push_env: PushEnv, admin: httpx.Client) -> None:
    customer = push_env.key.customer_id
    view = {"view": "billing", "customer_id": customer}
    fresh = ok(admin.get("admin-kaixupush-invoices", params=view))
    assert fresh["item"] == {
        "customer_id": customer,
        "monthly_cap_cents": None,
        "pricing_version": 1,
        "pricing": {
            "version": 1,
            "currency": "usd",
            "base_month_cents": 0,
            "per_deploy_cents": 10,
            "per_gib_cents": 25,
        },
        "updated_at": None,
    }
    assert [v["version"] for v in fresh["pricing_versions"]] == [1]

    ok(
        admin.post(
            "admin-kaixupush-invoices",
            params={"action": "set_cap"},
            json={"customer_id": customer, "monthly_cap_cents": 700},
        )
    )
    saved = ok(admin.get("admin-kaixupush-invoices", params=view))["item"]
    assert saved["monthly_cap_cents"] == 700 and saved["pricing_version"] == 1 and saved["updated_at"]

    for bad, field in (
        ({"view": "billing"}, "customer_id"),
        ({"view": "billing", "customer_id": "x"}, "customer_id"),
        ({"view": "cap", "customer_id": customer}, "view"),
        ({"view": "billing", "customer_id": BEYOND_BIGINT}, "customer_id"),
    ):
        refused = admin.get("admin-kaixupush-invoices", params=bad)
        assert refused.status_code == 400 and refused.json()["field"] == field, (bad, refused.text)
    unknown = admin.get("admin-kaixupush-invoices", params={"view": "billing", "customer_id": 999999})
    assert unknown.status_code == 404
    assert push_env.db.execute("SELECT count(*) AS n FROM customer_push_billing").fetchone()["n"] == 1
    listed = ok(admin.get("admin-kaixupush-invoices", params={"customer_id": customer}))
    assert "items" in listed  # without view, still the invoice list
    assert push_env.call("GET", "admin-kaixupush-invoices", params=view).status_code == 401


def test_deploy_history_filters(push_env: PushEnv, admin: httpx.Client) -> None:
    customer = push_env.key.customer_id
    push_id = ok(push_env.init({"/index.html": b"<h1>hi</h1>"}), 201)["push_id"]
    history = ok(admin.get("admin-kaixupush-deploys", params={"customer_id": customer, "project_id": "web"}))
    assert [item["push_id"] for item in history["items"]] == [push_id]
    state = history["items"][0]["state"]
    same = ok(admin.get("admin-kaixupush-deploys", params={"customer_id": customer, "state": state}))
    assert [item["push_id"] for item in same["items"]] == [push_id]
    assert (
        ok(admin.get("admin-kaixupush-deploys", params={"customer_id": customer, "state": "error"}))["items"]
        == []
    )
    bad = admin.get("admin-kaixupush-deploys", params={"customer_id": customer, "project_id": "no spaces"})
    assert bad.status_code == 400 and bad.json()["field"] == "project_id"
