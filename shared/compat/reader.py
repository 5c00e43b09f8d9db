"""Reading a compatible API's JSON body: every wrong field is a 400 that names it by its path
(``messages[2].content[0].image_url.url``), the way OpenAI's ``param`` does."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from shared.errors import bad_request
from shared.providers.conversation import Conversation, Image

_DATA_URL = re.compile(r"^data:(image/(?:png|jpeg|gif|webp));base64,([A-Za-z0-9+/=\s]+)$", re.DOTALL)
_MEDIA_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


class KeptBody:
    """A parser for admission that keeps the body, for what admission does not need (is
    it a stream?)."""

    def __init__(self, parse: Callable[[Any], Conversation]) -> None:
        self.parse = parse
        self.payload: Any = None

    def __call__(self, payload: Any) -> Conversation:
        self.payload = payload
        return self.parse(payload)


class Reader:
    """A JSON object at ``path`` in the request body."""

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, dict):
            raise bad_request(path or "body", f"{path or 'The body'} must be a JSON object.")
        self.data: dict[str, Any] = data
        self.path = path

    def where(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def fail(self, name: str, message: str) -> Exception:
        return bad_request(self.where(name), f"{self.where(name)} {message}.")

    def text(self, name: str, *, required: bool = False, max_length: int = 1_000_000) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "is required")
            return None
        if not isinstance(value, str) or len(value) > max_length:
            raise self.fail(name, f"must be a string of at most {max_length} characters")
        return value

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise self.fail(name, f"must be a number from {low:g} to {high:g}")
        return float(value)

    def integer(self, name: str, low: int = 1, high: int = 2**53) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(name, f"must be a whole number from {low} to {high}")
        return value

    def boolean(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is not None and not isinstance(value, bool):
            raise self.fail(name, "must be true or false")
        return value

    def one_of(self, name: str, choices: tuple[str, ...]) -> str | None:
        value = self.data.get(name)
        if value is not None and value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}")
        return value

    def items(self, name: str, *, required: bool = False, max_items: int = 10_000) -> list[Any]:
        value = self.data.get(name)
        if value is None and not required:
            return []
        if not isinstance(value, list) or (required and not value) or len(value) > max_items:
            raise self.fail(name, f"must be a list of 1 to {max_items} items")
        return value

    def child(self, name: str, *, required: bool = True) -> Reader | None:
        value = self.data.get(name)
        if value is None and not required:
            return None
        return Reader(value, self.where(name))

    def schema(self, name: str, *, required: bool = False) -> dict[str, Any] | None:
        """A JSON Schema object (checked only for being an object: providers validate it)."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.fail(name, "is required")
            return None
        if not isinstance(value, dict):
            raise self.fail(name, "must be a JSON Schema object")
        return value

    def stop(self, name: str) -> tuple[str, ...]:
        value = self.data.get(name)
        if value is None:
            return ()
        values = [value] if isinstance(value, str) else value
        if (
            not isinstance(values, list)
            or not 0 < len(values) <= 4
            or not all(isinstance(v, str) for v in values)
        ):
            raise self.fail(name, "must be a string or a list of 1 to 4 strings")
        return tuple(values)


def image_from_url(url: str, where: str) -> Image:
    """An ``https:`` URL, or a ``data:image/...;base64,`` URL (kept inline)."""
    if url.startswith("https://"):
        return Image(url=url)
    match = _DATA_URL.match(url)
    if match is None:
        raise bad_request(
            where, f"{where} must be an https URL or a base64 data URL of a PNG, JPEG, GIF or WebP."
        )
    return inline_image(match.group(1), re.sub(r"\s", "", match.group(2)), where)


def inline_image(media_type: Any, data: Any, where: str) -> Image:
    if media_type not in _MEDIA_TYPES:
        raise bad_request(where, f"{where} must be a PNG, JPEG, GIF or WebP image.")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise bad_request(where, f"{where} is not valid base64.") from None
    return Image(media_type=media_type, data=data)
