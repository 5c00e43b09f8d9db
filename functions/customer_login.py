"""customer-login: exchange a customer's master key (or an admin-role key) for a short-lived session."""

from shared.http import function
from shared.portal import session

app, handler = function(__name__, POST=session.login)
