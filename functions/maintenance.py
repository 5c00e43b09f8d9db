"""maintenance: periodic upkeep, run every minute by the deploy's schedule (or POSTed by any
scheduler with the x-kaixu-maintenance-secret header)."""

from shared.host import maintenance
from shared.http import function

app, handler = function(__name__, auth=maintenance.require_secret, scheduled=True, POST=maintenance.run)
