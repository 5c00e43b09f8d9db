"""Self-serve top-ups: the customer pays through Stripe Checkout and lands back on its page.

The session is the operator's Checkout (``shared.billing.stripe_checkout``) for the signed-in
customer only, and the credit still comes from the signed webhook, never from the return to
the page: ``/account?topup=success`` only tells the page to watch for it.
"""

from __future__ import annotations

from shared import config, fields
from shared.admin import policy
from shared.billing import stripe_checkout
from shared.http import Ctx, JSONResponse


def return_urls() -> tuple[str, str]:
    """Back to the portal; Stripe puts the session id in place of ``{CHECKOUT_SESSION_ID}``."""
    origin = config.settings().public_app_origin
    return (
        f"{origin}/account?topup=success&session_id={{CHECKOUT_SESSION_ID}}",
        f"{origin}/account?topup=cancel",
    )


async def create(ctx: Ctx) -> JSONResponse:
    """POST {amount_cents, month?} → 201 {item: {session_id, url, amount_cents, currency, month}}."""
    stripe_checkout.require_secret_key()
    body = await ctx.json_object()
    fields.reject_unknown(body, ("amount_cents", "month"))
    amount = fields.int_field(body, "amount_cents", maximum=policy.MAX_CAP_CENTS)
    month = fields.month_field(body, required=False)
    item = await stripe_checkout.checkout(ctx, ctx.customer, amount, month, return_urls())
    return JSONResponse({"item": item}, status_code=201)
