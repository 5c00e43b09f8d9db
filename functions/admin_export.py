"""admin-export: CSV downloads (usage, customers, keys, devices, top-ups, invoices, summary)."""

from shared.admin import exports
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=exports.download)
