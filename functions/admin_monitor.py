"""admin-monitor: the monitor list, its live tail (SSE), error rates per function over the
last hour (``view=rates``) and pruning of old rows."""

from shared.admin import monitor
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=monitor.get, POST=monitor.post)
