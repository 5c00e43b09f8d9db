"""admin-login: tokens, and the lockout after 5 failed logins from one address in 15 minutes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shared import config, login_guard
from shared.admin import auth as admin_auth
from tests.support.admin import ADMIN_PASSWORD, FUNCTIONS, audit_rows, ok

ATTACKER = {"x-forwarded-for": "198.51.100.7"}  # the test server trusts its loopback proxy
OPERATOR = {"x-forwarded-for": "203.0.113.20"}


@pytest.fixture
def http(server: str, configure):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)
    with httpx.Client(base_url=f"{server}{FUNCTIONS}", timeout=30) as client:
        yield client


def login(http: httpx.Client, password: str, headers: dict[str, str]) -> httpx.Response:
    return http.post("admin-login", json={"password": password}, headers=headers)


def test_login_returns_a_token_that_opens_admin_endpoints(http, db):
    body = ok(login(http, ADMIN_PASSWORD, OPERATOR))
    assert body["token"].startswith(admin_auth.TOKEN_PREFIX + ".") and body["expires_at"]
    assert http.get("admin-audit", headers={"authorization": f"Bearer {body['token']}"}).status_code == 200
    [event] = audit_rows(db, "admin.login")
    assert event["actor"] == "admin" and event["target"].startswith("client:")
    assert "203.0.113.20" not in event["target"] and ADMIN_PASSWORD not in str(event)


def test_expired_tampered_or_foreign_tokens_are_refused(http, configure):
    expired, _ = admin_auth.issue_token(now=time.time() - 9 * 3600)
    prefix, payload, signature = ok(login(http, ADMIN_PASSWORD, OPERATOR))["token"].split(".")
    bad_signature = f"{prefix}.{payload}.{signature[:-1]}{'B' if signature[-1] == 'A' else 'A'}"
    longer_life = f"{prefix}.{expired.split('.')[1]}.{signature}"  # another payload, the same signature
    for token in (expired, bad_signature, longer_life):
        response = http.get("admin-audit", headers={"authorization": f"Bearer {token}"})
        assert response.status_code == 401
    token = ok(login(http, ADMIN_PASSWORD, OPERATOR))["token"]
    configure(ADMIN_PASSWORD="a new password")  # changing the password signs every admin out
    assert http.get("admin-audit", headers={"authorization": f"Bearer {token}"}).status_code == 401


def test_five_failures_lock_the_address_and_not_others(http, db):
    for _ in range(5):
        response = login(http, "guess", ATTACKER)
        assert response.status_code == 401 and response.json()["code"] == "INVALID_CREDENTIALS"
    locked = login(http, ADMIN_PASSWORD, ATTACKER)  # even the right password, while locked
    assert locked.status_code == 429 and locked.json()["code"] == "LOGIN_LOCKED"
    assert 1 <= int(locked.headers["retry-after"]) <= login_guard.FAILURE_WINDOW_S
    assert "token" not in locked.json()
    assert login(http, ADMIN_PASSWORD, OPERATOR).status_code == 200
    failures, lockouts = audit_rows(db, "admin.login_failed"), audit_rows(db, "admin.login_locked")
    assert len(failures) == 5 and len(lockouts) == 1
    assert {e["target"] for e in failures} == {lockouts[0]["target"]}
    assert all(e["actor"] == "anonymous" and "guess" not in str(e["details"]) for e in failures + lockouts)


def test_failures_older_than_the_window_do_not_count(http, db):
    for _ in range(5):
        login(http, "guess", ATTACKER)
    db.execute("UPDATE audit_events SET created_at = created_at - interval '16 minutes'")
    assert login(http, ADMIN_PASSWORD, ATTACKER).status_code == 200


def test_parallel_guesses_cannot_pass_the_limit(http, server, db):
    def guess(n: int) -> int:
        response = httpx.post(
            f"{server}{FUNCTIONS}admin-login", json={"password": f"guess-{n}"}, headers=ATTACKER, timeout=30
        )
        return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(guess, range(12)))
    assert statuses == [401] * 5 + [429] * 7
    assert len(audit_rows(db, "admin.login_failed")) == 5


def test_login_needs_a_password_field(http):
    response = http.post("admin-login", json={})
    assert response.status_code == 400 and response.json()["field"] == "password"


def test_an_edge_header_counts_only_when_the_operator_names_it(http, configure):
    spoofed = [{"x-nf-client-connection-ip": f"192.0.2.{i}"} for i in range(7)]
    statuses = [login(http, "wrong", headers).status_code for headers in spoofed]
    assert statuses == [401] * 5 + [429] * 2  # one address, whatever the header claims

    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, CLIENT_IP_HEADER="x-nf-client-connection-ip")
    assert login(http, ADMIN_PASSWORD, {"x-nf-client-connection-ip": "192.0.2.99"}).status_code == 200


def test_the_password_header_is_no_side_door_for_guessing(http, db):
    guesses = [
        http.get("admin-audit", headers={**ATTACKER, "x-admin-password": f"guess-{i}"}) for i in range(6)
    ]
    assert [r.status_code for r in guesses] == [401] * 5 + [429]
    assert len(audit_rows(db, "admin.login_failed")) == 5
    right = http.get("admin-audit", headers={**ATTACKER, "x-admin-password": ADMIN_PASSWORD})
    assert right.status_code == 429  # locked out, even with the right password
    assert (
        http.get("admin-audit", headers={**OPERATOR, "x-admin-password": ADMIN_PASSWORD}).status_code == 200
    )


def test_a_token_that_is_not_ascii_is_refused_not_a_crash(http):
    for token in ("kxa1.abc.\xe9t\xe9", "\xe9\xe9\xe9"):
        response = http.get("admin-audit", headers={"authorization": f"Bearer {token}".encode("latin-1")})
        assert response.status_code == 401 and response.json()["code"] == "UNAUTHORIZED"


def test_hops_a_client_adds_to_x_forwarded_for_do_not_dodge_the_lockout(http):
    """Our proxy appends the real address; whatever the client put left of it is its own."""
    spoofed = [{"x-forwarded-for": f"192.0.2.{i}, 198.51.100.7"} for i in range(7)]
    assert [login(http, "wrong", headers).status_code for headers in spoofed] == [401] * 5 + [429] * 2
    assert login(http, ADMIN_PASSWORD, OPERATOR).status_code == 200


def test_a_forwarding_header_from_an_untrusted_peer_is_ignored(http, configure, db):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, TRUSTED_PROXIES="10.0.0.1")  # not the test client
    statuses = [login(http, "wrong", {"x-forwarded-for": f"192.0.2.{i}"}).status_code for i in range(7)]
    assert statuses == [401] * 5 + [429] * 2  # all from the one real peer
    assert len({row["target"] for row in audit_rows(db, "admin.login_failed")}) == 1


def test_past_the_global_budget_every_attempt_waits_but_the_right_password_still_works(http, configure, db):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD, ADMIN_LOGIN_GLOBAL_BUDGET="3")
    for i in range(3):  # three guessers, one failure each: no address is locked out
        assert login(http, "wrong", {"x-forwarded-for": f"192.0.2.{i}"}).status_code == 401
    started = time.monotonic()
    assert login(http, ADMIN_PASSWORD, OPERATOR).status_code == 200
    assert time.monotonic() - started >= login_guard.GLOBAL_DELAY_S


def test_production_refuses_to_start_with_a_weak_admin_setup(tmp_path):
    weak = {"ADMIN_PASSWORD": "short", "ADMIN_TOKEN_SECRET": ""}
    for env, message in (
        (weak, "ADMIN_PASSWORD must be at least 16 characters"),
        (
            {"ADMIN_PASSWORD": "a long enough password", "ADMIN_TOKEN_SECRET": ""},
            "ADMIN_TOKEN_SECRET must be set",
        ),
    ):
        run = _start_in_production(env)
        assert run.returncode != 0 and message in run.stderr, run.stderr
    good = {"ADMIN_PASSWORD": "a long enough password", "ADMIN_TOKEN_SECRET": "s" * 32}
    assert _start_in_production(good).returncode == 0
    assert _start_in_production({"ADMIN_PASSWORD": "", "ADMIN_TOKEN_SECRET": ""}).returncode == 0  # no admin


def _start_in_production(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Load what a Lambda's init and a server's start load: every function module."""
    return subprocess.run(
        [sys.executable, "-c", "import shared.host.asgi"],
        env={**os.environ, "KAIXU_ENV": "production", **env},
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
