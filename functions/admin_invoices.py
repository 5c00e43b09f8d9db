"""admin-invoices: reconciled, versioned invoice snapshots per customer and month; issue (gapless
numbers), mark paid or void them; print one as HTML."""

from shared.admin.auth import require_admin
from shared.billing import invoice_states, invoices
from shared.http import function

app, handler = function(
    __name__, auth=require_admin, GET=invoices.get, POST=invoices.take_snapshot, PATCH=invoice_states.patch
)
