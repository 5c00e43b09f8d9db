"""Every admin endpoint refuses missing or wrong credentials with 401 (writing nothing) and
accepts both a Bearer token from admin-login and the x-admin-password header."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.admin import ADMIN_PASSWORD, FUNCTIONS, new_customer, new_key, ok, written_rows
from tests.support.fakes.stripe_api import FakeStripe, serve_fake_stripe


@dataclass(frozen=True)
class World:
    customer_id: int
    key_id: int
    spare_key_id: int


Request = Callable[[World], tuple[str, str, dict[str, Any]]]

# (method, function, request options) for one valid request per endpoint and method.
REQUESTS: dict[str, Request] = {
    "list customers": lambda w: ("GET", "admin-customers", {}),
    "read customer": lambda w: ("GET", "admin-customers", {"params": {"id": w.customer_id}}),
    "create customer": lambda w: ("POST", "admin-customers", {"json": {"email": "new@example.com"}}),
    "patch customer": lambda w: (
        "PATCH",
        "admin-customers",
        {"params": {"id": w.customer_id}, "json": {"rpm_limit": 5}},
    ),
    "list keys": lambda w: ("GET", "admin-keys", {"params": {"customer_id": w.customer_id}}),
    "create key": lambda w: ("POST", "admin-keys", {"json": {"customer_id": w.customer_id}}),
    "patch key": lambda w: ("PATCH", "admin-keys", {"params": {"id": w.key_id}, "json": {"label": "x"}}),
    "rotate key": lambda w: ("POST", "admin-keys", {"params": {"id": w.key_id, "action": "rotate"}}),
    "revoke key": lambda w: ("POST", "admin-keys", {"params": {"id": w.spare_key_id, "action": "revoke"}}),
    "delete key": lambda w: ("DELETE", "admin-keys", {"params": {"id": w.spare_key_id}}),
    "list devices": lambda w: ("GET", "admin-devices", {"params": {"customer_id": w.customer_id}}),
    "revoke device": lambda w: (
        "POST",
        "admin-devices",
        {"params": {"action": "revoke", "id": f"{w.key_id}:d1"}},
    ),
    "list usage": lambda w: ("GET", "admin-usage", {"params": {"customer_id": w.customer_id}}),
    "usage summary": lambda w: (
        "GET",
        "admin-usage",
        {"params": {"customer_id": w.customer_id, "view": "summary"}},
    ),
    "list topups": lambda w: ("GET", "admin-topups", {"params": {"customer_id": w.customer_id}}),
    "create topup": lambda w: (
        "POST",
        "admin-topups",
        {"json": {"customer_id": w.customer_id, "amount_cents": 5}},
    ),
    "stripe checkout": lambda w: (
        "POST",
        "admin-stripe-checkout",
        {"json": {"customer_id": w.customer_id, "amount_cents": 500}},
    ),
    "audit log": lambda w: ("GET", "admin-audit", {}),
}


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeStripe]:
    yield from serve_fake_stripe()


@pytest.fixture
def world(server: str, configure, db, stripe_server: FakeStripe) -> World:
    configure(
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        STRIPE_SECRET_KEY=stripe_server.secret_key,
        STRIPE_API_BASE=stripe_server.url,
    )
    with httpx.Client(base_url=f"{server}{FUNCTIONS}", headers={"x-admin-password": ADMIN_PASSWORD}) as admin:
        customer = new_customer(admin)
        key, spare = new_key(admin, customer["id"]), new_key(admin, customer["id"])
    db.execute(
        "INSERT INTO key_devices (api_key_id, install_id, customer_id) VALUES (%s, 'd1', %s)",
        (key["id"], customer["id"]),
    )
    return World(customer["id"], key["id"], spare["id"])


def _snapshot(db) -> dict[str, list[dict[str, Any]]]:
    """Every written table, less the audit of failed password checks (which is the point)."""
    rows = written_rows(db)
    rows["audit_events"] = [r for r in rows["audit_events"] if r["action"] != "admin.login_failed"]
    return rows


def _login(server: str) -> str:
    response = httpx.post(f"{server}{FUNCTIONS}admin-login", json={"password": ADMIN_PASSWORD})
    return ok(response)["token"]


@pytest.mark.parametrize("credential", ["bearer", "password"])
@pytest.mark.parametrize("name", list(REQUESTS))
def test_endpoint_needs_admin_credentials(name: str, credential: str, server: str, world: World, db):
    method, function, options = REQUESTS[name](world)
    token = _login(server)
    before = _snapshot(db)
    bad_credentials = [
        {},
        {"x-admin-password": "wrong"},
        {"authorization": "Bearer not-a-token"},
        {"authorization": f"Bearer {token}x"},
        {"authorization": f"Basic {token}"},
    ]
    with httpx.Client(base_url=f"{server}{FUNCTIONS}", timeout=30) as http:
        for headers in bad_credentials:
            response = http.request(method, function, headers=headers, **options)
            assert response.status_code == 401, (headers, response.text)
            assert response.json()["code"] == "UNAUTHORIZED"
        assert _snapshot(db) == before  # a refused request writes nothing
        good = (
            {"authorization": f"Bearer {token}"}
            if credential == "bearer"
            else {"x-admin-password": ADMIN_PASSWORD}
        )
        response = http.request(method, function, headers=good, **options)
    assert response.status_code in (200, 201), response.text


def test_the_webhook_needs_no_admin_credentials(server, configure):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)
    response = httpx.post(f"{server}{FUNCTIONS}stripe-webhook", content=b"{}")
    assert response.status_code == 501  # not 401: Stripe authenticates by signature


def test_admin_endpoints_are_closed_when_no_admin_password_is_set(server):
    response = httpx.get(f"{server}{FUNCTIONS}admin-customers", headers={"x-admin-password": ""})
    assert response.status_code == 503 and response.json()["code"] == "ADMIN_NOT_CONFIGURED"
