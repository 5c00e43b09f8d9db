"""customer-usage: the signed-in customer's metered calls, filtered by month, key, provider, model; CSV."""

from shared.http import function
from shared.portal import account, session

app, handler = function(__name__, auth=session.require_customer, GET=account.events)
