"""KaixuPush uploads: chunked files, their durable jobs, verification, retries and staging in S3."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from shared.kaixupush import client as kaixupush_client
from tests.support import admin as admin_support
from tests.support import kaixupush as kaixupush_support
from tests.support.fakes.server import free_port
from tests.support.kaixupush import PushEnv, ok, random_bytes, sha1

admin = admin_support.admin  # fixture
netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture

MIB = 1024 * 1024


def _job(push_env: PushEnv, digest: str) -> dict[str, Any]:
    return push_env.db.execute("SELECT * FROM push_jobs WHERE sha1 = %s", (digest,)).fetchone()


def test_a_30_mb_file_in_4_mib_parts_arrives_byte_exact(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES=str(4 * MIB))
    big = random_bytes(30 * 1000 * 1000)
    init = ok(push_env.init({"/video.bin": big, "/index.html": b"hi"}), 201)
    assert init["part_bytes"] == 4 * MIB
    parts = push_env.send_parts(init["push_id"], big, 4 * MIB)
    assert parts == 8
    done = ok(push_env.finish_parts(init["push_id"], big, parts))
    assert done["status"] == "done" and done["bytes"] == len(big)
    assert push_env.netlify.blobs[sha1(big)] == big  # the fake verified the SHA-1 of what it received
    assert (
        push_env.db.execute("SELECT count(*) AS n FROM push_parts").fetchone()["n"] == 0
    )  # parts cleaned up
    ok(push_env.upload(init["push_id"], "/index.html", b"hi"))
    assert ok(push_env.complete(init["push_id"]))["state"] == "ready"


def test_a_part_whose_hash_does_not_match_is_refused_on_arrival(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1024")
    data = random_bytes(2500, seed=1)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    damaged = b"X" + data[1:1024]
    refused = push_env.chunk(push_id, sha1(data), 0, 3, damaged, **{"x-content-sha1": sha1(data[:1024])})
    assert refused.status_code == 400 and refused.json()["code"] == "PART_SHA1_MISMATCH"
    assert push_env.db.execute("SELECT count(*) AS n FROM push_parts").fetchone()["n"] == 0


def test_a_corrupted_file_fails_its_job_then_a_resent_part_repairs_it(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1024")
    data = random_bytes(2500, seed=2)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    digest = sha1(data)
    ok(push_env.chunk(push_id, digest, 0, 3, data[:1024]))
    ok(push_env.chunk(push_id, digest, 1, 3, b"\0" * 1024))  # wrong bytes, no part hash to catch it
    ok(push_env.chunk(push_id, digest, 2, 3, data[2048:]))
    failed = push_env.finish_parts(push_id, data, 3)
    assert failed.status_code == 409 and failed.json()["code"] == "JOB_FAILED"
    assert "sha1 mismatch" in failed.json()["reason"] and failed.json()["reason_code"] == "PARTS_MISMATCH"
    job = _job(push_env, digest)
    assert job["status"] == "failed" and "sha1 mismatch" in job["last_error"]
    assert job["last_error_code"] == "PARTS_MISMATCH"
    assert push_env.netlify.count("upload") == 0  # Netlify never saw the bad file
    ok(push_env.chunk(push_id, digest, 1, 3, data[1024:2048]))  # re-sending a part replaces it
    assert ok(push_env.finish_parts(push_id, data, 3))["status"] == "done"
    assert push_env.netlify.blobs[digest] == data
    assert _job(push_env, digest)["last_error_code"] is None


def test_an_interrupted_upload_resumes_with_the_missing_part(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(3500, seed=3)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    digest = sha1(data)
    for part in (0, 1, 3):
        ok(push_env.chunk(push_id, digest, part, 4, data[part * 1000 : (part + 1) * 1000]))
    missing = push_env.finish_parts(push_id, data, 4)
    assert missing.status_code == 409
    assert missing.json()["code"] == "PARTS_INCOMPLETE" and missing.json()["missing_parts"] == [2]
    status = ok(push_env.call("GET", "kaixupush-file-status", params={"push_id": push_id, "sha1": digest}))[
        "item"
    ]
    assert status["uploaded"] is False
    assert status["job"]["received_parts"] == 3 and status["job"]["staged_bytes"] == 2500
    assert status["job"]["status"] == "receiving"
    ok(push_env.chunk(push_id, digest, 2, 4, data[2000:3000]))
    assert ok(push_env.finish_parts(push_id, data, 4))["status"] == "done"
    status = ok(push_env.call("GET", "kaixupush-file-status", params={"push_id": push_id}))
    assert status["summary"] == {"required": 1, "uploaded": 1, "missing": 0}
    assert ok(push_env.complete(push_id))["state"] == "ready"


def test_part_size_and_numbering_rules(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(2500, seed=4)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    digest = sha1(data)
    short = push_env.chunk(push_id, digest, 0, 3, data[:999])  # not the last part: must be exactly 1000
    assert short.status_code == 409 and short.json()["code"] == "PART_SIZE"
    assert push_env.chunk(push_id, digest, 0, 3, data[:1001]).status_code == 413
    assert push_env.chunk(push_id, digest, 3, 3, data[:10]).status_code == 400  # part out of range
    assert push_env.chunk(push_id, digest, 0, 0, data[:10]).status_code == 400
    assert push_env.chunk(push_id, digest, 0, 10001, data[:1000]).status_code == 400
    ok(push_env.chunk(push_id, digest, 0, 3, data[:1000]))
    other = push_env.chunk(push_id, digest, 1, 4, data[1000:2000])
    assert other.status_code == 409 and other.json()["code"] == "PARTS_MISMATCH"
    empty_last = push_env.chunk(push_id, digest, 2, 3, b"")
    assert empty_last.status_code == 409 and empty_last.json()["code"] == "PART_SIZE"
    unknown = push_env.chunk(push_id, "f" * 40, 0, 3, data[:1000])
    assert unknown.status_code == 409 and unknown.json()["code"] == "SHA1_NOT_IN_MANIFEST"
    no_job = push_env.call(
        "POST", "kaixupush-upload-complete", json={"push_id": push_id, "sha1": "e" * 40, "parts": 1}
    )
    assert no_job.status_code == 404


def test_a_429_storm_is_retried_with_backoff_until_it_succeeds(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000", NETLIFY_MAX_ATTEMPTS="2")
    data = random_bytes(1500, seed=5)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    parts = push_env.send_parts(push_id, data, 1000)
    push_env.netlify.fail("upload", 429, times=3, retry_after="1")
    queued = push_env.finish_parts(
        push_id, data, parts
    )  # two tries inline (one Retry-After wait), then queued
    assert queued.status_code == 202, queued.text
    job = _job(push_env, sha1(data))
    assert job["status"] == "retry_wait" and job["attempts"] == 1 and "429" in job["last_error"]
    assert job["last_error_code"] == "NETLIFY_RATE_LIMITED"
    assert (job["next_attempt_at"] - job["updated_at"]).total_seconds() >= 0.95  # Retry-After honoured
    assert ok(push_env.worker())["item"]["kaixupush_jobs_done"] == 0  # not due yet
    deadline = time.monotonic() + 15
    while _job(push_env, sha1(data))["status"] != "done" and time.monotonic() < deadline:
        time.sleep(0.2)
        ok(push_env.worker())
    job = _job(push_env, sha1(data))
    assert job["status"] == "done" and job["attempts"] == 2
    assert push_env.netlify.count("upload", 429) == 3 and push_env.netlify.blobs[sha1(data)] == data
    retried = [r for r in push_env.netlify.uploads(status=None) if r["retry_count"]]
    assert retried  # in-call retries say so (X-Nf-Retry-Count)


def test_a_permanent_4xx_fails_the_job_with_its_reason(
    push_env: PushEnv, admin: Any, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(1500, seed=6)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    parts = push_env.send_parts(push_id, data, 1000)
    push_env.netlify.fail("upload", 422, message="File type not allowed")
    failed = push_env.finish_parts(push_id, data, parts)
    assert failed.status_code == 409 and failed.json()["code"] == "JOB_FAILED"
    job = _job(push_env, sha1(data))
    assert job["status"] == "failed" and job["attempts"] == 1
    assert job["last_error"] == "Netlify answered 422: File type not allowed"
    assert job["last_error_code"] == failed.json()["reason_code"] == "NETLIFY_REFUSED"
    assert push_env.netlify.count("upload", 422) == 1  # not retried
    listed = ok(admin.get("admin-kaixupush-jobs", params={"customer_id": push_env.key.customer_id}))["items"]
    assert listed[0]["status"] == "failed" and listed[0]["last_error"] == job["last_error"]
    assert listed[0]["last_error_code"] == "NETLIFY_REFUSED"
    assert listed[0]["path"] == "/a.bin" and listed[0]["received"] == 2 and listed[0]["staged_bytes"] == 1500
    assert listed[0]["push_id"] == push_id and listed[0]["project_id"] == "web"
    retried = ok(admin.post("admin-kaixupush-jobs", params={"id": job["id"], "action": "retry"}))["item"]
    assert retried["status"] == "queued"
    assert ok(push_env.worker())["item"]["kaixupush_jobs_done"] == 1
    assert push_env.netlify.blobs[sha1(data)] == data


def _a_job_failing_on_its_retry(
    push_env: PushEnv, configure: Callable[..., Any], data: bytes, retry_status: int
) -> str:
    """A file in parts whose delivery Netlify fails at once (503: the job is queued), then on
    the worker's retry with ``retry_status``, the last attempt allowed: the push's id."""
    configure(
        KAIXUPUSH_PART_BYTES="1000",
        NETLIFY_MAX_ATTEMPTS="1",
        KAIXUPUSH_JOB_MAX_ATTEMPTS="2",
        KAIXUPUSH_JOB_BACKOFF_S="0.01",
    )
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    parts = push_env.send_parts(push_id, data, 1000)
    push_env.netlify.fail("upload", 503)
    push_env.netlify.fail("upload", retry_status, times=10)
    assert push_env.finish_parts(push_id, data, parts).status_code == 202
    time.sleep(0.1)
    assert ok(push_env.worker())["item"]["kaixupush_jobs_failed"] == 1
    return push_id


def test_jobs_give_up_after_the_attempt_cap(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    data = random_bytes(1500, seed=7)
    _a_job_failing_on_its_retry(push_env, configure, data, 503)
    job = _job(push_env, sha1(data))
    assert job["status"] == "failed" and job["attempts"] == 2
    assert job["last_error"].startswith("gave up after 2 attempts: Netlify answered 503")
    assert job["last_error_code"] == "NETLIFY_ERROR"


@pytest.mark.parametrize(
    ("netlify_status", "exit_code"),
    [(401, kaixupush_client.EXIT_NETLIFY), (503, kaixupush_client.EXIT_TRANSIENT)],
)
def test_a_client_waiting_on_a_job_that_fails_later_exits_as_its_cause_says(
    push_env: PushEnv, configure: Callable[..., Any], server: str, netlify_status: int, exit_code: int
) -> None:
    """A file queued for the gateway to retry, whose retry then fails for good: Netlify refusing
    the token exits 4 with what to do, a failure that may pass exits 5."""
    data = random_bytes(1500, seed=9)
    push_id = _a_job_failing_on_its_retry(push_env, configure, data, netlify_status)
    status = ok(push_env.call("GET", "kaixupush-file-status", params={"push_id": push_id}))["items"]
    code = {401: "NETLIFY_TOKEN_REJECTED", 503: "NETLIFY_ERROR"}[netlify_status]
    assert status[0]["job"]["last_error_code"] == code
    gateway = kaixupush_client.Gateway(server, push_env.key.secret)
    report = kaixupush_client.Reporter(io.StringIO(), bar=False)
    local = kaixupush_client.LocalFile("/a.bin", Path("a.bin"), len(data), sha1(data))
    try:
        with pytest.raises(kaixupush_client.PushError) as failed:
            kaixupush_client.Deployer(gateway, report=report, poll_s=0.01)._wait_for_job(push_id, local)
    finally:
        gateway.close()
    assert (failed.value.exit_code, failed.value.code) == (exit_code, code)
    assert ("operator to set a valid Netlify token" in str(failed.value)) == (netlify_status == 401)


def test_concurrent_workers_run_a_job_once(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000", KAIXUPUSH_INLINE_S="0", NETLIFY_MAX_ATTEMPTS="1")
    data = random_bytes(1500, seed=8)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    parts = push_env.send_parts(push_id, data, 1000)
    push_env.netlify.fail("upload", 503)  # the inline attempt fails at once: the job waits for a worker
    assert push_env.finish_parts(push_id, data, parts).status_code == 202
    time.sleep(0.1)
    push_env.netlify.slow("upload", 0.3)  # hold the job while the other workers look for work
    results: list[dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda: results.append(ok(push_env.worker())["item"])) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["kaixupush_jobs_done"] for r in results) == 1
    assert push_env.netlify.count("upload", 200) == 1


def test_stale_parts_expire(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(KAIXUPUSH_PART_BYTES="1000")
    data = random_bytes(1500, seed=9)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    ok(push_env.chunk(push_id, sha1(data), 0, 2, data[:1000]))
    push_env.db.execute("UPDATE push_pushes SET created_at = now() - interval '49 hours'")
    assert ok(push_env.worker())["item"]["kaixupush_expired_jobs"] == 1
    assert _job(push_env, sha1(data))["status"] == "expired"
    assert push_env.db.execute("SELECT count(*) AS n FROM push_parts").fetchone()["n"] == 0
    again = push_env.finish_parts(push_id, data, 2)
    assert again.status_code == 409 and again.json()["code"] == "PUSH_EXPIRED"


def test_the_worker_needs_its_secret(push_env: PushEnv) -> None:
    assert push_env.client.post("kaixupush-worker").status_code == 401
    wrong = push_env.client.post("kaixupush-worker", headers={"x-kaixu-worker-secret": "nope"})
    assert wrong.status_code == 401


# ----------------------------------------------------------------------------- S3 staging


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_parts_staged_in_s3_when_a_bucket_is_set(
    push_env: PushEnv, configure: Callable[..., Any], moto_url: str
) -> None:
    configure(
        KAIXUPUSH_PART_BYTES=str(256 * 1024),
        KAIXUPUSH_S3_BUCKET="kaixu-parts",
        KAIXUPUSH_S3_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    s3 = boto3.client("s3", endpoint_url=moto_url)
    s3.create_bucket(Bucket="kaixu-parts")
    data = random_bytes(700 * 1024, seed=10)
    push_id = ok(push_env.init({"/a.bin": data}), 201)["push_id"]
    digest = sha1(data)
    for part, start in enumerate(range(0, len(data), 256 * 1024)):
        ok(push_env.chunk(push_id, digest, part, 3, data[start : start + 256 * 1024]))
    rows = push_env.db.execute("SELECT storage, data FROM push_parts ORDER BY part").fetchall()
    assert [r["storage"] for r in rows] == ["s3"] * 3 and all(r["data"] is None for r in rows)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="kaixu-parts")["Contents"]]
    assert len(keys) == 3 and all(k.startswith("kaixupush/") for k in keys)
    assert ok(push_env.finish_parts(push_id, data, 3))["status"] == "done"
    assert push_env.netlify.blobs[digest] == data
    assert s3.list_objects_v2(Bucket="kaixu-parts").get("KeyCount") == 0  # deleted after delivery
