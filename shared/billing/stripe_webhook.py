"""stripe-webhook: credit a paid Checkout Session exactly once; take it back on a refund or dispute.

The raw body is verified with the SDK (``Stripe-Signature``: HMAC-SHA256 with
``STRIPE_WEBHOOK_SECRET``, at most 300 s old). A session credits when it is paid:
``checkout.session.completed`` with ``payment_status == "paid"``, or
``checkout.session.async_payment_succeeded`` (delayed methods complete unpaid first). The
amount is what Stripe charged (``amount_total``, in the configured currency), the customer
comes from the session's ``metadata.customer_id``, which only a session this gateway created
carries (a bare ``client_reference_id`` can come from any payment link), and must exist; the
month is the one the session asked for only while that is this month or the next, else
the current month: a payment never raises the cap of a month already over.

Money that goes back takes its credit back: ``charge.refunded`` and ``charge.dispute.created``
find the credit by the payment intent and book a negative top-up (on the credited month while
it is this month or the next, else this one), never more in all than the payment credited;
each reversal is audited with what was asked and what was taken, and a month's credit that
goes below zero says so in its audit entry (the customer's cap drops with it).

A payment that fails (``checkout.session.async_payment_failed``: a delayed method such as a
bank debit did not go through; ``payment_intent.payment_failed``: a card was declined or a
debit bounced) is recorded once per event in ``stripe_payment_failures`` for the operator's
overview, with the amount and Stripe's reason, when it belongs to one of this gateway's
customers (``metadata.customer_id``, which our sessions also put on their payment intent).
It credits and takes back nothing. ``checkout.session.expired`` is not a failure (the
customer walked away; nothing was charged) and is ignored like any other event.

The event id and the session id are claimed (``stripe_events``) in the credit's own
transaction, so redeliveries, replays and concurrent duplicates credit once. Events that
credit nothing are acknowledged with ``{"received": true, "ignored": true}`` so Stripe does
not retry them; an unusable paid session is also audited, for an operator to look at.
"""

from __future__ import annotations

from typing import Any

import orjson

from shared import audit, config, db, numbers
from shared.billing import topups
from shared.billing.stripe_checkout import topup_months
from shared.errors import ApiError
from shared.http import Ctx

ACTOR = "stripe"
TOLERANCE_S = 300
_PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
_REVERSALS = {"charge.refunded": "charge", "charge.dispute.created": "dispute"}
# Failed payments: the event type → the Stripe object it carries, and where its amount is.
_FAILURES = {
    "checkout.session.async_payment_failed": ("checkout.session", "amount_total"),
    "payment_intent.payment_failed": ("payment_intent", "amount"),
}
_MAX_REASON = 500
_IGNORED = {"received": True, "ignored": True}


def _verified_event(payload: bytes, signature: str | None) -> dict[str, Any]:
    secret = config.settings().stripe_webhook_secret
    if not secret:
        raise ApiError(
            501, "STRIPE_NOT_CONFIGURED", "Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET."
        )
    import stripe  # 0.13 s to import: only the function that verifies events pays for it

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
    return numbers.whole(metadata.get("customer_id")) if isinstance(metadata, dict) else None


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
        return "the session carries no metadata.customer_id (it was not created by this gateway)"
    return None


async def _ignore(
    conn: db.Connection, event: dict[str, Any], session: dict[str, Any], reason: str
) -> dict[str, Any]:
    details = {"event_id": event.get("id"), "session_id": session.get("id"), "reason": reason}
    await audit.record(conn, ACTOR, "stripe.event_ignored", f"stripe_event:{event.get('id')}", details)
    return _IGNORED


async def _credit(event: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    customer_id, amount, month = _customer_id(session), session["amount_total"], _month(session)
    assert customer_id is not None  # _problem refused a session without one
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT id FROM customers WHERE id = %s FOR KEY SHARE", (customer_id,))
        if await cur.fetchone() is None:
            return await _ignore(conn, event, session, f"customer {customer_id} does not exist")
        cur = await conn.execute(
            "INSERT INTO stripe_events (event_id, session_id, event_type, customer_id, amount_cents, month, "
            "payment_intent) VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING event_id",
            (
                event["id"],
                session["id"],
                event["type"],
                customer_id,
                amount,
                month,
                _text(session, "payment_intent"),
            ),
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


def _text(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    return value if isinstance(value, str) and value else None


def _taken_back(event: dict[str, Any]) -> tuple[dict[str, Any], str, int] | None:
    """For a refund or a dispute: the Stripe object, its payment intent, and the cents this
    event says went back (a refund's running total, a dispute's amount); else None."""
    kind = _REVERSALS.get(str(event.get("type")))
    obj = (event.get("data") or {}).get("object")
    if kind is None or not isinstance(obj, dict) or obj.get("object") != kind:
        return None
    intent = _text(obj, "payment_intent")
    amount = obj.get("amount_refunded" if kind == "charge" else "amount")
    if intent is None or isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return None
    return obj, intent, amount


async def _reverse(event: dict[str, Any], obj: dict[str, Any], intent: str, amount: int) -> dict[str, Any]:
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT customer_id, amount_cents, month FROM stripe_events WHERE payment_intent = %s FOR UPDATE",
            (intent,),
        )
        credit = await cur.fetchone()
        if credit is None:
            return await _ignore(conn, event, obj, f"no credit was paid by payment {intent}")
        cur = await conn.execute(
            "SELECT coalesce(sum(reversed_cents), 0)::bigint AS done FROM stripe_reversals"
            " WHERE payment_intent = %s",
            (intent,),
        )
        done = (await db.one(cur))["done"]
        total = amount if event["type"] == "charge.refunded" else done + amount  # refunds count up
        reversed_cents = max(0, min(total, credit["amount_cents"]) - done)
        month = _month({"metadata": {"month": credit["month"]}})
        cur = await conn.execute(
            "INSERT INTO stripe_reversals (event_id, event_type, payment_intent, customer_id, month,"
            " asked_cents, reversed_cents) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING RETURNING event_id",
            (event["id"], event["type"], intent, credit["customer_id"], month, amount, reversed_cents),
        )
        if await cur.fetchone() is None:
            return {"received": True, "duplicate": True}
        details: dict[str, Any] = {
            "payment_intent": intent,
            "asked_cents": amount,
            "reversed_cents": reversed_cents,
        }
        if reversed_cents:
            topup = await topups.credit(
                conn,
                credit["customer_id"],
                -reversed_cents,
                actor=ACTOR,
                source="stripe_reversal",
                month=month,
            )
            await conn.execute(
                "UPDATE stripe_reversals SET topup_id = %s WHERE event_id = %s", (topup["id"], event["id"])
            )
            cur = await conn.execute(
                "SELECT topup_cents FROM monthly_usage WHERE customer_id = %s AND month = %s",
                (credit["customer_id"], month),
            )
            left = (await db.one(cur))["topup_cents"]
            details.update(month=month, topup_cents_left=left, below_zero=left < 0)
        await audit.record(
            conn,
            ACTOR,
            event["type"].replace("charge.", "stripe."),
            f"customer:{credit['customer_id']}",
            details,
        )
    return {"received": True, "reversed_cents": reversed_cents}


def _failed_payment(event: dict[str, Any]) -> dict[str, Any] | None:
    """The session or payment intent of a failed-payment event, else None."""
    kind = _FAILURES.get(str(event.get("type")))
    obj = (event.get("data") or {}).get("object")
    if kind is None or not isinstance(obj, dict) or obj.get("object") != kind[0]:
        return None
    return obj


def _failure_amount(event: dict[str, Any], obj: dict[str, Any]) -> int | None:
    """The cents that failed to arrive: only in the configured currency (another currency's
    minor units are not our cents), and only a positive whole number."""
    amount = obj.get(_FAILURES[event["type"]][1])
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        return None
    if str(obj.get("currency", "")).lower() != config.settings().stripe_currency:
        return None
    return amount


def _failure_reason(obj: dict[str, Any]) -> str | None:
    """Stripe's own words for the failure (``last_payment_error``), when it gave any."""
    error = obj.get("last_payment_error")
    if not isinstance(error, dict):
        return None
    reason = _text(error, "message") or _text(error, "decline_code") or _text(error, "code")
    return reason[:_MAX_REASON] if reason else None


async def _record_failure(event: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """One row per failed-payment event (a redelivery is a duplicate), audited with it."""
    customer_id = _customer_id(obj)
    if customer_id is None:  # not a payment this gateway asked for (another product's)
        return _IGNORED
    session_id = _text(obj, "id") if obj.get("object") == "checkout.session" else None
    amount, reason = _failure_amount(event, obj), _failure_reason(obj)
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT id FROM customers WHERE id = %s FOR KEY SHARE", (customer_id,))
        if await cur.fetchone() is None:
            return await _ignore(conn, event, obj, f"customer {customer_id} does not exist")
        cur = await conn.execute(
            "INSERT INTO stripe_payment_failures (event_id, event_type, session_id, customer_id,"
            " amount_cents, reason) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            (event["id"], event["type"], session_id, customer_id, amount, reason),
        )
        if await cur.fetchone() is None:
            return {"received": True, "duplicate": True}
        details = {
            "event_id": event["id"],
            "stripe_object": obj.get("id"),
            "amount_cents": amount,
            "reason": reason,
        }
        await audit.record(conn, ACTOR, "stripe.payment_failed", f"customer:{customer_id}", details)
    return {"received": True, "payment_failed": True}


async def receive(ctx: Ctx) -> dict[str, Any]:
    event = _verified_event(await ctx.body(), ctx.headers.get("stripe-signature"))
    taken_back = _taken_back(event)
    if taken_back is not None and isinstance(event.get("id"), str):
        return await _reverse(event, *taken_back)
    failed = _failed_payment(event)
    if failed is not None and isinstance(event.get("id"), str):
        return await _record_failure(event, failed)
    session = _paid_session(event)
    if session is None:
        return _IGNORED
    problem = _problem(event, session)
    if problem is not None:
        async with db.connection() as conn:
            return await _ignore(conn, event, session, problem)
    return await _credit(event, session)
