"""kaixupush-upload-chunk: send one part of a large file; a re-sent part replaces the old one."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import uploads

app, handler = function(__name__, auth=key_auth.require_role("deployer"), PUT=uploads.upload_chunk)
