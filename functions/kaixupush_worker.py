"""kaixupush-worker: run due upload jobs, expire stale parts, finalise deploys. The deploy runs it on
a schedule; any other scheduler POSTs it with the x-kaixu-worker-secret header."""

from shared.http import function
from shared.kaixupush import jobs

app, handler = function(__name__, auth=jobs.require_worker_secret, scheduled=True, POST=jobs.run_worker)
