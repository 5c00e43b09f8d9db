"""admin-kaixupush-invoices: push invoices (list); POST ?action=set_cap sets a customer's push
cap and pricing version."""

from shared.admin.auth import require_admin
from shared.http import function
from shared.kaixupush import admin

app, handler = function(__name__, auth=require_admin, GET=admin.invoices, POST=admin.set_billing)
