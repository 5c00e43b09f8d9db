"""stripe-webhook: Stripe's signed events; a paid Checkout Session credits its top-up once."""

from shared.billing import stripe_webhook
from shared.http import function

app, handler = function(__name__, POST=stripe_webhook.receive)
