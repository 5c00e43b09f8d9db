"""Staged parts are bounded whether or not the customer has a push cap: per push and per
customer (a file's whole size is reserved at its first part), open jobs per push, and an
absolute time to live counted from the push's creation that new parts do not renew. A push
cannot be finished after that window, and a deploy that became ready is always billed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support import kaixupush as kaixupush_support
from tests.support.kaixupush import PushEnv, ok, random_bytes, sha1

netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture


def _staged(push_env: PushEnv) -> int:
    return push_env.db.execute("SELECT coalesce(sum(size), 0)::bigint AS n FROM push_parts").fetchone()["n"]


def _count(push_env: PushEnv, table: str) -> int:
    return push_env.db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"]


def _age(push_env: PushEnv, push_id: str, hours: float) -> None:
    """As if the push had been created ``hours`` ago (its jobs and parts too)."""
    push_env.db.execute(
        "UPDATE push_pushes SET created_at = now() - make_interval(secs => %s) WHERE push_id = %s",
        (hours * 3600, push_id),
    )


# ----------------------------------------------------------------------------- quotas


def test_a_push_stages_at_most_its_quota_without_a_cap(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000", KAIXUPUSH_PUSH_STAGING_MAX_BYTES="5000")
    a, b = random_bytes(3000, seed=51), random_bytes(2500, seed=52)
    push_id = ok(push_env.init({"/a.bin": a, "/b.bin": b}), 201)["push_id"]
    ok(push_env.chunk(push_id, sha1(a), 0, 3, a[:1000]))  # reserves a's 3000 bytes
    refused = push_env.chunk(push_id, sha1(b), 0, 3, b[:1000])  # 3000 more would pass 5000
    assert refused.status_code == 429 and refused.json()["code"] == "STAGING_QUOTA", refused.text
    assert refused.json()["scope"] == "push" and refused.json()["limit_bytes"] == 5000
    assert int(refused.headers["retry-after"]) >= 1
    assert _staged(push_env) == 1000 and _count(push_env, "push_jobs") == 1  # nothing written
    too_big = push_env.chunk(push_id, sha1(b), 0, 6, b[:1000])  # 6000 bytes can never fit
    assert too_big.status_code == 413 and too_big.json()["code"] == "FILE_TOO_LARGE"
    ok(push_env.chunk(push_id, sha1(a), 1, 3, a[1000:2000]))
    ok(push_env.chunk(push_id, sha1(a), 2, 3, a[2000:]))
    assert ok(push_env.finish_parts(push_id, a, 3))["status"] == "done"  # a's reservation is freed
    assert push_env.send_parts(push_id, b, 1000) == 3
    assert ok(push_env.finish_parts(push_id, b, 3))["status"] == "done"


def test_a_customer_stages_at_most_its_quota_across_pushes(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000", KAIXUPUSH_CUSTOMER_STAGING_MAX_BYTES="4000")
    a, b = random_bytes(3000, seed=53), random_bytes(2000, seed=54)
    first = ok(push_env.init({"/a.bin": a}), 201)["push_id"]
    second = ok(push_env.init({"/b.bin": b}), 201)["push_id"]
    ok(push_env.chunk(first, sha1(a), 0, 3, a[:1000]))
    refused = push_env.chunk(second, sha1(b), 0, 2, b[:1000])
    assert refused.status_code == 429 and refused.json()["code"] == "STAGING_QUOTA", refused.text
    assert refused.json()["scope"] == "customer" and refused.json()["limit_bytes"] == 4000
    assert _staged(push_env) == 1000 and _count(push_env, "push_jobs") == 1
    assert ok(push_env.finish_parts(first, a, push_env.send_parts(first, a, 1000)))["status"] == "done"
    assert push_env.send_parts(second, b, 1000) == 2  # the first file no longer holds the quota


def test_a_push_has_a_bounded_number_of_open_jobs(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000", KAIXUPUSH_OPEN_JOBS_PER_PUSH="2")
    files = {f"/{name}.bin": random_bytes(1500, seed=60 + i) for i, name in enumerate("abc")}
    push_id = ok(push_env.init(files), 201)["push_id"]
    a, b, c = files.values()
    ok(push_env.chunk(push_id, sha1(a), 0, 2, a[:1000]))
    ok(push_env.chunk(push_id, sha1(b), 0, 2, b[:1000]))
    refused = push_env.chunk(push_id, sha1(c), 0, 2, c[:1000])
    assert refused.status_code == 429 and refused.json()["code"] == "PUSH_JOBS_LIMIT", refused.text
    assert refused.json()["limit"] == 2 and _count(push_env, "push_jobs") == 2
    ok(push_env.chunk(push_id, sha1(a), 1, 2, a[1000:]))  # an open job still takes its parts
    assert ok(push_env.finish_parts(push_id, a, 2))["status"] == "done"
    ok(push_env.chunk(push_id, sha1(c), 0, 2, c[:1000]))  # a finished job no longer counts


# ----------------------------------------------------------------------------- time to live


def test_staged_parts_expire_from_the_push_creation_however_recent_the_last_part(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(2500, seed=55)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    ok(push_env.chunk(push_id, sha1(data), 0, 3, data[:1000]))
    ok(push_env.chunk(push_id, sha1(data), 1, 3, data[1000:2000]))  # parts keep coming...
    _age(push_env, push_id, 49)  # ...but the push was created 49 hours ago
    assert ok(push_env.worker())["item"]["kaixupush_expired_jobs"] == 1
    assert _count(push_env, "push_parts") == 0
    late = push_env.chunk(push_id, sha1(data), 2, 3, data[2000:])
    assert late.status_code == 409 and late.json()["code"] == "PUSH_EXPIRED", late.text
    assert _count(push_env, "push_parts") == 0


def test_a_job_queued_in_time_is_not_delivered_after_the_window(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000", KAIXUPUSH_INLINE_S="0", NETLIFY_MAX_ATTEMPTS="1")
    data = random_bytes(1500, seed=56)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    parts = push_env.send_parts(push_id, data, 1000)
    push_env.netlify.fail("upload", 503)  # the inline attempt fails: the job waits for a worker
    assert push_env.finish_parts(push_id, data, parts).status_code == 202
    _age(push_env, push_id, 49)
    push_env.db.execute("UPDATE push_jobs SET next_attempt_at = now()")
    assert ok(push_env.worker())["item"]["kaixupush_jobs_failed"] == 1
    job = push_env.db.execute("SELECT status, last_error FROM push_jobs").fetchone()
    assert job["status"] in ("failed", "expired") and "expired" in job["last_error"]
    assert push_env.netlify.count("upload", 200) == 0


# ----------------------------------------------------------------------------- the deploy fee


def test_a_push_cannot_be_finished_after_its_upload_window(push_env: PushEnv) -> None:
    files = {"/a.html": b"a", "/b.html": b"b"}
    push_id = ok(push_env.init(files), 201)["push_id"]
    ok(push_env.upload(push_id, "/a.html", b"a"))
    _age(push_env, push_id, 49)
    late = push_env.upload(push_id, "/b.html", b"b")
    assert late.status_code == 409 and late.json()["code"] == "PUSH_EXPIRED", late.text
    assert push_env.netlify.count("upload", 200) == 1
    deploy = next(iter(push_env.netlify.deploys.values()))
    assert deploy.state == "uploading"  # Netlify never got every file: nothing was published
    ok(push_env.worker())
    kinds = [r["kind"] for r in push_env.db.execute("SELECT kind FROM push_usage_events").fetchall()]
    assert "deploy_ready" not in kinds


def test_a_deploy_that_became_ready_after_the_window_is_still_billed(push_env: PushEnv) -> None:
    push_id = ok(push_env.init({"/a.html": b"a"}), 201)["push_id"]
    ok(push_env.upload(push_id, "/a.html", b"a"))  # the last file, in time
    _age(push_env, push_id, 49)  # nobody asked for its state until the window had passed
    push_env.db.execute("UPDATE push_pushes SET updated_at = now() - interval '1 minute'")
    assert ok(push_env.worker())["item"]["kaixupush_finalized_pushes"] == 1
    kinds = [r["kind"] for r in push_env.db.execute("SELECT kind FROM push_usage_events ORDER BY id")]
    assert kinds == ["deploy_init", "file_upload", "deploy_ready"]
    invoice = push_env.db.execute("SELECT deploys, total_cents FROM push_invoices").fetchone()
    assert invoice["deploys"] == 1 and invoice["total_cents"] == 10


def test_an_abandoned_push_ends_expired_and_stops_counting(push_env: PushEnv) -> None:
    push_id = ok(push_env.init({"/a.html": b"a"}), 201)["push_id"]
    _age(push_env, push_id, 48 + 25)  # past the window and the day given to finish deploys
    item = ok(push_env.worker())["item"]
    assert item["kaixupush_expired_pushes"] == 1
    row = push_env.db.execute("SELECT state, finished_at, error FROM push_pushes").fetchone()
    assert row["state"] == "expired" and row["finished_at"] is not None and "expired" in row["error"]
    billing = ok(push_env.call("GET", "kaixupush-billing"))["item"]
    assert billing["deploys_in_flight"] == 0 and billing["deploys_ready"] == 0
