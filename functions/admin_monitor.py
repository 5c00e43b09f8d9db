"""admin-monitor: the monitor list, its live tail (SSE) and pruning of old rows."""

from shared.admin import monitor
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=monitor.get, POST=monitor.post)
