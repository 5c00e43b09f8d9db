"""admin-kaixupush-invoices: push invoices (list); GET ?view=billing&customer_id= a customer's
current push cap and pricing version; POST ?action=set_cap sets them."""

from shared.admin.auth import require_admin
from shared.http import function
from shared.kaixupush import admin

app, handler = function(__name__, auth=require_admin, GET=admin.invoices, POST=admin.set_billing)
