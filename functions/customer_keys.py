"""customer-keys: the signed-in customer's keys: create (secret shown once), rotate, revoke, narrow."""

from shared.http import function
from shared.portal import keys, session

app, handler = function(
    __name__, auth=session.require_customer, GET=keys.list_keys, POST=keys.post, PATCH=keys.update_key
)
