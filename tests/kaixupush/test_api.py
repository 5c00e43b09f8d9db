"""KaixuPush through HTTP: key roles, projects, manifest validation, deploy limits, status."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from shared.kaixupush import paths
from shared.kaixupush.manifest import MAX_FILES
from tests.support import admin as admin_support
from tests.support import kaixupush as kaixupush_support
from tests.support.database import wait_for
from tests.support.kaixupush import PROJECT, SITE, PushEnv, ok, sha1

admin = admin_support.admin  # fixture
netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture
own_token = kaixupush_support.own_token  # fixture

SHA = "a" * 40


# ----------------------------------------------------------------------------- path rules (unit)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("index.html", "/index.html"),
        ("/a//b.html", "/a/b.html"),
        ("a\\b\\c.css", "/a/b/c.css"),
        ("//deep///x y.txt", "/deep/x y.txt"),
        (".well-known/security.txt", "/.well-known/security.txt"),
    ],
)
def test_paths_are_normalised(raw: str, expected: str) -> None:
    assert paths.normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "a#b",
        "a?b",
        "dir/",
        "/a/../b",
        "./a",
        "a/./b",
        "a\x00b",
        "a\x1fb",
        "a\x7fb",
        "a<b",
        "a>b",
        "a:b",
        'a"b',
        "a|b",
        "a*b",
        "/" + "x" * 1024,
        7,
        None,
    ],
)
def test_bad_paths_are_refused(raw: Any) -> None:
    with pytest.raises(Exception) as caught:
        paths.normalize(raw)
    assert caught.value.status == 400 and caught.value.code == "BAD_PATH"


def test_upload_urls_encode_each_segment() -> None:
    assert paths.url_path("/a b/c%d/é.html") == "a%20b/c%25d/%C3%A9.html"


# ----------------------------------------------------------------------------- keys and roles


def test_roles_missing_revoked_and_disabled(push_env: PushEnv) -> None:
    assert push_env.client.get("kaixupush-projects").status_code == 401
    bad = push_env.client.get("kaixupush-projects", headers={"authorization": "Bearer kx_live_nope"})
    assert bad.status_code == 401 and bad.json()["code"] == "INVALID_KEY"
    viewer = push_env.make_key(customer_id=push_env.key.customer_id, role="viewer")
    refused = push_env.init({"/a.html": b"a"}, key=viewer)
    assert refused.status_code == 403
    assert refused.json()["code"] == "FORBIDDEN"
    assert refused.json()["required_role"] == "deployer" and refused.json()["role"] == "viewer"
    assert ok(push_env.call("GET", "kaixupush-projects", viewer))["items"][0]["project_id"] == PROJECT
    upsert = push_env.call(
        "POST", "kaixupush-projects", json={"project_id": "x", "name": "X", "netlify_site_id": SITE}
    )
    assert upsert.status_code == 403 and upsert.json()["required_role"] == "admin"  # a deployer key
    revoked = push_env.make_key(customer_id=push_env.key.customer_id, revoked_at="2026-01-01T00:00:00Z")
    assert push_env.init({"/a.html": b"a"}, key=revoked).json()["code"] == "KEY_REVOKED"
    push_env.db.execute("UPDATE customers SET is_active = false WHERE id = %s", (push_env.key.customer_id,))
    disabled = push_env.init({"/a.html": b"a"})
    assert disabled.status_code == 403 and disabled.json()["code"] == "CUSTOMER_DISABLED"
    assert push_env.netlify.count("create") == 0


def test_customers_see_only_their_own_pushes(push_env: PushEnv) -> None:
    push_id = ok(push_env.init({"/a.html": b"a"}), 201)["push_id"]
    stranger = push_env.make_key(role="owner")
    for fn in ("kaixupush-status", "kaixupush-file-status"):
        assert push_env.call("GET", fn, stranger, params={"push_id": push_id}).status_code == 404
    assert push_env.call("POST", "kaixupush-complete", stranger, json={"push_id": push_id}).status_code == 404
    upload = push_env.call(
        "PUT",
        "kaixupush-upload",
        stranger,
        params={"push_id": push_id, "path": "/a.html"},
        content=b"a",
        headers={"x-content-sha1": sha1(b"a")},
    )
    assert upload.status_code == 404


# ----------------------------------------------------------------------------- projects


def test_project_registry_for_keys_and_admins(
    push_env: PushEnv, admin: httpx.Client, own_token: Callable[[int, str], None]
) -> None:
    own_token(push_env.key.customer_id, "nf-own")  # a key may choose sites only with one
    owner = push_env.make_key(customer_id=push_env.key.customer_id, role="admin")
    body = {"project_id": "docs", "name": "Docs", "netlify_site_id": "site-docs"}
    created = ok(push_env.call("POST", "kaixupush-projects", owner, json=body), 201)["item"]
    assert created["customer_id"] == push_env.key.customer_id and created["registered_by"] == "key"
    updated = ok(push_env.call("POST", "kaixupush-projects", owner, json={**body, "name": "Docs 2"}))["item"]
    assert updated["id"] == created["id"] and updated["name"] == "Docs 2"
    bad = push_env.call("POST", "kaixupush-projects", owner, json={**body, "netlify_site_id": "a b"})
    assert bad.status_code == 400 and bad.json()["field"] == "netlify_site_id"
    listed = ok(admin.get("admin-kaixupush-projects", params={"customer_id": push_env.key.customer_id}))[
        "items"
    ]
    assert [p["project_id"] for p in listed] == ["docs", PROJECT]
    assert set(listed[0]) == {
        "id",
        "customer_id",
        "project_id",
        "name",
        "netlify_site_id",
        "registered_by",
        "created_at",
        "updated_at",
    }
    other = push_env.make_key()
    body = {**body, "netlify_site_id": "site-docs-2"}
    made = ok(admin.post("admin-kaixupush-projects", json={"customer_id": other.customer_id, **body}), 201)[
        "item"
    ]
    assert made["registered_by"] == "admin"
    duplicate = admin.post("admin-kaixupush-projects", json={"customer_id": other.customer_id, **body})
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "DUPLICATE_PROJECT"
    assert admin.post("admin-kaixupush-projects", json={"customer_id": 999999, **body}).status_code == 404
    patched = ok(
        admin.patch("admin-kaixupush-projects", params={"id": made["id"]}, json={"netlify_site_id": "s2"})
    )
    assert patched["item"]["netlify_site_id"] == "s2"
    clash = admin.patch(
        "admin-kaixupush-projects", params={"id": created["id"]}, json={"project_id": PROJECT}
    )
    assert clash.status_code == 409
    assert admin.patch("admin-kaixupush-projects", params={"id": made["id"]}, json={}).status_code == 400
    assert ok(admin.delete("admin-kaixupush-projects", params={"id": made["id"]}))["item"]["id"] == made["id"]
    assert admin.get("admin-kaixupush-projects", params={"id": made["id"]}).status_code == 404
    actions = [
        r["action"] for r in push_env.db.execute("SELECT action FROM audit_events ORDER BY id").fetchall()
    ]
    assert actions == [
        "netlify_token.set",
        "push.project_upsert",
        "push.project_upsert",
        "push.project_create",
        "push.project_update",
        "push.project_delete",
    ]


# ----------------------------------------------------------------------------- init validation


def _init_raw(push_env: PushEnv, body: Any, **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return push_env.call(
        "POST", "kaixupush-init", content=content, headers={"content-type": "application/json", **headers}
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"project_id": PROJECT, "files": {}}, 400, "BAD_MANIFEST"),
        ({"project_id": PROJECT, "files": []}, 400, "BAD_MANIFEST"),
        ({"project_id": PROJECT, "files": {"/a": "A" * 40}}, 400, "INVALID_INPUT"),
        ({"project_id": PROJECT, "files": {"/a": "a" * 39}}, 400, "INVALID_INPUT"),
        ({"project_id": PROJECT, "files": {"/a/../b": SHA}}, 400, "BAD_PATH"),
        ({"project_id": PROJECT, "files": {"a?x": SHA}}, 400, "BAD_PATH"),
        ({"project_id": PROJECT, "files": {"/a": SHA, "a": "b" * 40}}, 400, "BAD_MANIFEST"),
        ({"project_id": "no such", "files": {"/a": SHA}}, 400, "INVALID_INPUT"),
        ({"project_id": "missing", "files": {"/a": SHA}}, 404, "PROJECT_NOT_FOUND"),
        ({"project_id": PROJECT, "branch": "a b", "files": {"/a": SHA}}, 400, "INVALID_INPUT"),
        ({"project_id": PROJECT, "title": "x" * 161, "files": {"/a": SHA}}, 400, "INVALID_INPUT"),
        ({"project_id": PROJECT, "draft": "yes", "files": {"/a": SHA}}, 400, "INVALID_INPUT"),
        ({"project_id": PROJECT, "bytes": -1, "files": {"/a": SHA}}, 400, "INVALID_INPUT"),
        ({"project_id": PROJECT, "extra": 1, "files": {"/a": SHA}}, 400, "INVALID_INPUT"),
        (
            {"project_id": PROJECT, "files": {f"/f{i}": SHA for i in range(MAX_FILES + 1)}},
            413,
            "MANIFEST_TOO_LARGE",
        ),
        ([1, 2], 400, "INVALID_JSON"),
        (b"{not json", 400, "INVALID_JSON"),
    ],
)
def test_bad_manifests_are_refused(push_env: PushEnv, body: Any, status: int, code: str) -> None:
    response = _init_raw(push_env, body)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert push_env.netlify.count("create") == 0


def test_gzip_manifests_are_accepted_and_bombs_refused(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    body = {"project_id": PROJECT, "files": {f"/f{i}.html": sha1(str(i).encode()) for i in range(2000)}}
    zipped = gzip.compress(json.dumps(body).encode())
    created = ok(_init_raw(push_env, zipped, **{"content-encoding": "gzip"}), 201)
    assert created["file_count"] == 2000 and created["required_count"] == 2000
    assert _init_raw(push_env, b"not gzip", **{"content-encoding": "gzip"}).json()["code"] == "INVALID_GZIP"
    assert _init_raw(push_env, zipped[:-20], **{"content-encoding": "gzip"}).json()["code"] == "INVALID_GZIP"
    assert _init_raw(push_env, zipped, **{"content-encoding": "br"}).status_code == 415
    configure(KAIXUPUSH_MANIFEST_MAX_BYTES="100000")
    bomb = gzip.compress(b" " * 5_000_000)
    assert len(bomb) < 100000
    assert _init_raw(push_env, bomb, **{"content-encoding": "gzip"}).status_code == 413


# ----------------------------------------------------------------------------- upload validation


def test_whole_file_upload_checks(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(KAIXUPUSH_PART_BYTES="100")
    files = {"/a.html": b"aaa", "/b.html": b"b" * 150}
    push_id = ok(push_env.init(files), 201)["push_id"]

    def put(path: str | None, data: bytes, digest: str | None, **params: str) -> httpx.Response:
        headers = {"x-content-sha1": digest} if digest else {}
        query = {"push_id": push_id, **({"path": path} if path else {}), **params}
        return push_env.call("PUT", "kaixupush-upload", params=query, content=data, headers=headers)

    assert put("/a.html", b"aaa", None).status_code == 400  # no x-content-sha1
    assert put("/a.html", b"aaa", "xyz").status_code == 400
    mismatch = put("/a.html", b"aab", sha1(b"aaa"))
    assert mismatch.status_code == 400 and mismatch.json()["code"] == "SHA1_MISMATCH"
    assert mismatch.json()["got"] == sha1(b"aab")
    assert put("/nope.html", b"aaa", sha1(b"aaa")).json()["code"] == "PATH_NOT_IN_MANIFEST"
    assert put("/b.html", b"aaa", sha1(b"aaa")).json()["code"] == "SHA1_NOT_MATCHING_MANIFEST"
    assert put("/a/../x", b"aaa", sha1(b"aaa")).json()["code"] == "BAD_PATH"
    assert put("/b.html", files["/b.html"], sha1(files["/b.html"])).status_code == 413  # must use parts
    assert put(None, b"zzz", sha1(b"zzz")).json()["code"] == "SHA1_NOT_IN_MANIFEST"
    by_digest = ok(put(None, b"aaa", sha1(b"aaa")))
    assert by_digest["path"] == "/a.html"
    assert ok(put("/a.html", b"aaa", sha1(b"aaa")))["skipped"] is True
    missing = push_env.complete(push_id)
    assert missing.status_code == 409 and missing.json()["code"] == "MISSING_UPLOADS"
    assert missing.json()["missing_count"] == 1 and missing.json()["missing"] == [sha1(files["/b.html"])]
    assert (
        push_env.call(
            "PUT",
            "kaixupush-upload",
            params={"path": "/a.html"},
            content=b"a",
            headers={"x-content-sha1": sha1(b"a")},
        ).status_code
        == 400
    )


def test_files_netlify_already_has_are_not_required(push_env: PushEnv) -> None:
    first = {"/a.html": b"a", "/b.html": b"b"}
    push_id = ok(push_env.init(first), 201)["push_id"]
    for path, data in first.items():
        ok(push_env.upload(push_id, path, data))
    ok(push_env.complete(push_id))
    second = ok(push_env.init({**first, "/c.html": b"c"}), 201)
    assert second["required"] == [sha1(b"c")]
    refused = push_env.upload(second["push_id"], "/a.html", b"a")
    assert refused.status_code == 409 and refused.json()["code"] == "NOT_REQUIRED"
    closed = push_env.upload(push_id, "/a.html", b"a")
    assert closed.status_code == 409 and closed.json()["code"] == "PUSH_CLOSED"


def test_concurrent_uploads_of_one_file_send_it_once(push_env: PushEnv) -> None:
    data = b"x" * 5000
    push_id = ok(push_env.init({"/x.bin": data}), 201)["push_id"]
    push_env.netlify.slow("upload", 0.3)
    results: list[httpx.Response] = []
    threads = [
        threading.Thread(target=lambda: results.append(push_env.upload(push_id, "/x.bin", data)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}
    assert sum(r.status_code == 200 and r.json().get("uploaded") is True for r in results) == 1
    assert push_env.netlify.count("upload", 200) == 1
    events = push_env.db.execute(
        "SELECT count(*) AS n FROM push_usage_events WHERE kind = 'file_upload'"
    ).fetchone()
    assert events["n"] == 1


# ----------------------------------------------------------------------------- Netlify and deploy limits


def test_netlify_failures_at_init_are_reported_and_counted(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_DEPLOYS_PER_MIN="1")
    push_env.netlify.fail("create", 422, message="Invalid deploy")
    refused = push_env.init({"/a.html": b"a"})
    assert refused.status_code == 502 and refused.json()["code"] == "NETLIFY_REFUSED"  # no retry helps
    assert refused.json()["netlify_status"] == 422
    row = push_env.db.execute("SELECT state, error FROM push_pushes").fetchone()
    assert row["state"] == "init_failed" and "Invalid deploy" in row["error"]
    limited = push_env.init({"/a.html": b"a"})  # the refused deploy cost a Netlify call: it counts
    assert limited.status_code == 429 and limited.json()["code"] == "PUSH_RATE_LIMITED"
    assert push_env.netlify.count("create") == 1
    push_env.db.execute("UPDATE push_pushes SET created_at = created_at - interval '2 minutes'")
    ok(push_env.init({"/a.html": b"a"}), 201)


def test_a_refused_netlify_token_is_named_at_once_and_never_leaked(push_env: PushEnv) -> None:
    push_env.netlify.tokens = {"another-token"}
    refused = push_env.init({"/a.html": b"a"})
    assert refused.status_code == 502 and refused.json()["netlify_status"] == 401
    assert refused.json()["code"] == "NETLIFY_TOKEN_REJECTED" and "operator" in refused.json()["error"]
    assert "nfp_" not in refused.text
    assert push_env.netlify.count("create") == 1  # not retried: no retry can fix a refused token


def test_netlify_failing_is_told_apart_from_netlify_refusing(push_env: PushEnv) -> None:
    push_env.netlify.fail("create", 503)
    failed = push_env.init({"/a.html": b"a"})
    assert failed.status_code == 502 and failed.json()["code"] == "NETLIFY_ERROR"  # a later try may pass
    assert failed.json()["netlify_status"] == 503


def test_status_names_a_refused_token_while_netlify_prepares(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PREPARE_TIMEOUT_S="0")  # init answers while Netlify still prepares
    push_env.netlify.prepare_polls = 5
    push_id = ok(push_env.init({"/a.html": b"a"}), 201)["push_id"]
    push_env.netlify.tokens = {"another-token"}  # revoked meanwhile
    item = ok(push_env.call("GET", "kaixupush-status", params={"push_id": push_id}))["item"]
    assert item["refresh_error_code"] == "NETLIFY_TOKEN_REJECTED" and "401" in item["refresh_error"]


def test_no_netlify_token_is_a_503(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(NETLIFY_AUTH_TOKEN="")
    refused = push_env.init({"/a.html": b"a"})
    assert refused.status_code == 503 and refused.json()["code"] == "NETLIFY_NOT_CONFIGURED"


def test_the_customer_token_is_preferred(
    push_env: PushEnv, admin: httpx.Client, configure: Callable[..., Any]
) -> None:
    configure(KAIXU_ENCRYPTION_KEYS="k1:" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
    ok(
        admin.post(
            "admin-netlify-token", json={"customer_id": push_env.key.customer_id, "token": "nf-customer-tok"}
        )
    )
    push_env.netlify.tokens.add("nf-customer-tok")
    ok(push_env.init({"/a.html": b"a"}), 201)
    assert push_env.netlify.requests[0]["token"] == "nf-customer-tok"


def test_the_deploy_rate_limit_slides_and_ignores_refusals(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_DEPLOYS_PER_MIN="2", KAIXUPUSH_DEPLOYS_PER_DAY="3")
    for _ in range(2):
        ok(push_env.init({"/a.html": b"a"}), 201)
    for _ in range(3):
        limited = push_env.init({"/a.html": b"a"})
        assert limited.status_code == 429 and limited.json()["scope"] == "minute"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
    push_env.db.execute("UPDATE push_pushes SET created_at = created_at - interval '2 minutes'")
    ok(push_env.init({"/a.html": b"a"}), 201)  # the three refusals did not count towards the day
    day = push_env.init({"/a.html": b"a"})
    assert day.status_code == 429 and day.json()["scope"] == "day" and day.json()["limit"] == 3
    assert int(day.headers["retry-after"]) > 3600
    assert push_env.netlify.count("create") == 3


def test_concurrent_inits_respect_the_minute_limit(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(KAIXUPUSH_DEPLOYS_PER_MIN="3")
    push_env.netlify.slow("create", 0.1, times=10)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(push_env.init({"/a.html": b"a"}).status_code))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [201] * 3 + [429] * 5


def test_init_with_an_idempotency_key_creates_one_deploy(push_env: PushEnv) -> None:
    headers = {"idempotency-key": "deploy-42"}
    first = ok(push_env.init({"/a.html": b"a"}, headers=headers), 201)
    again = ok(push_env.init({"/a.html": b"a"}, headers=headers), 200)
    assert again["push_id"] == first["push_id"] and push_env.netlify.count("create") == 1
    other = push_env.init({"/b.html": b"b"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "IDEMPOTENCY_MISMATCH"


def test_concurrent_inits_with_one_idempotency_key_make_one_push(push_env: PushEnv) -> None:
    push_env.netlify.slow("create", 0.3)
    start = threading.Barrier(5)
    results: list[httpx.Response] = []

    def init() -> None:
        start.wait()
        results.append(push_env.init({"/a.html": b"a"}, headers={"idempotency-key": "ci-run-9"}))

    threads = [threading.Thread(target=init) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in results)
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409}, [r.text for r in results]
    assert all(r.json()["code"] == "IDEMPOTENCY_IN_PROGRESS" for r in results if r.status_code == 409)
    assert len({r.json()["push_id"] for r in results if r.status_code < 300}) == 1
    assert push_env.db.execute("SELECT count(*) AS n FROM push_pushes").fetchone()["n"] == 1
    assert push_env.netlify.count("create") == 1


def test_an_init_whose_process_died_is_swept(push_env: PushEnv, configure: Callable[..., Any]) -> None:
    configure(NETLIFY_TIMEOUT_S="5", KAIXUPUSH_DEPLOYS_PER_MIN="2")
    dead = ok(push_env.init({"/a.html": b"a"}, headers={"idempotency-key": "dead"}), 201)
    ok(push_env.init({"/b.html": b"b"}, headers={"idempotency-key": "live"}), 201)
    # as if both processes had died between the admission and Netlify's answer, one 11 s ago
    push_env.db.execute("UPDATE push_pushes SET state = 'creating', deploy_id = NULL")
    push_env.db.execute(
        "UPDATE push_pushes SET created_at = now() - interval '11 seconds' WHERE push_id = %s",
        (dead["push_id"],),
    )
    blocked = push_env.init({"/a.html": b"a"}, headers={"idempotency-key": "dead"})
    assert blocked.status_code == 409 and blocked.json()["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert push_env.init({"/c.html": b"c"}).json()["code"] == "PUSH_RATE_LIMITED"
    assert ok(push_env.worker())["item"]["kaixupush_abandoned_inits"] == 1
    rows = push_env.db.execute(
        "SELECT idempotency_key, state, error, finished_at FROM push_pushes ORDER BY id"
    ).fetchall()
    assert [(r["idempotency_key"], r["state"]) for r in rows] == [
        ("dead", "init_failed"),
        ("live", "creating"),
    ]
    assert "abandoned" in rows[0]["error"] and rows[0]["finished_at"] is not None
    assert rows[1]["finished_at"] is None  # younger than twice NETLIFY_TIMEOUT_S: maybe still running
    held = push_env.init({"/a.html": b"a"}, headers={"idempotency-key": "dead"})
    assert held.json()["code"] == "PUSH_RATE_LIMITED"  # a failed init still holds its slot
    push_env.db.execute("UPDATE push_pushes SET created_at = created_at - interval '2 minutes'")
    retried = ok(push_env.init({"/a.html": b"a"}, headers={"idempotency-key": "dead"}), 201)
    assert retried["push_id"] != dead["push_id"]  # the key is free once the init failed


def test_a_late_netlify_answer_for_a_swept_init_is_refused(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(NETLIFY_TIMEOUT_S="2")
    push_env.netlify.slow("create", 1.0)
    result: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: result.append(push_env.init({"/a.html": b"a"})))
    thread.start()
    creating = "SELECT 1 FROM push_pushes WHERE state = 'creating'"
    assert wait_for(lambda: push_env.db.execute(creating).fetchone())
    push_env.db.execute("UPDATE push_pushes SET created_at = created_at - interval '10 seconds'")
    assert ok(push_env.worker())["item"]["kaixupush_abandoned_inits"] == 1
    thread.join()
    assert result[0].status_code == 502 and result[0].json()["code"] == "NETLIFY_TOO_SLOW"
    row = push_env.db.execute("SELECT state, deploy_id, finished_at FROM push_pushes").fetchone()
    assert (row["state"], row["deploy_id"]) == ("init_failed", None) and row["finished_at"] is not None


# ----------------------------------------------------------------------------- state


def test_status_is_curated_and_refreshed(push_env: PushEnv, admin: httpx.Client) -> None:
    push_env.netlify.processing_polls = 2
    init = ok(push_env.init({"/a.html": b"a", "/b.html": b"b"}, title="T", branch="feature/x"), 201)
    item = ok(push_env.call("GET", "kaixupush-status", params={"push_id": init["push_id"]}))["item"]
    assert item["state"] == "uploading" and item["required_count"] == 2 and item["missing_count"] == 2
    assert item["refreshed"] is True and "token" not in json.dumps(item)
    assert "required" not in item and "site_id" not in item  # not the raw Netlify object
    ok(push_env.upload(init["push_id"], "/a.html", b"a"))
    ok(push_env.upload(init["push_id"], "/b.html", b"b"))
    pending = push_env.complete(init["push_id"], wait=0)
    assert pending.status_code == 202 and pending.json()["state"] == "processing"
    done = ok(push_env.complete(init["push_id"], wait=5))
    assert done["state"] == "ready" and done["uploaded_count"] == 2
    assert push_env.netlify.deploys[done["deploy_id"]].title == f"T ({init['push_id']})"
    assert push_env.netlify.deploys[done["deploy_id"]].branch == "feature/x"
    history = ok(admin.get("admin-kaixupush-deploys", params={"customer_id": push_env.key.customer_id}))[
        "items"
    ]
    assert history[0]["push_id"] == init["push_id"] and history[0]["project_name"] == "Website"
    assert history[0]["required_count"] == 2 and history[0]["uploaded_count"] == 2
    assert history[0]["state"] == "ready" and history[0]["url"] == done["url"]
    assert ok(admin.get("admin-kaixupush-deploys", params={"project_id": "other"}))["items"] == []
    assert admin.get("admin-kaixupush-deploys", params={"project_id": "a b"}).status_code == 400


def test_a_failed_netlify_deploy_is_a_502_and_not_billed(push_env: PushEnv) -> None:
    push_env.netlify.deploy_error = "Build script failed"
    init = ok(push_env.init({"/a.html": b"a"}), 201)
    ok(push_env.upload(init["push_id"], "/a.html", b"a"))
    failed = push_env.complete(init["push_id"])
    assert failed.status_code == 502 and failed.json()["code"] == "NETLIFY_DEPLOY_FAILED"
    assert (
        failed.json()["push"]["state"] == "error" and failed.json()["push"]["error"] == "Build script failed"
    )
    kinds = [
        r["kind"] for r in push_env.db.execute("SELECT kind FROM push_usage_events ORDER BY id").fetchall()
    ]
    assert kinds == ["deploy_init", "file_upload", "deploy_error"]


def test_admin_lists_paginate(push_env: PushEnv, admin: httpx.Client) -> None:
    for _ in range(3):
        ok(push_env.init({"/a.html": b"a"}), 201)
    first = ok(admin.get("admin-kaixupush-deploys", params={"limit": 2}))
    second = ok(admin.get("admin-kaixupush-deploys", params={"limit": 2, "cursor": first["next_cursor"]}))
    ids = [i["id"] for i in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 3 and second["next_cursor"] is None
    assert admin.get("admin-kaixupush-jobs", params={"status": "bogus"}).status_code == 400
    assert admin.get("admin-kaixupush-deploys", params={"cursor": "junk"}).status_code == 400
    assert push_env.client.get("admin-kaixupush-deploys").status_code == 401
