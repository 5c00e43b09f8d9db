"""The normalised chat request that gateway-chat and gateway-stream accept: text only, and
exactly as it has always been; the pipeline works on the :class:`Conversation` it makes.

Checked by hand rather than by a validation framework: this is the gateway's hot path and
its Lambda cold start, where pydantic cost 40 ms of import and more CPU per call than the
checks themselves. :data:`SCHEMA` states the same contract as JSON Schema for the OpenAPI
document, and the contract tests fuzz one against the other.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from shared.errors import ApiError, bad_request
from shared.provider_names import PROVIDER_NAMES
from shared.providers.conversation import Conversation, Text, Turn

Role = Literal["system", "developer", "user", "assistant"]
ROLES: tuple[Role, ...] = get_args(Role)
DEFAULT_MAX_TOKENS = 1024
DEFAULT_TEMPERATURE = 1.0
MAX_MODEL_LENGTH = 200
MAX_MESSAGES = 2000


def parse_request(payload: Any) -> Conversation:
    """The conversation a valid request asks for; otherwise a 400 naming the first bad field.
    ``max_tokens`` is checked against the model's limit later, once the price book has said
    which model this is. Fields of no meaning here are ignored, as they always were."""
    if not isinstance(payload, dict):
        raise _invalid("body", "must be a JSON object")
    return Conversation(
        provider=_provider(payload.get("provider")),
        model=_model(payload.get("model")),
        turns=tuple(_turn(message, f"messages.{n}") for n, message in enumerate(_messages(payload))),
        max_tokens=_max_tokens(payload.get("max_tokens", DEFAULT_MAX_TOKENS)),
        temperature=_temperature(payload.get("temperature", DEFAULT_TEMPERATURE)),
    )


def _invalid(field: str, problem: str) -> ApiError:
    return bad_request(field, f"{field}: {problem}.")


def _provider(value: Any) -> str:
    if not isinstance(value, str) or value not in PROVIDER_NAMES:
        raise _invalid("provider", f"must be one of {', '.join(PROVIDER_NAMES)}")
    return value


def _model(value: Any) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not 1 <= len(name) <= MAX_MODEL_LENGTH:
        raise _invalid("model", f"must be a model name of 1-{MAX_MODEL_LENGTH} characters")
    return name


def _messages(payload: dict[str, Any]) -> list[Any]:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        raise _invalid("messages", f"must be a list of 1-{MAX_MESSAGES} messages")
    return messages


def _turn(message: Any, where: str) -> Turn:
    if not isinstance(message, dict):
        raise _invalid(where, "must be an object with a role and a content")
    role = next((known for known in ROLES if known == message.get("role")), None)
    if role is None:
        raise _invalid(f"{where}.role", f"must be one of {', '.join(ROLES)}")
    return Turn(role, (Text(_text(message.get("content"), f"{where}.content")),))


def _text(content: Any, where: str) -> str:
    """A message's content: a string, or a list of text parts (joined)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(where, "must be a string or a list of text parts")
    texts = []
    for n, part in enumerate(content):
        text = part.get("text") if isinstance(part, dict) and part.get("type") == "text" else None
        if not isinstance(text, str):
            raise _invalid(f"{where}.{n}", 'must be {"type": "text", "text": "..."}')
        texts.append(text)
    return "".join(texts)


def _max_tokens(value: Any) -> int:
    whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        raise _invalid("max_tokens", "must be a whole number of at least 1")
    return int(value)


def _temperature(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 2:
        raise _invalid("temperature", "must be a number from 0 to 2")
    return float(value)


_TEXT_PART = {
    "type": "object",
    "required": ["type", "text"],
    "properties": {"type": {"const": "text", "type": "string"}, "text": {"type": "string"}},
}
_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {
        "role": {"enum": list(ROLES), "type": "string"},
        "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _TEXT_PART}]},
    },
}
SCHEMA: dict[str, Any] = {
    "title": "ChatRequest",
    "description": "The normalised chat request of gateway-chat and gateway-stream. max_tokens is "
    "checked against the model's limit once the price book has named the model.",
    "type": "object",
    "required": ["provider", "model", "messages"],
    "properties": {
        "provider": {"enum": list(PROVIDER_NAMES), "type": "string"},
        "model": {"type": "string", "minLength": 1, "maxLength": MAX_MODEL_LENGTH, "pattern": r"\S"},
        "messages": {"type": "array", "items": _MESSAGE, "minItems": 1, "maxItems": MAX_MESSAGES},
        "max_tokens": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_TOKENS},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2, "default": DEFAULT_TEMPERATURE},
    },
}
