"""Signing in to the customer portal: which keys may, what the session token opens, and the
lockout a guesser meets (the admin login's, under its own name)."""

from __future__ import annotations

import httpx
import pytest

from shared import login_guard, signed_tokens
from shared.portal import session
from tests.support import admin as admin_support
from tests.support.admin import audit_rows, new_key, ok
from tests.support.portal import log_in, session_client, sign_in

admin = admin_support.admin

ATTACKER = {"x-forwarded-for": "198.51.100.9"}  # the test server trusts its loopback proxy


def test_the_master_key_signs_in_and_the_token_opens_the_portal_only(server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    body = ok(log_in(server, alice.master_key))
    assert body["token"].startswith(session.TOKEN_PREFIX + ".") and body["expires_at"]
    assert body["customer"] == {"id": alice.customer_id, "email": "alice@example.com"}
    assert body["key"]["role"] == "owner" and alice.master_key not in str(body)
    assert ok(alice.http.get("customer-summary"))["item"]["customer"]["id"] == alice.customer_id
    # A customer token is no admin token, whatever it is sent to.
    for function in ("admin-customers", "admin-audit", "admin-keys?customer_id=1"):
        refused = alice.http.get(function)
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED", function
    # ... and an admin token is no customer token.
    admin_token = ok(admin.post("admin-login", json={"password": admin_support.ADMIN_PASSWORD}))["token"]
    with session_client(server, admin_token) as operator:
        assert operator.get("customer-summary").status_code == 401
    [event] = audit_rows(db, "customer.login")[-1:]
    assert event["actor"] == f"customer:{alice.customer_id}" and alice.master_key not in str(event)


def test_only_admin_role_keys_sign_in(server, admin):
    alice = sign_in(server, admin, "alice@example.com")
    administrator = new_key(admin, alice.customer_id, role="admin")
    assert ok(log_in(server, administrator["key"]))["key"]["role"] == "admin"
    for role in ("viewer", "caller", "deployer"):
        key = new_key(admin, alice.customer_id, role=role)
        refused = log_in(server, key["key"])
        assert refused.status_code == 403 and refused.json()["code"] == "FORBIDDEN", role
        assert refused.json()["required_role"] == "admin" and "token" not in refused.json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "INVALID_INPUT"),
        ({"key": ""}, 400, "INVALID_INPUT"),
        ({"key": 42}, 400, "INVALID_INPUT"),
        ({"key": "kx_live_not-a-key"}, 401, "INVALID_CREDENTIALS"),
        ({"key": "sk-something-else"}, 401, "INVALID_CREDENTIALS"),
        ({"key": "kx_live_" + "a" * 500}, 401, "INVALID_CREDENTIALS"),
    ],
)
def test_bad_sign_ins_get_a_clear_error(server, admin, body, status, code):
    response = httpx.post(f"{server}/.netlify/functions/customer-login", json=body, timeout=30)
    assert response.status_code == status and response.json()["code"] == code
    assert response.json()["request_id"]


def test_a_non_object_body_is_refused(server, admin):
    response = httpx.post(f"{server}/.netlify/functions/customer-login", content=b"[1]", timeout=30)
    assert response.status_code == 400 and response.json()["code"] == "INVALID_JSON"


def test_revoking_or_rotating_the_key_or_disabling_the_customer_ends_the_session(server, admin):
    alice = sign_in(server, admin, "alice@example.com")
    ok(admin.post(f"admin-keys?id={alice.master_key_id}&action=rotate"))
    refused = alice.http.get("customer-summary")
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert log_in(server, alice.master_key).status_code == 401  # the old key no longer signs in

    bob = sign_in(server, admin, "bob@example.com")
    ok(admin.patch(f"admin-customers?id={bob.customer_id}", json={"is_active": False}))
    disabled = bob.http.get("customer-summary")
    assert disabled.status_code == 403 and disabled.json()["code"] == "CUSTOMER_DISABLED"
    assert log_in(server, bob.master_key).status_code == 403


def test_lowering_the_keys_role_ends_the_session(server, admin):
    alice = sign_in(server, admin, "alice@example.com")
    administrator = new_key(admin, alice.customer_id, role="admin")
    token = ok(log_in(server, administrator["key"]))["token"]
    with session_client(server, token) as http:
        assert http.get("customer-summary").status_code == 200
        ok(admin.patch(f"admin-keys?id={administrator['id']}", json={"role": "caller"}))
        assert http.get("customer-summary").status_code == 403


def test_tampered_expired_or_foreign_tokens_are_refused(server, admin, configure):
    alice = sign_in(server, admin, "alice@example.com")
    bob = sign_in(server, admin, "bob@example.com")
    prefix, payload, signature = alice.token.split(".")
    bobs_payload = bob.token.split(".")[1]
    expired, _ = signed_tokens.issue(
        session.TOKEN_PREFIX, session.TOKEN_TYPE, session._signing_key(), 60, now=0,
        cid=alice.customer_id, kid=alice.master_key_id,
    )  # fmt: skip
    for token in (
        f"{prefix}.{bobs_payload}.{signature}",  # Bob's customer id under Alice's signature
        f"{prefix}.{payload}.{signature[:-2]}xx",
        f"kxa1.{payload}.{signature}",
        expired,
        "nothing",
    ):
        with session_client(server, token) as http:
            assert http.get("customer-summary").status_code == 401, token
    configure(ADMIN_TOKEN_SECRET="a brand new deployment secret")  # a new secret signs everyone out
    assert alice.http.get("customer-summary").status_code == 401


def test_five_failures_lock_the_address_for_customer_sign_in(server, admin, db):
    alice = sign_in(server, admin, "alice@example.com")
    for n in range(login_guard.MAX_FAILURES):
        assert log_in(server, f"kx_live_guess{n}", **ATTACKER).status_code == 401
    locked = log_in(server, alice.master_key, **ATTACKER)  # even the right key, while locked
    assert locked.status_code == 429 and locked.json()["code"] == "LOGIN_LOCKED"
    assert int(locked.headers["retry-after"]) >= 1
    assert log_in(server, alice.master_key).status_code == 200  # another address is not locked
    failures = audit_rows(db, "customer.login_failed")
    assert len(failures) == login_guard.MAX_FAILURES and len(audit_rows(db, "customer.login_locked")) == 1
    assert all("guess" not in str(event) for event in failures)
    assert not audit_rows(db, "admin.login_failed")  # the admin login has its own count
