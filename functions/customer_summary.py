"""customer-summary: the signed-in customer's month: spend against its cap and credit, per key and per day."""

from shared.http import function
from shared.portal import account, session

app, handler = function(__name__, auth=session.require_customer, GET=account.summary)
