"""Shared helpers for the admin API tests: an admin HTTP client and a few arrangements.

A test module makes the ``admin`` fixture its own with ``admin = admin_support.admin``
(pytest finds fixtures by name in the module).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

ADMIN_PASSWORD = "correct horse battery staple"
FUNCTIONS = "/.netlify/functions/"


@pytest.fixture
def admin(server: str, configure: Callable[..., Any]) -> Iterator[httpx.Client]:
    """An HTTP client that sends the admin password header with every request."""
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)
    with httpx.Client(
        base_url=f"{server}{FUNCTIONS}", headers={"x-admin-password": ADMIN_PASSWORD}, timeout=30
    ) as http:
        yield http


def ok(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """The JSON body, after checking the status (the body is in the assertion message)."""
    assert response.status_code == status, response.text
    return response.json()


def new_customer(admin: httpx.Client, email: str = "ops@example.com", **fields: Any) -> dict[str, Any]:
    """A customer and its master key (``item["key"]`` is the secret)."""
    return ok(admin.post("admin-customers", json={"email": email, **fields}), 201)["item"]


def new_key(admin: httpx.Client, customer_id: int, **fields: Any) -> dict[str, Any]:
    return ok(admin.post("admin-keys", json={"customer_id": customer_id, **fields}), 201)["item"]


def audit_rows(db: Any, action: str) -> list[dict[str, Any]]:
    return db.execute("SELECT * FROM audit_events WHERE action = %s ORDER BY id", (action,)).fetchall()


def chat(
    server: str,
    key: str,
    *,
    model: str = "gpt-4o-mini",
    install_id: str | None = None,
    app: str | None = None,
) -> httpx.Response:
    """One gateway-chat call with a Kaixu key, as a client app makes it."""
    headers = {"authorization": f"Bearer {key}"}
    if install_id:
        headers["x-kaixu-install-id"] = install_id
    if app:
        headers["x-kaixu-app"] = app
    body = {
        "provider": "openai",
        "model": model,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 16,
    }
    return httpx.post(f"{server}{FUNCTIONS}gateway-chat", json=body, headers=headers, timeout=30)


# Every table an admin write can touch: a refused write leaves all of them as they were.
WRITTEN_TABLES = (
    "customers",
    "api_keys",
    "key_devices",
    "topups",
    "monthly_usage",
    "audit_events",
    "idempotency_keys",
)


def written_rows(db: Any) -> dict[str, list[dict[str, Any]]]:
    """The rows of every table in :data:`WRITTEN_TABLES`, in a stable order."""
    return {table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall() for table in WRITTEN_TABLES}
