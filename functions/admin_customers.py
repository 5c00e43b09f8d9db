"""admin-customers: list/search, read, create (with its master key) and change policy."""

from shared.admin import customers
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(
    __name__,
    auth=require_admin,
    GET=customers.list_customers,
    POST=customers.create_customer,
    PATCH=customers.update_policy,
)
