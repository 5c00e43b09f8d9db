"""admin-usage: a customer's usage events, or the month summary with ``view=summary``."""

from shared.admin import usage
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=usage.list_events)
