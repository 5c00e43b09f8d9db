"""kaixupush-init: start a deploy from a manifest (path -> sha1); answers what Netlify needs."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import deploy

app, handler = function(__name__, auth=key_auth.require_role("deployer"), POST=deploy.init)
