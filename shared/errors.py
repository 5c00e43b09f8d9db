"""Failures a client sees: a status, a machine code and a human sentence, with extras.

Nothing here knows HTTP beyond the status number: the function wrapper (``shared.http``)
turns an :class:`ApiError` into the JSON envelope ``{error, code, request_id, ...}``, and
library code raises it without depending on the wrapper. The gateway's refusals (what ADMIT
answers) are listed once, in :data:`REFUSALS`.
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


class ApiError(Exception):
    """A failure the client should see: status, machine code, human sentence, extras."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


def bad_request(field: str, message: str) -> ApiError:
    """400 INVALID_INPUT naming the ``field`` that is wrong."""
    return ApiError(400, "INVALID_INPUT", message, field=field)


def found(row: T | None, what: str) -> T:
    """The row a lookup found, or 404 NOT_FOUND saying ``"{what} does not exist."``: the
    same answer whether the id was never made or belongs to another tenant."""
    if row is None:
        raise ApiError(404, "NOT_FOUND", f"{what} does not exist.")
    return row


# What ADMIT refuses, code → sentence (``str.format`` fields: provider, model, limit, scope,
# retry). The status comes with the refusal from the database.
REFUSALS = {
    "INVALID_KEY": "The key is not a valid Kaixu key.",
    "KEY_REVOKED": "This key has been revoked.",
    "CUSTOMER_DISABLED": "This customer account is disabled.",
    "PROVIDER_NOT_ALLOWED": "This key may not use provider {provider}.",
    "MODEL_NOT_ALLOWED": "This key may not use model {provider}:{model}.",
    "INSTALL_ID_REQUIRED": "This key requires an x-kaixu-install-id header.",
    "DEVICE_REVOKED": "This device has been revoked for this key.",
    "DEVICE_LIMIT": "Every device seat of this key is taken ({limit}); revoke a device or add seats.",
    "ROLE_FORBIDDEN": "This key is a viewer: it may read, not call models. Use a key with the caller role.",
    "RATE_LIMITED": "Rate limit of {limit} requests per {scope} reached; retry in {retry} s.",
    "CONCURRENCY_LIMIT": "This {scope} already has {limit} calls in flight; retry when one ends.",
    "CAP_REACHED": "The monthly cap of this {scope} is reached.",
    "NO_CREDIT": "This account's prepaid credit does not cover this call; top up to continue.",
    # A stream's lease that could not grow: its reservation was released (the call looked dead).
    "RESERVATION_GONE": "This call's reservation was released.",
    # The model checks, when ADMIT finds the catalogue changed since this process read it.
    "EMBEDDING_MODEL": "{provider}/{model} is an embedding model: call /v1/embeddings.",
    "NOT_AN_EMBEDDING_MODEL": "{provider}/{model} is not an embedding model.",
    "MAX_TOKENS_TOO_LARGE": "max_tokens may be at most {limit} for {model}.",
}
# The refusals above that are a 400 about one field of the request.
REFUSED_FIELDS = {
    "EMBEDDING_MODEL": "model",
    "NOT_AN_EMBEDDING_MODEL": "model",
    "MAX_TOKENS_TOO_LARGE": "max_tokens",
}
