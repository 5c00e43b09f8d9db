"""customer-topup: the signed-in customer buys credit through Stripe Checkout and returns to its page."""

from shared.http import function
from shared.portal import session, topup

app, handler = function(__name__, auth=session.require_customer, POST=topup.create)
