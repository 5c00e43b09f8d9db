"""kaixupush-complete: every required file is sent; wait (optionally) for Netlify to publish."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import deploy

app, handler = function(__name__, auth=key_auth.require_role("deployer"), POST=deploy.complete)
