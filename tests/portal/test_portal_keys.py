"""customer-keys: a customer makes, rotates, revokes and narrows its own keys, and can never
give a key more than its account has (the gateway takes a key's own setting over the
account's, so a wider one would widen what the operator sold)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support import admin as admin_support
from tests.support.admin import audit_rows, chat, new_key, ok, written_rows
from tests.support.portal import Customer, log_in, session_client, sign_in

admin = admin_support.admin


@pytest.fixture
def alice(server: str, admin: Any) -> Customer:
    customer = sign_in(server, admin, "alice@example.com", rpm_limit=60)
    policy = {
        "allowed_providers": ["openai", "anthropic"],
        "allowed_models": {"openai": ["gpt-4o-mini"], "anthropic": ["*"]},
    }
    ok(admin.patch(f"admin-customers?id={customer.customer_id}", json={**policy, "max_devices_per_key": 3}))
    return customer


def test_a_new_key_is_shown_once_and_works_within_the_account(server, alice, upstreams, db):
    upstreams.script("openai", input_tokens=10, output_tokens=2)
    created = ok(
        alice.http.post("customer-keys", json={"label": "ci", "rpm_limit": 10, "max_devices": 2}), 201
    )
    item = created["item"]
    assert item["key"].startswith("kx_live_") and item["role"] == "caller" and item["kind"] == "sub"
    assert (item["rpm_limit"], item["max_devices"]) == (10, 2)
    listed = ok(alice.http.get("customer-keys"))["items"]
    assert [k["id"] for k in listed] == [item["id"], alice.master_key_id]
    assert "key" not in listed[0] and item["key"] not in str(listed)
    assert chat(server, item["key"], install_id="ci-runner").status_code == 200
    [event] = audit_rows(db, "key.create")[-1:]
    assert event["actor"] == f"customer:{alice.customer_id}/key:{alice.master_key_id}"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rpm_limit": 61}, "rpm_limit"),  # above the account's 60
        ({"rpm_limit": 0}, "rpm_limit"),  # 0 would mean "no limit"
        ({"max_devices": 4}, "max_devices"),
        ({"max_devices": 0}, "max_devices"),
        ({"allowed_providers": ["gemini"]}, "allowed_providers"),
        ({"allowed_providers": ["*"]}, "allowed_providers"),
        ({"allowed_models": {"openai": ["gpt-4o"]}}, "allowed_models"),
        ({"allowed_models": {"*": ["*"]}}, "allowed_models"),
        ({"role": "owner"}, "role"),
    ],
)
def test_nothing_wider_than_the_account_is_created(alice, db, body, field):
    before = written_rows(db)
    response = alice.http.post("customer-keys", json=body)
    assert response.status_code == 403 and response.json()["code"] == "BEYOND_PLAN"
    assert response.json()["field"] == field
    assert written_rows(db) == before


def test_narrower_models_and_any_anthropic_model_are_fine(alice):
    body = {"allowed_providers": ["anthropic"], "allowed_models": {"anthropic": ["claude-3-5-haiku-latest"]}}
    assert ok(alice.http.post("customer-keys", json=body), 201)["item"]["allowed_providers"] == ["anthropic"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"label": ""}, 400, "label"),
        ({"label": "x" * 61}, 400, "label"),
        ({"rpm_limit": "ten"}, 400, "rpm_limit"),
        ({"role": "superuser"}, 400, "role"),
        ({"customer_id": 1}, 400, "customer_id"),
        ({"allowed_models": ["gpt-4o"]}, 400, "allowed_models"),
    ],
)
def test_bad_key_bodies_are_400(alice, db, body, status, field):
    before = written_rows(db)
    response = alice.http.post("customer-keys", json=body)
    assert response.status_code == status and response.json()["field"] == field
    assert written_rows(db) == before


def test_an_admin_key_hands_out_roles_up_to_its_own_and_cannot_touch_the_master(server, admin, alice):
    administrator = new_key(admin, alice.customer_id, role="admin")
    with session_client(server, ok(log_in(server, administrator["key"]))["token"]) as http:
        assert ok(http.post("customer-keys", json={"role": "admin"}), 201)["item"]["role"] == "admin"
        for action in ("rotate", "revoke"):
            refused = http.post("customer-keys", params={"id": alice.master_key_id, "action": action})
            assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN"
        refused = http.patch("customer-keys", params={"id": alice.master_key_id}, json={"label": "x"})
        assert refused.status_code == 403


def test_rotating_the_master_key_replaces_it_and_ends_its_session(server, alice):
    rotated = ok(alice.http.post("customer-keys", params={"id": alice.master_key_id, "action": "rotate"}))
    new_master = rotated["item"]
    assert new_master["role"] == "owner" and new_master["rotated_from_id"] == alice.master_key_id
    assert alice.http.get("customer-keys").status_code == 401  # the session's key is gone
    assert log_in(server, alice.master_key).status_code == 401
    assert ok(log_in(server, new_master["key"]))["key"]["id"] == new_master["id"]


def test_the_master_key_cannot_be_revoked_or_demoted_here(alice, db):
    refused = alice.http.post("customer-keys", params={"id": alice.master_key_id, "action": "revoke"})
    assert refused.status_code == 409 and refused.json()["code"] == "MASTER_KEY"
    demoted = alice.http.patch("customer-keys", params={"id": alice.master_key_id}, json={"role": "admin"})
    assert demoted.status_code == 409 and demoted.json()["field"] == "role"
    assert db.execute(
        "SELECT role, revoked_at FROM api_keys WHERE id = %s", (alice.master_key_id,)
    ).fetchone() == {
        "role": "owner",
        "revoked_at": None,
    }


def test_revoking_and_narrowing_a_sub_key(server, alice, upstreams):
    upstreams.script("openai", input_tokens=10, output_tokens=2)
    item = ok(alice.http.post("customer-keys", json={"label": "old"}), 201)["item"]
    narrowed = ok(
        alice.http.patch("customer-keys", params={"id": item["id"]}, json={"rpm_limit": 5, "label": "new"})
    )
    assert (narrowed["item"]["rpm_limit"], narrowed["item"]["label"]) == (5, "new")
    wider = alice.http.patch("customer-keys", params={"id": item["id"]}, json={"rpm_limit": 100})
    assert wider.status_code == 403 and wider.json()["field"] == "rpm_limit"
    ok(alice.http.post("customer-keys", params={"id": item["id"], "action": "revoke"}))
    assert chat(server, item["key"], install_id="x").status_code == 401
    again = alice.http.patch("customer-keys", params={"id": item["id"]}, json={"label": "z"})
    assert again.status_code == 409 and again.json()["code"] == "KEY_REVOKED"


def test_the_key_limit_holds_under_parallel_creation(server, alice, configure, db):
    configure(PORTAL_MAX_KEYS="4")  # the master key and three more

    def create(_: int) -> int:
        with session_client(server, alice.token) as http:
            return http.post("customer-keys", json={"label": "burst"}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(create, range(8)))
    assert statuses == [201] * 3 + [409] * 5
    active = db.execute(
        "SELECT count(*) AS n FROM api_keys WHERE customer_id = %s AND revoked_at IS NULL",
        (alice.customer_id,),
    ).fetchone()
    assert active["n"] == 4
