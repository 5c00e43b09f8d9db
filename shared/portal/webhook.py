"""customer-webhook: the customer's own webhook for cap alerts, and its delivery log.

A customer sets one URL; cap warnings and reached caps (see ``shared.billing.alerts``) are
then also POSTed there, signed like the operator's (``x-kaixu-signature``) but with a secret
of the customer's own. The secret is generated here and shown once, in the response that
made it; it is stored sealed (``shared.crypto``, bound to the customer) and only its last
four characters are shown again. Every query is scoped to the session's customer: there is
no id to pass, so a customer can neither read nor change another's webhook or deliveries.

The URL must be https (http only for a loopback host, where a local receiver listens). An
address that names an internal host outright (a private, link-local or reserved IP, and in
production loopback too) is refused, since the server, not the customer, makes the request;
a name is judged by what it resolves to when each delivery is sent (``shared.public_address``).
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from psycopg.types.json import Jsonb

from shared import audit, config, crypto, db, fields, params, public_address, throttle
from shared.admin import accounts
from shared.billing import alerts
from shared.errors import ApiError, bad_request
from shared.http import Ctx

MAX_URL = 2000
SECRET_PREFIX = "whsec_"
DEFAULT_LOG_LIMIT = 20
MAX_LOG_LIMIT = 100
TESTS_PER_MINUTE = 10  # test deliveries a customer may send a minute: the server makes the request
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

_VIEW = "SELECT url, secret_last4, created_at, updated_at FROM customer_webhooks WHERE customer_id = %s"
_DELIVERY = (
    "SELECT id, alert_type, month, nullif(api_key_id, 0) AS api_key_id, status, attempts, last_error, "
    "created_at, sent_at FROM customer_alert_deliveries"
)
_UPSERT = """
INSERT INTO customer_webhooks (customer_id, url, secret_enc, key_id, secret_last4)
VALUES (%(customer)s, %(url)s, %(sealed)s, %(key_id)s, %(last4)s)
ON CONFLICT (customer_id) DO UPDATE SET
    url = excluded.url,
    secret_enc = CASE WHEN %(rotate)s THEN excluded.secret_enc ELSE customer_webhooks.secret_enc END,
    key_id = CASE WHEN %(rotate)s THEN excluded.key_id ELSE customer_webhooks.key_id END,
    secret_last4 = CASE WHEN %(rotate)s THEN excluded.secret_last4 ELSE customer_webhooks.secret_last4 END,
    updated_at = now()
RETURNING url, secret_last4, created_at, updated_at, (xmax = 0) AS inserted
"""


def _check_host(scheme: str, host: str) -> None:
    loopback = public_address.is_loopback(host)
    if scheme == "http" and host not in _LOOPBACK:
        raise bad_request("url", "url must use https:// (http:// only for 127.0.0.1, localhost or ::1).")
    if loopback and config.settings().environment == "production":
        raise bad_request("url", "url must be a public address: this server cannot call its own host.")
    address = public_address.ip_named(host)
    if not loopback and address is not None and public_address.refused(address, allow_loopback=False):
        raise bad_request("url", "url must be a public address, not a private or reserved IP.")


def clean_url(value: Any) -> str:
    """A webhook URL a customer may set, or 400 naming ``url``."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request("url", "url is required: the https:// address that receives your alerts.")
    url = value.strip()
    if len(url) > MAX_URL:
        raise bad_request("url", f"url may be at most {MAX_URL} characters.")
    if not url.isprintable() or any(ch.isspace() for ch in url):
        raise bad_request("url", "url must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        raise bad_request("url", "url is not a valid URL.") from None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in ("https", "http") or not host:
        raise bad_request(
            "url", "url must be an absolute https:// URL, like https://example.com/hooks/kaixu."
        )
    if "@" in parts.netloc:
        raise bad_request("url", "url must not contain credentials (user:password@): sign with the secret.")
    try:
        host = public_address.ascii_name(host)
    except public_address.NotPublic:
        raise bad_request("url", "url's host is not a valid name.") from None
    _check_host(scheme, host)
    return url


def _rotate_flag(body: dict[str, Any]) -> bool:
    value = body.get("rotate_secret", False)
    if not isinstance(value, bool):
        raise bad_request("rotate_secret", "rotate_secret must be true or false.")
    return value


def _sealed(customer_id: int, secret: str) -> str:
    try:
        return crypto.seal(secret, alerts.secret_associated_data(customer_id))
    except crypto.EncryptionNotConfigured as exc:
        raise ApiError(503, "ENCRYPTION_NOT_CONFIGURED", str(exc)) from None


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in ("url", "secret_last4", "created_at", "updated_at")}


def _log_limit(ctx: Ctx) -> int:
    limit = params.int_param(ctx, "limit") or DEFAULT_LOG_LIMIT
    if limit > MAX_LOG_LIMIT:
        raise bad_request("limit", f"limit may be at most {MAX_LOG_LIMIT}.")
    return limit


async def get(ctx: Ctx) -> dict[str, Any]:
    """GET: the webhook (never its secret) and its latest deliveries, newest first."""
    limit = _log_limit(ctx)
    row = await db.fetch_one(_VIEW, (ctx.customer,))
    deliveries = await db.fetch_all(
        f"{_DELIVERY} WHERE customer_id = %s ORDER BY id DESC LIMIT %s", (ctx.customer, limit)
    )
    return {"item": row and _view(row), "deliveries": deliveries}


async def put(ctx: Ctx) -> dict[str, Any]:
    """PUT {url, rotate_secret?}: set or replace the URL. A signing secret is made when there
    is none yet or ``rotate_secret`` asks, and returned once as ``secret``."""
    body = await ctx.json_object()
    fields.reject_unknown(body, ("url", "rotate_secret"))
    url, rotate = clean_url(body.get("url")), _rotate_flag(body)
    customer_id = ctx.customer
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    sealed = _sealed(customer_id, secret)
    values = {
        "customer": customer_id,
        "url": url,
        "sealed": sealed,
        "key_id": crypto.key_id(sealed),
        "last4": secret[-4:],
        "rotate": rotate,
    }
    async with db.connection() as conn, conn.transaction():
        row = await db.one(await conn.execute(_UPSERT, values))
        new_secret = row["inserted"] or rotate
        details = {"replaced": not row["inserted"], "secret_rotated": rotate and not row["inserted"]}
        await audit.record(conn, str(ctx.actor), "customer.webhook_set", f"customer:{customer_id}", details)
    alerts.customer_webhook_set()
    return {"item": _view(row), "secret": secret} if new_secret else {"item": _view(row)}


async def delete(ctx: Ctx) -> dict[str, Any]:
    """DELETE: remove the webhook (again: nothing to do). Deliveries still pending for it
    fail now rather than wait for a URL that is gone; the log stays."""
    customer_id = ctx.customer
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute("DELETE FROM customer_webhooks WHERE customer_id = %s", (customer_id,))
        if cur.rowcount:
            await conn.execute(
                "UPDATE customer_alert_deliveries SET status = 'failed', last_error = %s "
                "WHERE customer_id = %s AND status = 'pending'",
                (alerts.NO_WEBHOOK, customer_id),
            )
            await audit.record(conn, str(ctx.actor), "customer.webhook_delete", f"customer:{customer_id}")
    return {"item": None}


async def _refuse_too_many_tests(customer_id: int) -> None:
    verdict = await throttle.hit(
        "customer-webhook-test", f"customer:{customer_id}", limit=TESTS_PER_MINUTE, window_s=60
    )
    if not verdict.allowed:
        raise ApiError(
            429,
            "RATE_LIMITED",
            f"At most {TESTS_PER_MINUTE} test deliveries a minute; retry in {verdict.retry_after_s} s.",
            headers={"retry-after": str(verdict.retry_after_s)},
        )


async def send_test(ctx: Ctx) -> dict[str, Any]:
    """POST ?action=test: one signed ``webhook.test`` delivery now, tried once and logged."""
    if ctx.query.get("action") != "test":
        raise bad_request("action", "action must be test.")
    customer_id = ctx.customer
    if await db.fetch_one("SELECT 1 FROM customer_webhooks WHERE customer_id = %s", (customer_id,)) is None:
        raise ApiError(409, "WEBHOOK_NOT_SET", "Set a webhook URL (PUT) before sending a test delivery.")
    await _refuse_too_many_tests(customer_id)
    month = accounts.current_month()
    payload = {"type": alerts.TEST_ALERT, "customer_id": customer_id, "month": month, "test": True}
    row = await db.fetch_row(
        "INSERT INTO customer_alert_deliveries (customer_id, month, alert_type, payload) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        (customer_id, month, alerts.TEST_ALERT, Jsonb(payload)),
    )
    await alerts.send_to_customer([row["id"]])
    return {"item": await db.fetch_row(f"{_DELIVERY} WHERE id = %s", (row["id"],))}
