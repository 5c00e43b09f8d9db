"""Who may point a project at a Netlify site, and which token deploys it.

A customer's own Netlify token limits the sites it reaches; the operator's fallback token
reaches every site of the operator's account, so it deploys only projects an admin
registered, and a site belongs to one project at most.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support import admin as admin_support
from tests.support import kaixupush as kaixupush_support
from tests.support.fakes.netlify_api import DEFAULT_TOKEN
from tests.support.kaixupush import PROJECT, SITE, PushEnv, ok

admin = admin_support.admin  # fixture
netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture
own_token = kaixupush_support.own_token  # fixture

GiveToken = Callable[[int, str], None]


def _upsert(push_env: PushEnv, key: object, project_id: str, site: str, name: str = "P") -> httpx.Response:
    body = {"project_id": project_id, "name": name, "netlify_site_id": site}
    return push_env.call("POST", "kaixupush-projects", key, json=body)  # type: ignore[arg-type]


def _project(push_env: PushEnv, customer_id: int, project_id: str) -> dict:
    return push_env.db.execute(
        "SELECT netlify_site_id, registered_by, name FROM push_projects "
        "WHERE customer_id = %s AND project_id = %s",
        (customer_id, project_id),
    ).fetchone()


def _init(push_env: PushEnv, project_id: str) -> httpx.Response:
    return push_env.init({"/a.html": b"a"}, project_id=project_id)


def _last_create(push_env: PushEnv) -> tuple[str, str]:
    """(path, token) of the last deploy creation the fake Netlify received."""
    create = [r for r in push_env.netlify.requests if r["route"] == "create"][-1]
    return create["path"], create["token"]


def test_a_key_without_its_own_token_cannot_choose_a_site(push_env: PushEnv, admin: httpx.Client) -> None:
    customer = push_env.key.customer_id
    owner = push_env.make_key(customer_id=customer, role="admin")
    push_env.netlify.add_site("site-victim")
    refused = _upsert(push_env, owner, "mine", "site-victim")
    assert refused.status_code == 403 and refused.json()["code"] == "ADMIN_REGISTRATION_REQUIRED"
    assert "admin must register" in refused.json()["error"]
    repoint = _upsert(push_env, owner, PROJECT, "site-victim")  # the project an admin registered
    assert repoint.status_code == 403 and repoint.json()["code"] == "ADMIN_REGISTRATION_REQUIRED"
    assert _project(push_env, customer, PROJECT)["netlify_site_id"] == SITE
    assert _project(push_env, customer, "mine") is None
    renamed = ok(_upsert(push_env, owner, PROJECT, SITE, name="Renamed"))["item"]  # same site: allowed
    assert (renamed["name"], renamed["registered_by"]) == ("Renamed", "admin")
    ok(_init(push_env, PROJECT), 201)
    assert _last_create(push_env) == (f"/api/v1/sites/{SITE}/deploys", DEFAULT_TOKEN)
    body = {"customer_id": customer, "project_id": "mine", "name": "Mine", "netlify_site_id": "site-victim"}
    assert ok(admin.post("admin-kaixupush-projects", json=body), 201)["item"]["registered_by"] == "admin"


def test_a_site_belongs_to_one_project(push_env: PushEnv, admin: httpx.Client, own_token: GiveToken) -> None:
    other = push_env.make_key(role="admin")
    own_token(other.customer_id, "nf-other")
    taken = _upsert(push_env, other, "copy", SITE)  # SITE is the first customer's
    assert taken.status_code == 409 and taken.json()["code"] == "SITE_TAKEN"
    body = {"customer_id": other.customer_id, "project_id": "copy", "name": "Copy", "netlify_site_id": SITE}
    taken = admin.post("admin-kaixupush-projects", json=body)
    assert taken.status_code == 409 and taken.json()["code"] == "SITE_TAKEN"
    made = ok(admin.post("admin-kaixupush-projects", json={**body, "netlify_site_id": "site-2"}), 201)["item"]
    moved = admin.patch("admin-kaixupush-projects", params={"id": made["id"]}, json={"netlify_site_id": SITE})
    assert moved.status_code == 409 and moved.json()["code"] == "SITE_TAKEN"
    repointed = _upsert(push_env, other, "copy", SITE)
    assert repointed.status_code == 409 and repointed.json()["code"] == "SITE_TAKEN"
    assert _project(push_env, other.customer_id, "copy")["netlify_site_id"] == "site-2"
    assert push_env.db.execute("SELECT count(*) AS n FROM push_projects").fetchone()["n"] == 2


def test_the_fallback_token_deploys_only_what_an_admin_registered(
    push_env: PushEnv, admin: httpx.Client, own_token: GiveToken
) -> None:
    customer = push_env.key.customer_id
    push_env.netlify.add_site("site-docs")
    body = {"customer_id": customer, "project_id": "docs", "name": "Docs", "netlify_site_id": "site-docs"}
    ok(admin.post("admin-kaixupush-projects", json=body), 201)
    ok(_init(push_env, "docs"), 201)  # an admin-registered project: the operator's token
    assert _last_create(push_env) == ("/api/v1/sites/site-docs/deploys", DEFAULT_TOKEN)

    own_token(customer, "nf-customer")
    owner = push_env.make_key(customer_id=customer, role="admin")
    push_env.netlify.add_site("site-blog")
    blog = ok(_upsert(push_env, owner, "blog", "site-blog"), 201)["item"]
    assert blog["registered_by"] == "key"
    ok(_init(push_env, "blog"), 201)  # a key-registered project: the customer's own token
    assert _last_create(push_env) == ("/api/v1/sites/site-blog/deploys", "nf-customer")

    ok(admin.delete("admin-netlify-token", params={"customer_id": customer}))
    creates = push_env.netlify.count("create")
    refused = _init(push_env, "blog")  # only the fallback token is left: not for a key's choice
    assert refused.status_code == 403 and refused.json()["code"] == "ADMIN_REGISTRATION_REQUIRED"
    assert push_env.netlify.count("create") == creates
    assert push_env.db.execute("SELECT count(*) AS n FROM push_pushes").fetchone()["n"] == 2
    ok(_init(push_env, "docs"), 201)
    assert _last_create(push_env) == ("/api/v1/sites/site-docs/deploys", DEFAULT_TOKEN)

    approved = admin.patch(
        "admin-kaixupush-projects", params={"id": blog["id"]}, json={"netlify_site_id": "site-blog"}
    )
    assert ok(approved)["item"]["registered_by"] == "admin"  # an admin vouches for the site
    ok(_init(push_env, "blog"), 201)
    assert _last_create(push_env) == ("/api/v1/sites/site-blog/deploys", DEFAULT_TOKEN)
