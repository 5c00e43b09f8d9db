"""kaixupush-billing: the customer's push charges for a month."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import billing

app, handler = function(__name__, auth=key_auth.require_role("viewer"), GET=billing.customer_month)
