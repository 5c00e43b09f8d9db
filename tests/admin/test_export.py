"""admin-export: streamed CSV files that parse cleanly, guard against formulas and never leak."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import pytest

from shared import csv_stream
from tests.support.database import wait_for
from tests.support.reports import (
    ADMIN_PASSWORD,
    PASSWORD_HEADERS,
    add_usage,
    assert_admin_only,
    assert_bad_field,
)

MONTH = "2026-02"
TRICKY = {
    "comma": "a,b",
    "quote": 'say "hi"',
    "newline": "line1\nline2\r\nline3",
    "unicode": "Grüße 你好 🚀 \u2028",
}


@pytest.fixture(autouse=True)
def _admin(configure):
    configure(ADMIN_PASSWORD=ADMIN_PASSWORD)


def export(client, **params):
    return client.get("admin-export", params=params, headers=PASSWORD_HEADERS)


def parse(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))


def test_admin_export_requires_admin(client):
    assert_admin_only(client, "GET", "admin-export?type=customers", 200)


def test_usage_export_columns_money_and_tricky_text(client, db, make_key):
    key = make_key()
    for name, text in TRICKY.items():
        add_usage(db, key.customer_id, key.key_id, app=text, request_id=name, cost_nanos=4_999_999)
    add_usage(
        db, key.customer_id, key.key_id, cost_nanos=15_000_000, estimated=True, outcome="client_disconnect"
    )
    add_usage(db, key.customer_id, key.key_id, outcome="stopped", stopped_code="CAP_REACHED", clamped_to=40)
    add_usage(db, key.customer_id, key.key_id, month="2026-01", request_id="other-month")
    rows = parse(export(client, type="usage", month=MONTH, customer_id=key.customer_id))
    assert list(rows[0]) == [
        "created_at", "customer_id", "api_key_id", "provider", "model", "input_tokens", "output_tokens",
        "sell_cents", "sell_nanos", "cost_cents", "cost_nanos", "price_version_id", "sell_version_id",
        "outcome", "estimated", "install_id", "app", "build", "request_id", "clamped_to", "stopped_code",
    ]  # fmt: skip
    assert [row["app"] for row in rows[:4]] == list(TRICKY.values())
    assert [row["request_id"] for row in rows[:4]] == list(TRICKY)
    assert (rows[0]["cost_cents"], rows[0]["cost_nanos"]) == ("0", "4999999")
    dropped = rows[-2]
    assert (dropped["cost_cents"], dropped["outcome"], dropped["estimated"]) == (
        "2",
        "client_disconnect",
        "true",
    )
    assert (dropped["clamped_to"], dropped["stopped_code"]) == ("", "")
    held = rows[-1]
    assert (held["outcome"], held["stopped_code"], held["clamped_to"]) == ("stopped", "CAP_REACHED", "40")
    assert len(rows) == 6 and rows[0]["created_at"].endswith("Z")


def test_formula_injection_is_guarded(client, db, make_key):
    key = make_key()
    dangerous = ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "safe", "a=b"]
    for text in dangerous:
        add_usage(db, key.customer_id, key.key_id, app=text)
    rows = parse(export(client, type="usage", customer_id=key.customer_id))
    assert [row["app"] for row in rows] == [
        "'=HYPERLINK(\"http://evil\")", "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", "safe", "a=b",
    ]  # fmt: skip


def test_safe_cell_unit():
    assert csv_stream.safe_cell(None) == ""
    assert csv_stream.safe_cell(-5) == -5  # numbers stay numbers
    assert csv_stream.safe_cell(False) == "false"
    assert csv_stream.safe_cell(["=x"]) == '["=x"]'
    assert csv_stream.safe_cell(datetime(2026, 2, 1, tzinfo=UTC)) == "2026-02-01T00:00:00Z"


def test_filename_names_type_and_month_or_date(client):
    response = export(client, type="usage", month=MONTH)
    assert response.headers["content-disposition"] == f'attachment; filename="kaixu-usage-{MONTH}.csv"'
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    response = export(client, type="keys")
    assert response.headers["content-disposition"] == f'attachment; filename="kaixu-keys-{today}.csv"'
    assert response.content.decode().startswith("id,customer_id,last4,label,")


def test_every_type_exports_its_rows_without_secrets(client, db, make_key):
    key = make_key(customer={"email": "=cmd@example.com", "monthly_cap_cents": 900}, label="+label")
    db.execute(
        "INSERT INTO key_devices (api_key_id, install_id, customer_id, user_agent) "
        "VALUES (%s, 'dev-1', %s, %s)",
        (key.key_id, key.customer_id, TRICKY["unicode"]),
    )
    db.execute(
        "INSERT INTO topups (customer_id, month, amount_cents, actor) VALUES (%s, %s, 125, 'admin')",
        (key.customer_id, MONTH),
    )
    db.execute(
        "INSERT INTO monthly_usage (customer_id, month, spent_nanos, topup_cents, input_tokens, "
        "output_tokens, calls) VALUES (%s, %s, 25_000_001, 125, 40, 2, 3)",
        (key.customer_id, MONTH),
    )
    client.post(
        "admin-invoices", json={"customer_id": key.customer_id, "month": MONTH}, headers=PASSWORD_HEADERS
    )

    (customer,) = parse(export(client, type="customers", customer_id=key.customer_id))
    assert (customer["email"], customer["active_keys"], customer["has_netlify_token"]) == (
        "'=cmd@example.com", "1", "false",
    )  # fmt: skip
    (api_key,) = parse(export(client, type="keys", customer_id=key.customer_id))
    last4 = key.secret[-4:]  # random: escaped like any cell when it starts with "-"
    assert (api_key["label"], api_key["last4"]) == ("'+label", f"'{last4}" if last4[0] == "-" else last4)
    assert "key_hash" not in api_key and key.secret not in export(client, type="keys").text
    (device,) = parse(export(client, type="devices", customer_id=key.customer_id))
    assert (device["install_id"], device["user_agent"]) == ("dev-1", TRICKY["unicode"])
    (topup,) = parse(export(client, type="topups", customer_id=key.customer_id, month=MONTH))
    assert (topup["amount_cents"], topup["source"]) == ("125", "manual")
    (invoice,) = parse(export(client, type="invoices", customer_id=key.customer_id, month=MONTH))
    assert (invoice["version"], invoice["total_cents"], invoice["email"]) == ("1", "0", "'=cmd@example.com")
    (summary,) = parse(export(client, type="summary", month=MONTH))
    assert summary == {
        "customer_id": str(key.customer_id),
        "email": "'=cmd@example.com",
        "month": MONTH,
        "calls": "3",
        "input_tokens": "40",
        "output_tokens": "2",
        "tokens": "42",
        "spent_cents": "3",
        "spent_nanos": "25000001",
        "cap_cents": "1025",
        "topups_cents": "125",
    }
    assert parse(export(client, type="summary", month="2026-01")) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "type"),
        ({"type": "events"}, "type"),
        ({"type": "usage", "month": "2026-2"}, "month"),
        ({"type": "usage", "customer_id": "abc"}, "customer_id"),
        ({"type": "usage", "api_key_id": "0"}, "api_key_id"),
        ({"type": "keys", "month": MONTH}, "month"),
        ({"type": "customers", "api_key_id": "3"}, "api_key_id"),
    ],
)
def test_export_refuses_bad_parameters(client, params, field):
    assert_bad_field(export(client, **params), field)


def test_large_usage_export_streams_every_row_in_order(client, db, make_key):
    key = make_key()
    db.execute(
        "INSERT INTO usage_events (customer_id, api_key_id, month, provider, model, cost_nanos, sell_nanos,"
        " request_id) SELECT %s, %s, %s, 'openai', 'gpt-4o-mini', n, n, 'r' || n"
        " FROM generate_series(1, 5000) AS n",
        (key.customer_id, key.key_id, MONTH),
    )
    with client.stream("GET", "admin-export", params={"type": "usage"}, headers=PASSWORD_HEADERS) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in response.headers
        text = b"".join(response.iter_bytes()).decode()
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["request_id"] for row in rows] == [f"r{n}" for n in range(1, 5001)]
    assert sum(int(row["cost_nanos"]) for row in rows) == 5000 * 5001 // 2


def test_abandoned_download_returns_its_connection(client, db, make_key):
    key = make_key()
    db.execute(
        "INSERT INTO usage_events (customer_id, api_key_id, month, provider, model, sell_nanos, app) "
        "SELECT %s, %s, %s, 'openai', 'gpt-4o-mini', 0, repeat('x', 1000) FROM generate_series(1, 60000)",
        (key.customer_id, key.key_id, MONTH),
    )

    def export_transaction_open() -> bool:
        return bool(
            db.execute(
                "SELECT 1 FROM pg_stat_activity WHERE xact_start IS NOT NULL AND query LIKE '%%kx_export%%' "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
        )

    with client.stream("GET", "admin-export", params={"type": "usage"}, headers=PASSWORD_HEADERS) as response:
        chunks = response.iter_bytes()
        next(chunks)  # read a little, then stall: the producer holds its cursor, waiting for the reader...
        time.sleep(0.3)
        assert export_transaction_open()
    # ...and hanging up (leaving the block) makes it stop and return its connection.
    assert wait_for(lambda: not export_transaction_open(), timeout=10)  # ...until the client hung up
    assert parse(export(client, type="customers", customer_id=key.customer_id))  # the pool still works
