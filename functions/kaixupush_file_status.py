"""kaixupush-file-status: per required file, whether it is uploaded and how its parts stand."""

from shared.gateway import key_auth
from shared.http import function
from shared.kaixupush import uploads

app, handler = function(__name__, auth=key_auth.require_role("viewer"), GET=uploads.file_status)
