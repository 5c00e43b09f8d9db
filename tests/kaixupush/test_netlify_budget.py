"""One customer cannot exhaust a Netlify token: a push's state is read from Netlify at most
once per ``KAIXUPUSH_STATUS_CACHE_S`` (else from the database), calls per Netlify token are
budgeted in PostgreSQL (shared by every process), failed inits count against the deploy
limits and the manifests of finished pushes are pruned by the upkeep.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support import admin as admin_support
from tests.support import kaixupush as kaixupush_support
from tests.support.kaixupush import PushEnv, ok

admin = admin_support.admin  # fixture
netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture
own_token = kaixupush_support.own_token  # fixture


def _status(push_env: PushEnv, push_id: str) -> dict[str, Any]:
    return ok(push_env.call("GET", "kaixupush-status", params={"push_id": push_id}))["item"]


def test_status_asks_netlify_at_most_once_per_push_per_interval(
    push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_STATUS_CACHE_S="30")
    push_id = ok(push_env.init({"/a.html": b"a"}), 201)["push_id"]  # init itself polled just now
    polls = push_env.netlify.count("get")
    for _ in range(20):
        item = _status(push_env, push_id)
        assert item["state"] == "uploading" and item["refreshed"] is False
    assert push_env.netlify.count("get") == polls  # served from the database
    push_env.db.execute("UPDATE push_pushes SET polled_at = now() - interval '31 seconds'")
    assert _status(push_env, push_id)["refreshed"] is True
    assert _status(push_env, push_id)["refreshed"] is False
    assert push_env.netlify.count("get") == polls + 1


def _second_customer(push_env: PushEnv, site: str) -> Any:
    key = push_env.make_key(role="deployer")
    push_env.netlify.add_site(site)
    push_env.db.execute(
        "INSERT INTO push_projects (customer_id, project_id, name, netlify_site_id, registered_by) "
        "VALUES (%s, 'web', 'Other', %s, 'admin')",
        (key.customer_id, site),
    )
    return key


def test_netlify_calls_are_budgeted_per_token_across_customers(
    push_env: PushEnv,
    admin: httpx.Client,
    own_token: Callable[[int, str], None],
    configure: Callable[..., Any],
) -> None:
    configure(KAIXUPUSH_NETLIFY_CALLS_PER_MIN="12", NETLIFY_RETRY_MAX_WAIT_S="0")  # a burst of 2
    ok(push_env.init({"/a.html": b"a"}), 201)  # create + one poll: the operator token's burst
    other = _second_customer(push_env, "site-other")
    refused = push_env.init({"/b.html": b"b"}, key=other)  # the same operator token
    assert refused.status_code == 429 and refused.json()["code"] == "NETLIFY_RATE_LIMITED", refused.text
    assert int(refused.headers["retry-after"]) >= 1 and refused.json()["scope"] == "gateway"
    assert len(push_env.netlify.requests) == 2  # Netlify never saw the third call
    own = _second_customer(push_env, "site-own")
    own_token(own.customer_id, "nf-own-token")  # its own token has its own budget
    ok(push_env.init({"/c.html": b"c"}, key=own), 201)
    assert [r["token"] for r in push_env.netlify.requests[2:]] == ["nf-own-token"] * 2


def test_manifests_of_finished_pushes_are_pruned(push_env: PushEnv) -> None:
    done = ok(push_env.init({"/a.html": b"a", "/b.html": b"a"}), 201)["push_id"]
    ok(push_env.upload(done, "/a.html", b"a"))
    assert ok(push_env.complete(done))["state"] == "ready"
    open_push = ok(push_env.init({"/c.html": b"c"}), 201)["push_id"]
    push_env.db.execute(
        "UPDATE push_pushes SET finished_at = now() - interval '2 hours' WHERE push_id = %s", (done,)
    )
    assert ok(push_env.worker())["item"]["kaixupush_pruned_manifests"] == 1
    rows = {
        r["push_id"]: r["manifest"]
        for r in push_env.db.execute("SELECT push_id, manifest FROM push_pushes").fetchall()
    }
    assert rows[done] == {} and rows[open_push] == {"/c.html": kaixupush_support.sha1(b"c")}
    item = _status(push_env, done)
    assert item["state"] == "ready" and item["file_count"] == 2  # the history stays
    assert ok(push_env.worker())["item"]["kaixupush_pruned_manifests"] == 0
