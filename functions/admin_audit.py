"""admin-audit: the audit log (who did what to which thing), filtered and paged."""

from shared.admin import audit
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=audit.list_events)
