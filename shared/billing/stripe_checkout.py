"""Stripe Checkout for paid top-ups: the admin creates a session, the customer pays on Stripe,
and the webhook (``stripe_webhook``) credits the month once the payment is confirmed.

Each request builds its own ``StripeClient`` with the SDK's httpx-based async transport,
pointed at ``STRIPE_API_BASE`` (tests use a loopback fake), and closes it afterwards.
The credited month is this month or the next one; nothing else can be bought, so a session
cannot be used to raise the cap of a month long gone (reference weak point 13).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared import audit, config, db, idempotency
from shared.billing import topups
from shared.errors import ApiError, bad_request, found
from shared.http import Ctx, JSONResponse

if TYPE_CHECKING:
    import stripe

PRODUCT_NAME = "Kaixu top-up"


def topup_months(now: datetime | None = None) -> tuple[str, str]:
    """The months a top-up may credit: the current one and the next (UTC)."""
    now = now or datetime.now(UTC)
    following = datetime(now.year + now.month // 12, now.month % 12 + 1, 1)
    return now.strftime("%Y-%m"), following.strftime("%Y-%m")


def require_secret_key() -> str:
    secret = config.settings().stripe_secret_key
    if not secret:
        raise ApiError(501, "STRIPE_NOT_CONFIGURED", "Stripe is not configured: set STRIPE_SECRET_KEY.")
    return secret


def admin_return_urls() -> tuple[str, str]:
    """Where Checkout sends the payer back when the operator made the session."""
    cfg = config.settings()
    return (
        cfg.stripe_success_url or f"{cfg.public_app_origin}/?topup=success",
        cfg.stripe_cancel_url or f"{cfg.public_app_origin}/?topup=cancel",
    )


def session_params(
    customer: dict[str, Any], amount_cents: int, month: str, return_urls: tuple[str, str]
) -> dict[str, Any]:
    cfg = config.settings()
    success_url, cancel_url = return_urls
    metadata = {"customer_id": str(customer["id"]), "month": month, "amount_cents": str(amount_cents)}
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": cfg.stripe_currency,
                    "unit_amount": amount_cents,
                    "product_data": {"name": f"{PRODUCT_NAME} ({month})"},
                },
            }
        ],
        "metadata": metadata,
        # The payment intent carries it too: a failed payment's event names only the intent.
        "payment_intent_data": {"metadata": metadata},
        "client_reference_id": str(customer["id"]),
        "customer_email": customer["email"],
        "success_url": success_url,
        "cancel_url": cancel_url,
    }


def _stripe_failure(error: stripe.StripeError, secret: str) -> ApiError:
    """Stripe's own message (it masks keys; ours is scrubbed again), never a traceback."""
    import stripe

    message = (error.user_message or "Stripe could not be reached.").replace(secret, "[redacted]")
    if isinstance(error, stripe.IdempotencyError):
        return ApiError(409, "IDEMPOTENCY_MISMATCH", f"Stripe refused the retry: {message}")
    return ApiError(
        502,
        "STRIPE_ERROR",
        f"Stripe refused the checkout session: {message}",
        stripe_status=error.http_status,
        stripe_request_id=error.request_id,
    )


async def _create_session(params: dict[str, Any], idempotency_key: str | None) -> Any:
    import stripe  # 0.13 s to import: loaded by the first checkout, not by every cold start

    cfg = config.settings()
    secret = require_secret_key()
    http_client = stripe.HTTPXClient(timeout=cfg.stripe_timeout_s)
    client = stripe.StripeClient(secret, base_addresses={"api": cfg.stripe_api_base}, http_client=http_client)
    options: dict[str, Any] = (
        {"idempotency_key": f"kaixu-checkout-{idempotency_key}"} if idempotency_key else {}
    )
    try:
        return await client.v1.checkout.sessions.create_async(params, options)  # type: ignore[arg-type]
    except stripe.StripeError as error:
        raise _stripe_failure(error, secret) from None
    finally:
        await http_client.close_async()  # type: ignore[no-untyped-call]  # the SDK's own method is untyped


async def create_checkout(ctx: Ctx) -> JSONResponse:
    """``POST {customer_id, amount_cents, month?}`` → 201 ``{"item": {session_id, url, ...}}``."""
    require_secret_key()
    request = topups.parse_request(await ctx.json_object())
    customer_id, amount, month = request["customer_id"], request["amount_cents"], request["month"]
    item = await checkout(ctx, customer_id, amount, month, admin_return_urls())
    return JSONResponse({"item": item}, status_code=201)


async def checkout(
    ctx: Ctx, customer_id: int, amount: int, month: str | None, return_urls: tuple[str, str]
) -> dict[str, Any]:
    """A Checkout Session crediting ``month`` (default: this one) once paid; audited."""
    require_secret_key()
    month = month or topup_months()[0]
    if month not in topup_months():
        raise bad_request("month", "month must be this month or the next one (UTC).")
    customer_sql = (
        "SELECT c.id, c.email, p.stripe_topups, p.name AS plan FROM customers c "
        "JOIN plans p ON p.id = c.plan_id WHERE c.id = %s"
    )
    customer = found(await db.fetch_one(customer_sql, (customer_id,)), f"Customer {customer_id}")
    if not customer["stripe_topups"]:
        message = (
            f"The {customer['plan']} plan does not allow Stripe top-ups; change the plan or top up manually."
        )
        raise ApiError(409, "TOPUPS_NOT_ALLOWED", message)
    params = session_params(customer, amount, month, return_urls)
    session = await _create_session(params, idempotency.header_key(ctx))
    item = {
        "session_id": session.id,
        "url": session.url,
        "customer_id": customer["id"],
        "amount_cents": amount,
        "currency": config.settings().stripe_currency,
        "month": month,
    }
    async with db.connection() as conn:
        details = {"session_id": session.id, "amount_cents": amount, "month": month}
        await audit.record(conn, str(ctx.actor), "stripe.checkout", f"customer:{customer['id']}", details)
    return item
