"""kaixupush-upload: send one whole file (up to KAIXUPUSH_PART_BYTES) of a push."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import uploads

app, handler = function(__name__, auth=key_auth.require_role("deployer"), PUT=uploads.upload)
