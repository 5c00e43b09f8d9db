"""customer-webhook: the customer's own signed cap-alert webhook: set, rotate, remove, test, log."""

from shared.http import function
from shared.portal import session, webhook

app, handler = function(
    __name__,
    auth=session.require_customer,
    GET=webhook.get,
    PUT=webhook.put,
    DELETE=webhook.delete,
    POST=webhook.send_test,
)
