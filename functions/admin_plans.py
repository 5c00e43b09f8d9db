"""admin-plans: the plan catalogue (list, create, change, delete)."""

from shared.admin.auth import require_admin
from shared.billing import plans
from shared.http import function

app, handler = function(
    __name__, auth=require_admin, GET=plans.get, POST=plans.create, PATCH=plans.update, DELETE=plans.delete
)
