"""Whole numbers from text, strictly: ASCII digits only and small enough for a bigint.

``str.isdigit()`` accepts characters ``int()`` refuses (``"²"``) and strings of any length,
which turned odd query strings into 500s; every parser of client-supplied numbers uses this.
"""

from __future__ import annotations

import re

_WHOLE = re.compile(r"[0-9]{1,18}")


def whole(raw: object) -> int | None:
    """The non-negative integer ``raw`` spells, or None."""
    if isinstance(raw, str) and _WHOLE.fullmatch(raw):
        return int(raw)
    return None
