"""admin-stripe-checkout: a Stripe Checkout Session that tops up a customer when paid."""

from shared.admin.auth import require_admin
from shared.billing import stripe_checkout
from shared.http import function

app, handler = function(__name__, auth=require_admin, POST=stripe_checkout.create_checkout)
