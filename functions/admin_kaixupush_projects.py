"""admin-kaixupush-projects: every customer's KaixuPush projects (list, create, update, delete)."""

from shared.admin.auth import require_admin
from shared.http import function
from shared.kaixupush import projects

app, handler = function(
    __name__,
    auth=require_admin,
    GET=projects.admin_get,
    POST=projects.admin_create,
    PATCH=projects.admin_update,
    DELETE=projects.admin_delete,
)
