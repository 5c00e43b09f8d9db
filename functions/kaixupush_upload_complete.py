"""kaixupush-upload-complete: all parts sent; assemble, verify and deliver the file."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import uploads

app, handler = function(__name__, auth=key_auth.require_role("deployer"), POST=uploads.upload_complete)
