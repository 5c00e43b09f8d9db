"""Cap alerts: a signed webhook when a month's spend nears or reaches a cap, once per month.

For each customer (scope ``customer``, stored with api_key_id 0) and each key whose own cap
is tighter than its customer's (scope ``key``), two alerts can fire per month:
``cap_warning`` when spend reaches CAP_WARN_PCT percent of the cap, and ``cap_reached`` when
spend reaches the cap or a call is refused with 402 CAP_REACHED. A jump straight past the
cap sends both.

Deliveries are durable: each alert is one ``alert_deliveries`` row (its unique key makes it
once per customer, key, month and type), claimed with ``FOR UPDATE SKIP LOCKED`` and retried
with exponential backoff up to MAX_ATTEMPTS. The row is only created when ALERT_WEBHOOK_URL
is set, so an operator without a webhook does not burn the month's one alert (weak point 24
of the original). Without a webhook the checks return at once, without touching the database.

The gateway calls :func:`check_after_call` / :func:`check_refusal` after the response is
settled; they never raise into the caller. Something periodic (a scheduled function or
cron) should call :func:`deliver_due` to retry failed deliveries.

The body is signed: ``x-kaixu-signature: t=<unix>,v1=<hex HMAC-SHA256(ALERT_WEBHOOK_SECRET,
"<t>.<body>")>`` (the header is omitted when no secret is set).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from psycopg.types.json import Jsonb

from shared import config, db, money
from shared.money import Month

log = logging.getLogger("kaixu.alerts")

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 3600
LEASE_S = 120  # a claimed delivery is retried after this if its worker died mid-send
TIMEOUT_S = 10.0
CUSTOMER_SCOPE_KEY_ID = 0

_INSERT = (
    "INSERT INTO alert_deliveries (customer_id, api_key_id, month, alert_type, payload) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (customer_id, api_key_id, month, alert_type) DO NOTHING "
    "RETURNING id"
)
_CLAIM = """
UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => %s)
WHERE id IN (SELECT id FROM alert_deliveries
             WHERE status = 'pending' AND next_attempt_at <= now() AND (%s::bigint[] IS NULL OR id = ANY(%s))
             ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id, payload, attempts
"""


@dataclass(frozen=True)
class Alert:
    customer_id: int
    api_key_id: int  # 0 for the customer scope
    month: str
    alert_type: str
    payload: dict[str, Any]


def _alert(
    alert_type: str, customer_id: int, api_key_id: int | None, month: str, cap_cents: int, spent_nanos: int
) -> Alert:
    cap_nanos = money.nanos(cap_cents)
    pct = round(spent_nanos * 100 / cap_nanos, 1) if cap_nanos > 0 else 100.0
    payload = {
        "type": alert_type,
        "scope": "key" if api_key_id else "customer",
        "customer_id": customer_id,
        "api_key_id": api_key_id or None,
        "month": month,
        "cap_cents": cap_cents,
        "spent_cents": money.cents(spent_nanos),
        "pct": pct,
    }
    return Alert(customer_id, api_key_id or CUSTOMER_SCOPE_KEY_ID, month, alert_type, payload)


def _crossed(
    customer_id: int, api_key_id: int | None, month: str, cap_cents: int, spent_nanos: int, *, reached: bool
) -> list[Alert]:
    """The alerts a scope's figures call for (``reached`` forces cap_reached: a 402 refusal)."""
    cap_nanos = money.nanos(cap_cents)
    alerts = []
    if cap_cents > 0 and spent_nanos * 100 >= config.settings().cap_warn_pct * cap_nanos:
        alerts.append(_alert("cap_warning", customer_id, api_key_id, month, cap_cents, spent_nanos))
    if reached or (cap_cents > 0 and spent_nanos >= cap_nanos):
        alerts.append(_alert("cap_reached", customer_id, api_key_id, month, cap_cents, spent_nanos))
    return alerts


def _key_is_capped(cap_cents: int, key_cap_cents: int | None) -> bool:
    """A key alert matters only when the key's own cap binds before its customer's."""
    return key_cap_cents is not None and key_cap_cents < cap_cents


def alerts_after_call(customer_id: int, api_key_id: int | None, month: Month) -> list[Alert]:
    alerts = _crossed(customer_id, None, month.month, month.cap_cents, month.spent_nanos, reached=False)
    if (
        api_key_id
        and month.key_cap_cents is not None
        and _key_is_capped(month.cap_cents, month.key_cap_cents)
    ):
        alerts += _crossed(
            customer_id, api_key_id, month.month, month.key_cap_cents, month.key_spent_nanos, reached=False
        )
    return alerts


def alerts_for_refusal(customer_id: int, api_key_id: int | None, month: Month, scope: str) -> list[Alert]:
    if scope == "key" and api_key_id:
        return _crossed(
            customer_id,
            api_key_id,
            month.month,
            month.key_cap_cents or 0,
            month.key_spent_nanos,
            reached=True,
        )
    return _crossed(customer_id, None, month.month, month.cap_cents, month.spent_nanos, reached=True)


async def check_after_call(customer_id: int, api_key_id: int | None, month: Month) -> None:
    """After a settled call: record and send the alerts its month figures cross. Never raises."""
    await _guarded(customer_id, lambda: alerts_after_call(customer_id, api_key_id, month))


async def check_refusal(customer_id: int, api_key_id: int | None, month: Month, scope: str) -> None:
    """After a 402 CAP_REACHED refusal (``scope`` customer|key): cap_reached. Never raises."""
    await _guarded(customer_id, lambda: alerts_for_refusal(customer_id, api_key_id, month, scope))


async def _guarded(customer_id: int, crossed: Callable[[], list[Alert]]) -> None:
    """Free without a webhook (no database access); never raises into the gateway."""
    if not config.settings().alert_webhook_url:
        return
    try:
        await _record_and_send(crossed())
    except Exception:
        log.warning("cap alert check failed for customer %s", customer_id, exc_info=True)


async def _record_and_send(alerts: list[Alert]) -> None:
    if not alerts:
        return
    created = []
    async with db.connection() as conn:
        for alert in alerts:
            cur = await conn.execute(
                _INSERT,
                (alert.customer_id, alert.api_key_id, alert.month, alert.alert_type, Jsonb(alert.payload)),
            )
            row = await cur.fetchone()
            if row:
                created.append(row["id"])
    if created:
        await deliver_due(ids=created)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def _send(client: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> str | None:
    """POST one alert; None when the receiver took it (2xx), else why not (no URL in it)."""
    body = orjson.dumps(payload)
    headers = {"content-type": "application/json", "user-agent": "kaixu-gateway-alerts"}
    secret = config.settings().alert_webhook_secret
    if secret:
        headers["x-kaixu-signature"] = signature(secret, int(time.time()), body)
    try:
        response = await client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {str(exc).replace(url, '<webhook>')}"[:300]
    return None if response.is_success else f"HTTP {response.status_code}"


def backoff_s(attempts: int) -> int:
    return min(BACKOFF_BASE_S << max(0, attempts - 1), BACKOFF_MAX_S)


async def deliver_due(limit: int = 50, ids: list[int] | None = None) -> int:
    """Send pending alerts that are due (or just ``ids``); returns how many were delivered."""
    url = config.settings().alert_webhook_url
    if not url:
        return 0
    claimed = await db.fetch_all(_CLAIM, (LEASE_S, ids, ids, limit))
    delivered = 0
    async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False) as client:
        for row in claimed:
            error = await _send(client, url, row["payload"])
            await _settle(row, error)
            delivered += error is None
    return delivered


async def _settle(row: dict[str, Any], error: str | None) -> None:
    if error is None:
        await db.execute(
            "UPDATE alert_deliveries SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = %s",
            (row["id"],),
        )
        return
    final = row["attempts"] >= MAX_ATTEMPTS
    log.warning("alert %s delivery attempt %s failed: %s", row["id"], row["attempts"], error)
    await db.execute(
        "UPDATE alert_deliveries SET status = %s, last_error = %s, "
        "next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
        ("failed" if final else "pending", error, backoff_s(row["attempts"]), row["id"]),
    )
