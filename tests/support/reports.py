"""Helpers shared by the admin reports tests (invoices, exports, monitor, Netlify tokens, alerts)."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

ADMIN_PASSWORD = "correct horse battery staple"
PASSWORD_HEADERS = {"x-admin-password": ADMIN_PASSWORD}


def bearer_headers(client: httpx.Client) -> dict[str, str]:
    response = client.post("admin-login", json={"password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['token']}"}


def assert_admin_only(client: httpx.Client, method: str, url: str, ok_status: int, **kwargs: Any) -> None:
    """Refused (401) without or with wrong credentials; ``ok_status`` with the password or a token."""
    for headers in (
        {},
        {"x-admin-password": "wrong"},
        {"authorization": "Bearer kxa1.forged.signature"},
        {"authorization": f"Basic {ADMIN_PASSWORD}"},
    ):
        response = client.request(method, url, headers=headers, **kwargs)
        assert response.status_code == 401, (method, url, headers, response.text)
        assert response.json()["code"] == "UNAUTHORIZED"
    for headers in (PASSWORD_HEADERS, bearer_headers(client)):
        response = client.request(method, url, headers=headers, **kwargs)
        assert response.status_code == ok_status, (method, url, response.text)


def assert_bad_field(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "INVALID_INPUT" and body["field"] == field, body


def add_usage(db: psycopg.Connection, customer_id: int, api_key_id: int, **values: Any) -> int:
    """Arrange one usage_events row directly (read-only reports need exact fixture figures)."""
    row = {
        "customer_id": customer_id,
        "api_key_id": api_key_id,
        "month": "2026-02",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_nanos": 0,
        **values,
    }
    row.setdefault("sell_nanos", row["cost_nanos"])  # sold at cost unless the test says otherwise
    placeholders = ", ".join(["%s"] * len(row))
    sql = f"INSERT INTO usage_events ({', '.join(row)}) VALUES ({placeholders}) RETURNING id"
    return db.execute(sql, list(row.values())).fetchone()["id"]


def audit_rows(db: psycopg.Connection, action: str) -> list[dict[str, Any]]:
    return db.execute("SELECT * FROM audit_events WHERE action = %s ORDER BY id", (action,)).fetchall()
