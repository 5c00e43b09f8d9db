"""admin-keys: list a customer's keys, create sub-keys, rotate, revoke, change overrides."""

from shared.admin import keys
from shared.admin.auth import require_admin
from shared.http import function

app, handler = function(
    __name__,
    auth=require_admin,
    GET=keys.list_keys,
    POST=keys.post,
    PATCH=keys.update_key,
    DELETE=keys.delete,
)
