"""admin-overview: the month's revenue, provider cost and margin (totals, per customer, model,
provider and day), top spenders, customers near their cap and failed payments; ``format=csv``
downloads it."""

from shared.admin.auth import require_admin
from shared.billing import overview
from shared.http import function

app, handler = function(__name__, auth=require_admin, GET=overview.view)
