"""customer-kaixupush: the signed-in customer's KaixuPush deploy history and push charges."""

from shared.http import function
from shared.portal import account, session

app, handler = function(__name__, auth=session.require_customer, GET=account.kaixupush)
