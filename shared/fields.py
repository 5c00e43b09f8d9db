"""Validation of JSON body fields: every bad field is a 400 that names it.

``shared.params`` does the same for query-string parameters. JSON booleans are not numbers
here (``True`` is an ``int`` in Python, never a customer id), and unknown fields are refused
rather than silently ignored, so a typo in a field name cannot pass for a default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal, overload

from shared.errors import bad_request

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def reject_unknown(body: dict[str, Any], allowed: Iterable[str]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise bad_request(unknown[0], f"{unknown[0]} is not a field of this request.")


@overload
def int_field(
    body: dict[str, Any],
    name: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    required: Literal[True] = True,
) -> int: ...
@overload
def int_field(
    body: dict[str, Any], name: str, *, minimum: int = 1, maximum: int | None = None, required: bool
) -> int | None: ...
def int_field(
    body: dict[str, Any], name: str, *, minimum: int = 1, maximum: int | None = None, required: bool = True
) -> int | None:
    """A whole number within bounds (numeric strings are refused: the API speaks JSON numbers)."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(name, f"{name} is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(name, f"{name} must be a whole number.")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise bad_request(name, f"{name} must be {bounds}.")
    return value


@overload
def month_field(body: dict[str, Any], name: str = "month", *, required: Literal[True] = True) -> str: ...
@overload
def month_field(body: dict[str, Any], name: str = "month", *, required: bool) -> str | None: ...
def month_field(body: dict[str, Any], name: str = "month", *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(name, f"{name} is required (like 2026-02).")
        return None
    if not isinstance(value, str) or not MONTH.match(value):
        raise bad_request(name, f"{name} must look like 2026-02.")
    return value


@overload
def text_field(
    body: dict[str, Any], name: str, *, max_length: int, required: Literal[True] = True
) -> str: ...
@overload
def text_field(body: dict[str, Any], name: str, *, max_length: int, required: bool) -> str | None: ...
def text_field(body: dict[str, Any], name: str, *, max_length: int, required: bool = True) -> str | None:
    """Trimmed printable text without whitespace inside (tokens, identifiers)."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(name, f"{name} is required.")
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad_request(name, f"{name} must be a non-empty string.")
    value = value.strip()
    if len(value) > max_length or not value.isprintable() or any(ch.isspace() for ch in value):
        raise bad_request(name, f"{name} must be at most {max_length} printable characters without spaces.")
    return value
