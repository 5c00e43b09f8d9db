"""stripe-webhook: Stripe's signed events; a paid Checkout Session credits its top-up once."""

from shared.billing import stripe_webhook
from shared.http import Ctx, function


async def post(ctx: Ctx) -> dict:
    return await stripe_webhook.receive(ctx)


app, handler = function(__name__, POST=post)
