"""kaixupush-projects: a customer's project registry (list: viewer key; upsert: admin key)."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import projects

app, handler = function(
    __name__,
    auth=key_auth.require_role("viewer", POST="admin"),
    GET=projects.customer_list,
    POST=projects.customer_upsert,
)
