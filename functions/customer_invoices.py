"""customer-invoices: the signed-in customer's issued invoices, each one's document and its printable view."""

from shared.http import function
from shared.portal import account, session

app, handler = function(__name__, auth=session.require_customer, GET=account.invoices)
