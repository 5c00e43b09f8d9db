"""kaixupush-status: a push's state, refreshed from Netlify."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import deploy

app, handler = function(__name__, auth=key_auth.require_role("viewer"), GET=deploy.status)
