"""Cap alerts: a signed webhook when a month's spend nears or reaches a cap, once per month.

For each customer (scope ``customer``, stored with api_key_id 0) and each key whose own cap
is tighter than its customer's (scope ``key``), two alerts can fire per month:
``cap_warning`` when spend reaches CAP_WARN_PCT percent of the cap, and ``cap_reached`` when
spend reaches the cap or a call is refused with 402 CAP_REACHED. A jump straight past the
cap sends both.

An alert goes to two kinds of receiver, each on its own: the operator's ALERT_WEBHOOK_URL
(rows of ``alert_deliveries``) and the customer's own webhook, set in the portal (rows of
``customer_alert_deliveries``, see ``shared.portal.webhook``). Deliveries are durable: each
is one row whose unique key makes it once per customer, key, month and type, claimed with
``FOR UPDATE SKIP LOCKED`` and retried with exponential backoff up to MAX_ATTEMPTS. A row
is only created when its receiver exists, so an operator or customer without a webhook
does not burn the month's one alert (weak point 24 of the original).

Cost: the crossings are worked out in memory, so a call that crosses nothing never touches
the database. When one does cross, without ALERT_WEBHOOK_URL the check still skips the
database while a cached flag (re-read at most every WEBHOOKS_FLAG_TTL_S) says no customer
has a webhook at all; a webhook set in another process is seen within that time, and since
spend only grows, the next call that crosses again records what was skipped.

The gateway calls :func:`check_after_call` / :func:`check_refusal` after the response is
settled; they never raise into the caller. Something periodic (a scheduled function or
cron) should call :func:`deliver_due` to retry failed deliveries of both kinds.

The body is signed: ``x-kaixu-signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
with ALERT_WEBHOOK_SECRET for the operator (the header is omitted when none is set) and the
customer's own secret for its webhook. A receiver's URL and secret are only ever used for
its own deliveries, and stored errors never contain the URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from psycopg.types.json import Jsonb

from shared import config, db, money
from shared.money import Month

if TYPE_CHECKING:  # loaded when a delivery is sent: the gateway imports this module on its hot path
    import httpx

log = logging.getLogger("kaixu.alerts")

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 30
BACKOFF_MAX_S = 3600
LEASE_S = 120  # a claimed delivery is retried after this if its worker died mid-send
TIMEOUT_S = 10.0
SEND_CONCURRENCY = 8  # receivers sent to at once: one slow webhook does not hold up the rest
WEBHOOKS_FLAG_TTL_S = 60.0
CUSTOMER_SCOPE_KEY_ID = 0
TEST_ALERT = "webhook.test"

# The two kinds of delivery, by table (code constants, never input).
OPERATOR = "alert_deliveries"
CUSTOMER = "customer_alert_deliveries"

_INSERT = (
    "INSERT INTO alert_deliveries (customer_id, api_key_id, month, alert_type, payload) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (customer_id, api_key_id, month, alert_type) DO NOTHING "
    "RETURNING id"
)
_INSERT_CUSTOMER = (
    "INSERT INTO customer_alert_deliveries (customer_id, api_key_id, month, alert_type, payload) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (customer_id, api_key_id, month, alert_type) "
    "WHERE alert_type <> 'webhook.test' DO NOTHING RETURNING id"
)
_CLAIM = """
UPDATE {table} SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => %s)
WHERE id IN (SELECT id FROM {table}
             WHERE status = 'pending' AND next_attempt_at <= now() AND (%s::bigint[] IS NULL OR id = ANY(%s))
             ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id, customer_id, alert_type, payload, attempts
"""
NO_WEBHOOK = "the customer has no webhook set"


class Alert(NamedTuple):
    customer_id: int
    api_key_id: int  # 0 for the customer scope
    month: str
    alert_type: str
    payload: dict[str, Any]


class Receiver(NamedTuple):
    """Where one kind of delivery goes: the URL, the secret that signs ('' for none), and
    whether it must be a public address (a customer's URL: the server makes the request)."""

    url: str
    secret: str
    public_only: bool = False


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


class _WebhooksFlag:
    """Whether any customer has a webhook, read at most every WEBHOOKS_FLAG_TTL_S: lets a
    deployment without the operator's webhook skip the database when nobody listens."""

    def __init__(self) -> None:
        self.value = False
        self.read_at: float | None = None

    async def any(self) -> bool:
        now = time.monotonic()
        if self.read_at is None or now - self.read_at >= WEBHOOKS_FLAG_TTL_S:
            row = await db.fetch_row("SELECT EXISTS (SELECT 1 FROM customer_webhooks) AS any")
            self.value, self.read_at = bool(row["any"]), now
        return self.value

    def saw_one(self) -> None:
        self.value, self.read_at = True, time.monotonic()


_webhooks = _WebhooksFlag()


def customer_webhook_set() -> None:
    """A customer just set its webhook in this process: stop skipping customers' alerts now."""
    _webhooks.saw_one()


async def _guarded(customer_id: int, crossed: Callable[[], list[Alert]]) -> None:
    """Free when nothing is crossed or nobody listens (no database access); never raises into
    the gateway."""
    try:
        alerts = crossed()
        if not alerts:
            return
        operator = bool(config.settings().alert_webhook_url)
        if not operator and not await _webhooks.any():
            return
        await _record_and_send(alerts, operator)
    except Exception:
        log.warning("cap alert check failed for customer %s", customer_id, exc_info=True)


async def _insert_all(conn: db.Connection, sql: str, alerts: list[Alert]) -> list[int]:
    created = []
    for alert in alerts:
        cur = await conn.execute(
            sql, (alert.customer_id, alert.api_key_id, alert.month, alert.alert_type, Jsonb(alert.payload))
        )
        row = await cur.fetchone()
        if row:
            created.append(row["id"])
    return created


async def _record_and_send(alerts: list[Alert], operator: bool = True) -> None:
    """Record the alerts for the operator (when ``operator``: its webhook is set) and for the
    customer when it has a webhook, then send what is new. ``alerts`` are one customer's."""
    if not alerts:
        return
    async with db.connection() as conn:
        for_operator = await _insert_all(conn, _INSERT, alerts) if operator else []
        cur = await conn.execute(
            "SELECT 1 FROM customer_webhooks WHERE customer_id = %s", (alerts[0].customer_id,)
        )
        for_customer = await _insert_all(conn, _INSERT_CUSTOMER, alerts) if await cur.fetchone() else []
    if for_operator:
        await _deliver(OPERATOR, ids=for_operator)
    if for_customer:
        await _deliver(CUSTOMER, ids=for_customer)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def secret_associated_data(customer_id: int) -> bytes:
    """Binds a sealed webhook secret to its customer: copied onto another row, it does not open."""
    return f"kaixu:webhook-secret:customer:{customer_id}".encode()


async def _send(client: httpx.AsyncClient, receiver: Receiver, payload: dict[str, Any]) -> str | None:
    """POST one delivery; None when the receiver took it (2xx), else why not (no URL in it)."""
    body = orjson.dumps(payload)
    headers = {"content-type": "application/json", "user-agent": "kaixu-gateway-alerts"}
    if receiver.secret:
        headers["x-kaixu-signature"] = signature(receiver.secret, int(time.time()), body)
    from shared import public_address  # like httpx, loaded only when something is sent

    try:
        url, extensions = await _target(receiver, headers)
    except public_address.NotPublic as exc:
        return f"{exc}: not sent"[:300]
    import httpx

    try:
        response = await client.post(url, content=body, headers=headers, extensions=extensions)
    except httpx.HTTPError as exc:
        message = str(exc).replace(receiver.url, "<webhook>").replace(url, "<webhook>")
        return f"{type(exc).__name__}: {message}"[:300]
    return None if response.is_success else f"HTTP {response.status_code}"


async def _target(receiver: Receiver, headers: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """The URL to POST to and the request's extensions. A customer's URL is resolved and every
    address it names checked first (``shared.public_address``); the request then goes to that
    address, with the name in its Host header and for TLS."""
    if not receiver.public_only:
        return receiver.url, {}
    from shared import public_address

    allow_loopback = config.settings().environment != "production"
    url, headers["host"], server_name = await public_address.pin(receiver.url, allow_loopback=allow_loopback)
    return url, {"sni_hostname": server_name}


def backoff_s(attempts: int) -> int:
    return min(BACKOFF_BASE_S << max(0, attempts - 1), BACKOFF_MAX_S)


async def deliver_due(limit: int = 50) -> int:
    """Send pending deliveries that are due, the operator's and the customers'; returns how
    many were delivered."""
    return await _deliver(OPERATOR, limit=limit) + await _deliver(CUSTOMER, limit=limit)


async def send_to_customer(ids: list[int]) -> int:
    """Send these rows of ``customer_alert_deliveries`` now (when pending and due)."""
    return await _deliver(CUSTOMER, ids=ids)


async def _deliver(table: str, ids: list[int] | None = None, limit: int = 50) -> int:
    """Claim due rows of ``table`` (or just ``ids``), send each to its receiver, settle it."""
    if table == OPERATOR and not config.settings().alert_webhook_url:
        return 0  # the operator's rows wait until its webhook is set again
    claimed = await db.fetch_all(_CLAIM.format(table=table), (LEASE_S, ids, ids, limit))
    if not claimed:
        return 0
    receivers = await _receivers(table, {row["customer_id"] for row in claimed})
    gate = asyncio.Semaphore(SEND_CONCURRENCY)
    import httpx

    # No connection is kept for another delivery: one is made to an address, and its TLS
    # checked for the name of the delivery that made it, not of the next one to that address.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False, limits=no_reuse) as client:

        async def one_customer(rows: list[dict[str, Any]]) -> int:
            """A customer's rows in order (a warning before its cap_reached)."""
            async with gate:
                sent = 0
                for row in rows:
                    sent += await _attempt(client, table, row, receivers.get(row["customer_id"], NO_WEBHOOK))
                return sent

        return sum(await asyncio.gather(*(one_customer(rows) for rows in _by_customer(claimed))))


def _by_customer(rows: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["customer_id"], []).append(row)
    return list(groups.values())


async def _receivers(table: str, customer_ids: set[int]) -> dict[int, Receiver | str]:
    """Each customer's receiver for ``table``, or why there is none (a sentence, no secret)."""
    if table == OPERATOR:
        cfg = config.settings()
        operator = Receiver(cfg.alert_webhook_url, cfg.alert_webhook_secret)
        return dict.fromkeys(customer_ids, operator)
    from shared import crypto  # the gateway imports this module: its cold start skips the cipher

    rows = await db.fetch_all(
        "SELECT customer_id, url, secret_enc FROM customer_webhooks WHERE customer_id = ANY(%s)",
        (list(customer_ids),),
    )
    receivers: dict[int, Receiver | str] = {}
    for row in rows:
        customer_id = row["customer_id"]
        try:
            secret = crypto.open_sealed(row["secret_enc"], secret_associated_data(customer_id))
        except (crypto.DecryptionError, crypto.EncryptionNotConfigured) as exc:
            receivers[customer_id] = f"the webhook's signing secret cannot be opened: {exc}"[:300]
            continue
        receivers[customer_id] = Receiver(row["url"], secret, public_only=True)
    return receivers


async def _attempt(
    client: httpx.AsyncClient, table: str, row: dict[str, Any], receiver: Receiver | str
) -> int:
    """One delivery attempt, settled; 1 when it was delivered. A test delivery is tried once,
    and a delivery to a webhook that was removed is not retried."""
    error = await _send(client, receiver, row["payload"]) if isinstance(receiver, Receiver) else receiver
    final = row["alert_type"] == TEST_ALERT or error == NO_WEBHOOK
    await _settle(table, row, error, final=final)
    return int(error is None)


async def _settle(table: str, row: dict[str, Any], error: str | None, *, final: bool = False) -> None:
    if error is None:
        await db.execute(
            f"UPDATE {table} SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = %s",
            (row["id"],),
        )
        return
    final = final or row["attempts"] >= MAX_ATTEMPTS
    log.warning("alert %s %s delivery attempt %s failed: %s", table, row["id"], row["attempts"], error)
    await db.execute(
        f"UPDATE {table} SET status = %s, last_error = %s, "
        "next_attempt_at = now() + make_interval(secs => %s) WHERE id = %s",
        ("failed" if final else "pending", error, backoff_s(row["attempts"]), row["id"]),
    )
