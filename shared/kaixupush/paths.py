"""Deploy path rules (reference §10.2), in one place for the manifest and the uploads.

A path is normalised to one canonical form before anything else looks at it, so
``a\\b.html``, ``/a//b.html`` and ``a/b.html`` are the same file and the checks below see
exactly what Netlify will store. Internally paths keep a leading slash (as the deploy's
``files`` map sends them); upload URLs drop it and percent-encode each segment.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from shared.errors import ApiError

MAX_LENGTH = 1024
_FORBIDDEN = set('<>:"|*#?')
_SLASHES = re.compile(r"/{2,}")


def _bad(raw: object, reason: str) -> ApiError:
    shown = raw[:200] if isinstance(raw, str) else None
    return ApiError(400, "BAD_PATH", f"Bad deploy path: {reason}.", path=shown)


def normalize(raw: object) -> str:
    """The canonical ``/dir/file`` form of ``raw``, or 400 BAD_PATH naming the rule broken."""
    if not isinstance(raw, str) or not raw:
        raise _bad(raw, "a path must be a non-empty string")
    path = "/" + _SLASHES.sub("/", raw.replace("\\", "/")).lstrip("/")
    if len(path) > MAX_LENGTH:
        raise _bad(raw, f"longer than {MAX_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise _bad(raw, "control characters are not allowed")
    if bad := sorted(_FORBIDDEN.intersection(path)):
        raise _bad(raw, f"the characters {''.join(bad)} are not allowed")
    if path.endswith("/"):
        raise _bad(raw, "a path must name a file, not end with /")
    if any(segment in (".", "..") for segment in path.split("/")):
        raise _bad(raw, "'.' and '..' segments are not allowed")
    return path


def url_path(path: str) -> str:
    """``/a b/c.html`` -> ``a%20b/c.html``: the path as it goes into an upload URL."""
    return "/".join(quote(segment, safe="") for segment in path.lstrip("/").split("/"))
