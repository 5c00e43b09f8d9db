"""Fixed-window throttling of unauthenticated callers (client error reports, admin logins).

Callers are identified by a keyed hash of their address, never the raw IP. A refused hit
does not count, so a client that backs off as told gets through when the window turns.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import NamedTuple

from shared import config, db

_HIT = """
INSERT INTO throttle_windows (scope, subject, window_start, hits)
VALUES (%(scope)s, %(subject)s, to_timestamp(%(window_start)s), 1)
ON CONFLICT (scope, subject, window_start)
DO UPDATE SET hits = throttle_windows.hits + 1 WHERE throttle_windows.hits < %(limit)s
RETURNING hits
"""


class Verdict(NamedTuple):
    allowed: bool
    retry_after_s: int


def subject_hash(value: str) -> str:
    key = (config.settings().key_pepper or "kaixu-throttle").encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


async def hit(scope: str, subject: str, *, limit: int, window_s: int) -> Verdict:
    now = time.time()
    window_start = math.floor(now / window_s) * window_s
    row = await db.fetch_one(
        _HIT,
        {"scope": scope, "subject": subject_hash(subject), "window_start": window_start, "limit": limit},
    )
    return Verdict(row is not None, max(1, math.ceil(window_start + window_s - now)))


async def prune(older_than_s: int = 2 * 86400) -> int:
    return await db.execute(
        "DELETE FROM throttle_windows WHERE window_start < now() - make_interval(secs => %s)",
        (older_than_s,),
    )
