"""admin-export: the CSV downloads, one definition per ``type``.

Each export is one SQL query (filtered by ``customer_id``, and ``month`` / ``api_key_id``
where they apply), a header and a row-to-cells function; :mod:`shared.csv_stream` streams
it. Money is shown as ``*_cents`` rounded once from the exact nanos, with the nanos beside
it. Secrets never appear: keys are shown by their last 4 characters, Netlify tokens only as
"has a token".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from shared import csv_stream, money, params
from shared.errors import bad_request
from shared.http import Ctx

Row = dict[str, Any]


def _columns(*names: str) -> Callable[[Row], list[Any]]:
    return lambda row: [row[name] for name in names]


@dataclass(frozen=True)
class Export:
    """One export type: SELECT ... FROM ... (no WHERE), its filters and ordering."""

    select: str
    filters: dict[str, str]  # query parameter -> SQL column
    order: str
    header: Sequence[str]
    cells: Callable[[Row], Sequence[Any]]


_USAGE_HEADER = (
    "created_at", "customer_id", "api_key_id", "provider", "model", "input_tokens", "output_tokens",
    "sell_cents", "sell_nanos", "cost_cents", "cost_nanos", "price_version_id", "sell_version_id",
    "outcome", "estimated", "install_id", "app", "build", "request_id", "clamped_to", "stopped_code",
)  # fmt: skip
_CUSTOMERS_HEADER = (
    "id", "email", "plan_id", "plan", "monthly_cap_cents", "is_active", "active_keys", "has_netlify_token",
    "rpm_limit", "rpd_limit", "max_concurrent", "max_devices_per_key", "require_install_id",
    "allowed_providers", "allowed_models", "created_at",
)  # fmt: skip
_KEYS_HEADER = (
    "id", "customer_id", "last4", "label", "kind", "role", "monthly_cap_cents", "rpm_limit",
    "rpd_limit", "max_devices", "max_concurrent", "require_install_id", "allowed_providers",
    "allowed_models", "created_at", "revoked_at", "last_seen_at",
)  # fmt: skip
_DEVICES_HEADER = (
    "customer_id", "api_key_id", "key_last4", "key_label", "install_id", "first_seen_at",
    "last_seen_at", "revoked_at", "revoked_by", "user_agent",
)  # fmt: skip
_TOPUPS_HEADER = (
    "id", "created_at", "customer_id", "month", "amount_cents", "source", "actor", "stripe_session_id",
)  # fmt: skip
_INVOICES_HEADER = (
    "id", "customer_id", "email", "month", "version", "status", "number", "calls", "tokens", "usage_cents",
    "push_cents", "due_cents", "total_cents", "created_at", "created_by",
)  # fmt: skip
_SUMMARY_HEADER = (
    "customer_id", "email", "month", "calls", "input_tokens", "output_tokens", "tokens",
    "spent_cents", "spent_nanos", "cap_cents", "topups_cents",
)  # fmt: skip


def _usage_cells(row: Row) -> list[Any]:
    cents = money.cents_of(row, "sell_nanos", "cost_nanos")
    return [cents[name] if name in cents else row[name] for name in _USAGE_HEADER]


def _summary_cells(row: Row) -> list[Any]:
    spent = row["spent_nanos"]
    return [
        row["customer_id"], row["email"], row["month"], row["calls"], row["input_tokens"],
        row["output_tokens"], row["input_tokens"] + row["output_tokens"], money.cents(spent), spent,
        row["cap_cents"], row["topups_cents"],
    ]  # fmt: skip


EXPORTS: dict[str, Export] = {
    "usage": Export(
        "SELECT * FROM usage_events",
        {"customer_id": "customer_id", "month": "month", "api_key_id": "api_key_id"},
        "id",
        _USAGE_HEADER,
        _usage_cells,
    ),
    "customers": Export(
        "SELECT c.*, p.name AS plan,"
        " (SELECT count(*) FROM api_keys k WHERE k.customer_id = c.id AND k.revoked_at IS NULL)"
        " AS active_keys,"
        " EXISTS (SELECT 1 FROM customer_netlify_tokens t WHERE t.customer_id = c.id)"
        " AS has_netlify_token FROM customers c JOIN plans p ON p.id = c.plan_id",
        {"customer_id": "c.id"},
        "c.id",
        _CUSTOMERS_HEADER,
        _columns(*_CUSTOMERS_HEADER),
    ),
    "keys": Export(
        "SELECT k.*, k.key_last4 AS last4 FROM api_keys k",
        {"customer_id": "k.customer_id"},
        "k.id",
        _KEYS_HEADER,
        _columns(*_KEYS_HEADER),
    ),
    "devices": Export(
        "SELECT d.*, k.key_last4, k.label AS key_label"
        " FROM key_devices d JOIN api_keys k ON k.id = d.api_key_id",
        {"customer_id": "d.customer_id", "api_key_id": "d.api_key_id"},
        "d.first_seen_at, d.api_key_id, d.install_id",
        _DEVICES_HEADER,
        _columns(*_DEVICES_HEADER),
    ),
    "topups": Export(
        "SELECT * FROM topups",
        {"customer_id": "customer_id", "month": "month"},
        "id",
        _TOPUPS_HEADER,
        _columns(*_TOPUPS_HEADER),
    ),
    "invoices": Export(
        "SELECT i.id, i.customer_id, c.email, i.month, i.version, i.status, i.number, i.total_cents,"
        " i.total_cents AS due_cents, i.created_at, i.created_by,"
        " (i.snapshot->'totals'->>'calls')::bigint AS calls, (i.snapshot->'totals'->>'tokens')::bigint"
        " AS tokens, (i.snapshot->'totals'->>'total_cents')::bigint AS usage_cents,"
        " (i.snapshot->'totals'->>'push_cents')::bigint AS push_cents"
        " FROM invoice_snapshots i JOIN customers c ON c.id = i.customer_id",
        {"customer_id": "i.customer_id", "month": "i.month"},
        "i.id",
        _INVOICES_HEADER,
        _columns(*_INVOICES_HEADER),
    ),
    "summary": Export(
        "SELECT mu.*, c.email,"
        " coalesce(c.monthly_cap_cents, p.monthly_cap_cents) + mu.topup_cents AS cap_cents,"
        " mu.topup_cents AS topups_cents"
        " FROM monthly_usage mu JOIN customers c ON c.id = mu.customer_id JOIN plans p ON p.id = c.plan_id",
        {"customer_id": "mu.customer_id", "month": "mu.month"},
        "mu.month, mu.customer_id",
        _SUMMARY_HEADER,
        _summary_cells,
    ),
}


def _filter_values(ctx: Ctx, kind: str) -> dict[str, Any]:
    """The filters given, each validated and each one that applies to this export type."""
    given = {
        "customer_id": params.int_param(ctx, "customer_id"),
        "month": params.month_param(ctx),
        "api_key_id": params.int_param(ctx, "api_key_id"),
    }
    given = {name: value for name, value in given.items() if value is not None}
    for name in given:
        if name not in EXPORTS[kind].filters:
            raise bad_request(name, f"{name} does not apply to type={kind}.")
    return given


def build_query(kind: str, filters: dict[str, Any]) -> csv_stream.Query:
    export = EXPORTS[kind]
    where = [f"{export.filters[name]} = %s" for name in filters]
    sql = export.select
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {export.order}"
    return csv_stream.Query(sql, tuple(filters.values()), export.header, export.cells)


async def download(ctx: Ctx) -> Response:
    """GET ?type=...&customer_id=&month=&api_key_id= → the CSV file, streamed."""
    kind = ctx.query.get("type", "")
    if kind not in EXPORTS:
        raise bad_request("type", f"type must be one of {', '.join(EXPORTS)}.")
    filters = _filter_values(ctx, kind)
    stamp = filters.get("month") or datetime.now(UTC).strftime("%Y-%m-%d")
    return await csv_stream.response(build_query(kind, filters), f"kaixu-{kind}-{stamp}.csv")
