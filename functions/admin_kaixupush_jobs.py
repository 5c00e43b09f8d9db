"""admin-kaixupush-jobs: chunk upload jobs (list; POST ?id=&action=retry(&customer_id=)
re-queues a failed one)."""

from shared.admin.auth import require_admin
from shared.http import function
from shared.kaixupush import admin

app, handler = function(__name__, auth=require_admin, GET=admin.jobs, POST=admin.retry_job)
