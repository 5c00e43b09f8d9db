"""stripe-webhook: credit a paid Checkout Session, exactly once.

The raw body is verified with the SDK (``Stripe-Signature``: HMAC-SHA256 with
``STRIPE_WEBHOOK_SECRET``, at most 300 s old). A session credits when it is paid:
``checkout.session.completed`` with ``payment_status == "paid"``, or
``checkout.session.async_payment_succeeded`` (delayed methods complete unpaid first). The
amount is what Stripe charged (``amount_total``, in the configured currency), the customer
comes from the session's metadata (else ``client_reference_id``) and must exist, and the
month is the one the session asked for only while that is this month or the next, else
the current month: a payment never raises the cap of a month already over.

The event id and the session id are claimed (``stripe_events``) in the credit's own
transaction, so redeliveries, replays and concurrent duplicates credit once. Events that
credit nothing are acknowledged with ``{"received": true, "ignored": true}`` so Stripe does
not retry them; an unusable paid session is also audited, for an operator to look at.
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg
import stripe

from shared import audit, config, db, numbers, topups
from shared.http import ApiError, Ctx
from shared.stripe_billing import topup_months

ACTOR = "stripe"
TOLERANCE_S = 300
_PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
_IGNORED = {"received": True, "ignored": True}


def _verified_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    secret = config.settings().stripe_webhook_secret
    if not secret:
        raise ApiError(
            501, "STRIPE_NOT_CONFIGURED", "Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET."
        )
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, TOLERANCE_S)
    except (stripe.SignatureVerificationError, UnicodeDecodeError):
        raise ApiError(
            400, "INVALID_SIGNATURE", "The Stripe-Signature is missing, wrong or too old."
        ) from None
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ApiError(400, "INVALID_JSON", "The signed event is not JSON.") from None
    if not isinstance(event, dict):
        raise ApiError(400, "INVALID_JSON", "The signed event is not a JSON object.")
    return event


def _customer_id(session: dict[str, Any]) -> int | None:
    metadata = session.get("metadata") or {}
    raw = metadata.get("customer_id") or session.get("client_reference_id")
    return numbers.whole(raw)


def _month(session: dict[str, Any]) -> str:
    current, following = topup_months()
    asked = (session.get("metadata") or {}).get("month")
    return asked if asked in (current, following) else current


def _paid_session(event: dict[str, Any]) -> dict[str, Any] | None:
    """The Checkout Session object if this event means "paid", else None."""
    if event.get("type") not in _PAID_EVENTS:
        return None
    session = (event.get("data") or {}).get("object")
    if not isinstance(session, dict) or session.get("object") != "checkout.session":
        return None
    if session.get("payment_status") != "paid":
        return None
    return session


def _problem(event: dict[str, Any], session: dict[str, Any]) -> str | None:
    """Why a paid session cannot be credited, or None when it can."""
    if not isinstance(event.get("id"), str) or not isinstance(session.get("id"), str):
        return "the event or the session has no id"
    if session.get("mode") != "payment":
        return f"mode {session.get('mode')!r} is not a one-time payment"
    amount = session.get("amount_total")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return "amount_total is not a positive whole number"
    if str(session.get("currency", "")).lower() != config.settings().stripe_currency:
        return f"currency {session.get('currency')!r} is not {config.settings().stripe_currency!r}"
    if _customer_id(session) is None:
        return "the session names no customer"
    return None


async def _ignore(
    conn: psycopg.AsyncConnection, event: dict[str, Any], session: dict[str, Any], reason: str
) -> dict[str, Any]:
    details = {"event_id": event.get("id"), "session_id": session.get("id"), "reason": reason}
    await audit.record(conn, ACTOR, "stripe.event_ignored", f"stripe_event:{event.get('id')}", details)
    return _IGNORED


async def _credit(event: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    customer_id, amount, month = _customer_id(session), session["amount_total"], _month(session)
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT id FROM customers WHERE id = %s FOR KEY SHARE", (customer_id,))
        if await cur.fetchone() is None:
            return await _ignore(conn, event, session, f"customer {customer_id} does not exist")
        cur = await conn.execute(
            "INSERT INTO stripe_events (event_id, session_id, event_type, customer_id, amount_cents, month) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING event_id",
            (event["id"], session["id"], event["type"], customer_id, amount, month),
        )
        if await cur.fetchone() is None:
            return {"received": True, "duplicate": True}
        topup = await topups.credit(
            conn,
            customer_id,
            amount,
            actor=ACTOR,
            source="stripe",
            month=month,
            stripe_session_id=session["id"],
        )
        await conn.execute(
            "UPDATE stripe_events SET topup_id = %s WHERE event_id = %s", (topup["id"], event["id"])
        )
    return {"received": True, "credited": True, "topup_id": topup["id"]}


async def receive(ctx: Ctx) -> dict[str, Any]:
    event = _verified_event(await ctx.body(), ctx.headers.get("stripe-signature"))
    session = _paid_session(event)
    if session is None:
        return _IGNORED
    problem = _problem(event, session)
    if problem is not None:
        async with db.connection() as conn:
            return await _ignore(conn, event, session, problem)
    return await _credit(event, session)
