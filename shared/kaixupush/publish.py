"""The deploy client, published by the gateway itself: ``GET /kaixupush.py``.

A customer deploys from its own CI, which holds its site and not this repository, so the
gateway serves its client (``client.py``: one file, Python's standard library only) at a
stable URL on the API origin and, through the admin site's ``_redirects``, on the admin
site. The bytes are the package's own file, so the client downloaded always speaks this
gateway's API; they are cacheable for a few minutes and carry an ETag.

Every init answer says which client the gateway publishes and the oldest one it expects
(``client``: ``version``, ``min_version``, ``url``); an older client warns its user.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any

from starlette.responses import Response

from shared.http import Ctx

# The client is served as a file, never run here: reading it, not importing it, keeps its
# imports (urllib, argparse) out of every KaixuPush function's cold start.
CLIENT_FILE = Path(__file__).with_name("client.py")
PATH = "/kaixupush.py"
# The oldest client that uses this API correctly: raise it when a change of the push API
# would make older clients fail or mislead (they warn, they are not refused).
MIN_CLIENT_VERSION = "1.0.0"
MEDIA_TYPE = "text/x-python"  # Starlette adds "; charset=utf-8"
CACHE_CONTROL = "public, max-age=300"  # a new release reaches CI runs within five minutes


@functools.cache
def _published() -> tuple[bytes, str, str]:
    """The file's bytes, their ETag and the client's version, read once per process (the
    deployed code is read-only)."""
    data = CLIENT_FILE.read_bytes()
    declared = re.search(rb'^__version__ = "([^"]+)"$', data, re.MULTILINE)
    if declared is None:
        raise RuntimeError(f"{CLIENT_FILE} declares no __version__")
    return data, '"' + hashlib.sha256(data).hexdigest()[:32] + '"', declared[1].decode()


def versions() -> dict[str, Any]:
    """What the init answers say of the client (``client`` in kaixupush-init)."""
    return {"version": _published()[2], "min_version": MIN_CLIENT_VERSION, "url": PATH}


async def serve(ctx: Ctx) -> Response:
    """GET kaixupush-client (and /kaixupush.py): the deploy client, a Python file."""
    data, etag, version = _published()
    headers = {"cache-control": CACHE_CONTROL, "etag": etag, "x-kaixupush-version": version}
    if etag in ctx.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=MEDIA_TYPE, headers=headers)
