"""admin-invoices: immutable, versioned invoice snapshots per customer and month."""

from shared.admin.auth import require_admin
from shared.billing import invoices
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=invoices.get, POST=invoices.take_snapshot)
