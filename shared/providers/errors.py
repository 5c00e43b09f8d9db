"""Upstream failures, translated into what the gateway answers.

The gateway answers with its own status, not the provider's: a provider's 401 means the
gateway's key is wrong (502, not the client's fault), a provider's 400 means the provider
refused what we forwarded (502 UPSTREAM_REJECTED), and only 429 passes through as 429 so
the client can back off. Messages are human sentences; the provider's own message may be
quoted (truncated), but anything that looks like an API key is scrubbed first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from shared import http11

MAX_QUOTE = 300
_KEY_LIKE = re.compile(r"\b(?:sk-[\w*.-]{4,}|AIza[\w-]{8,})")
# The operator's account at the provider (OpenAI organisation, project and user ids) is none
# of a customer's business, and tells an attacker which account a leaked key would drain.
_ACCOUNT_LIKE = re.compile(r"\b(?:org|proj|user)[-_](?=[A-Za-z]*\d)[A-Za-z0-9]{8,}\b")  # ids have digits
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-goog-request-id")


class UpstreamError(Exception):
    """A provider call failed. ``status`` is what the GATEWAY answers; ``upstream_status``
    is what the provider said (None when it said nothing: no key, timeout, no connection)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        upstream_status: int | None = None,
        upstream_request_id: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.upstream_status = upstream_status
        self.upstream_request_id = upstream_request_id
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"UpstreamError({self.status}, {self.code!r}, {self.message!r})"


class ErrorDetails(NamedTuple):
    """What a provider's error body says, in provider-neutral terms."""

    message: str = ""
    request_id: str | None = None
    retry_after: str | None = None
    bad_api_key: bool = False


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove our keys (and anything key-shaped) and our account ids from provider text, then
    truncate it."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _KEY_LIKE.sub("[redacted]", " ".join(text.split()))
    text = _ACCOUNT_LIKE.sub("[account]", text)
    return text if len(text) <= MAX_QUOTE else text[: MAX_QUOTE - 1] + "…"


def request_id(headers: Mapping[str, str]) -> str | None:
    for name in REQUEST_ID_HEADERS:
        if headers.get(name):
            return headers[name]
    return None


def seconds(delay: str) -> str | None:
    """A Google duration such as ``"26s"`` or ``"0.5s"`` -> whole seconds for Retry-After."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", delay)
    return str(math.ceil(float(match.group(1)))) if match else None


def _retry_after(headers: Mapping[str, str], details: ErrorDetails) -> str | None:
    if headers.get("retry-after"):
        return headers["retry-after"].strip()
    millis = headers.get("retry-after-ms", "").strip()
    if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,6})?", millis):
        return str(math.ceil(float(millis) / 1000))
    return details.retry_after


def _status_and_code(upstream_status: int, details: ErrorDetails) -> tuple[int, str]:
    if upstream_status in (401, 403) or details.bad_api_key:
        return 502, "UPSTREAM_AUTH"
    if upstream_status == 429:
        return 429, "UPSTREAM_RATE_LIMITED"
    if 400 <= upstream_status < 500:
        return 502, "UPSTREAM_REJECTED"
    return 502, "UPSTREAM_ERROR"


def _sentence(label: str, code: str, upstream_status: int, quote: str) -> str:
    head = {
        "UPSTREAM_AUTH": f"{label} refused the gateway's API key (HTTP {upstream_status}).",
        "UPSTREAM_RATE_LIMITED": f"{label} is rate-limiting the gateway (HTTP {upstream_status})",
        "UPSTREAM_REJECTED": f"{label} rejected the request (HTTP {upstream_status})",
        "UPSTREAM_ERROR": f"{label} failed to answer (HTTP {upstream_status})",
    }[code]
    if code == "UPSTREAM_AUTH":
        return head  # the provider's text may echo part of our key: say nothing more
    return f"{head}: {quote}" if quote else f"{head}."


def from_response(
    label: str,
    upstream_status: int,
    headers: Mapping[str, str],
    details: ErrorDetails,
    secrets: Iterable[str] = (),
) -> UpstreamError:
    """The error for a non-2xx provider response (its body already read and parsed)."""
    status, code = _status_and_code(upstream_status, details)
    return UpstreamError(
        status,
        code,
        _sentence(label, code, upstream_status, scrub(details.message, secrets)),
        upstream_status=upstream_status,
        upstream_request_id=request_id(headers) or details.request_id,
        retry_after=_retry_after(headers, details) if status == 429 else None,
    )


def from_transport(
    label: str, exc: http11.TransportError, timeout_s: float, *, mid_stream: bool
) -> UpstreamError:
    """The error for a timeout or a broken connection (no HTTP answer to quote)."""
    if isinstance(exc, http11.TimeoutException):
        return UpstreamError(504, "UPSTREAM_TIMEOUT", f"{label} did not answer within {timeout_s:g} s.")
    kind = type(exc).__name__
    if mid_stream:
        return UpstreamError(
            502, "UPSTREAM_STREAM_ERROR", f"The connection to {label} broke mid-stream ({kind})."
        )
    return UpstreamError(502, "UPSTREAM_UNREACHABLE", f"Could not reach {label} ({kind}).")


def out_of_time(label: str) -> UpstreamError:
    """The call was cut because its host (a Lambda invocation) was about to stop it."""
    return UpstreamError(
        504,
        "UPSTREAM_TIMEOUT",
        f"{label} did not finish within this function's time limit; the call was cut and settled.",
    )


def unreadable(label: str, headers: Mapping[str, str]) -> UpstreamError:
    """A 2xx reply we cannot read (not JSON): the provider (or a proxy) misbehaved."""
    return UpstreamError(
        502,
        "UPSTREAM_ERROR",
        f"{label} sent a reply the gateway could not read.",
        upstream_request_id=request_id(headers),
    )


def not_configured(label: str) -> UpstreamError:
    return UpstreamError(503, "PROVIDER_NOT_CONFIGURED", f"The gateway has no API key for {label}.")


def stream_error(label: str, what: str, secrets: Iterable[str] = ()) -> UpstreamError:
    """A provider reported an error after the stream had started (HTTP status was 200)."""
    quote = scrub(what, secrets)
    return UpstreamError(
        502,
        "UPSTREAM_STREAM_ERROR",
        f"{label} reported an error mid-stream: {quote}" if quote else f"{label} failed mid-stream.",
        upstream_status=200,
    )
