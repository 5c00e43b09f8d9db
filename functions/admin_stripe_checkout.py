"""admin-stripe-checkout: a Stripe Checkout Session that tops up a customer when paid."""

from shared.admin import auth as admin_auth
from shared.billing import stripe_checkout as stripe_billing
from shared.http import Ctx, function


async def post(ctx: Ctx):
    return await stripe_billing.create_checkout(ctx)


app, handler = function(__name__, auth=admin_auth.require_admin, POST=post)
