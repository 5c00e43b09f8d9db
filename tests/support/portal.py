"""Helpers for the customer portal's tests: a signed-in customer as an HTTP client.

    alice = portal_support.sign_in(server, admin, "alice@example.com")
    alice.http.get("customer-summary")        # Authorization: Bearer <customer session token>
    alice.master_key, alice.customer_id       # what the operator created

``admin`` is the admin client of ``tests.support.admin`` (it also sets ADMIN_PASSWORD, which
the portal's session secret derives from when ADMIN_TOKEN_SECRET is unset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.admin import FUNCTIONS, new_customer, ok


@dataclass
class Customer:
    customer_id: int
    email: str
    master_key: str
    master_key_id: int
    token: str
    http: httpx.Client


def session_client(server: str, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server}{FUNCTIONS}", headers={"authorization": f"Bearer {token}"}, timeout=30
    )


def log_in(server: str, key: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{server}{FUNCTIONS}customer-login", json={"key": key}, headers=headers, timeout=30)


def sign_in(server: str, admin: httpx.Client, email: str, **customer_fields: Any) -> Customer:
    """A new customer (made by the operator) signed in to the portal with its master key."""
    created = new_customer(admin, email, **customer_fields)
    token = ok(log_in(server, created["key"]))["token"]
    return Customer(
        created["id"], email, created["key"], created["key_id"], token, session_client(server, token)
    )
