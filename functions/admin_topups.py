"""admin-topups: manual top-ups (idempotent with an Idempotency-Key) and their list."""

from shared.admin.auth import require_admin
from shared.billing import topups
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=topups.list_topups, POST=topups.create_manual)
