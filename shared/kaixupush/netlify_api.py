"""The Netlify API client KaixuPush needs: create a deploy, read it, upload a file.

Every call retries what is safe to retry: a 429 or 5xx answer (waiting what ``Retry-After``
says, else an exponential backoff) and transport failures, up to ``NETLIFY_MAX_ATTEMPTS``
and never past the caller's deadline. Creating a deploy is a POST, so it is retried only
when Netlify certainly did not act on it (429, or a connection that never opened). What
is left is raised as :class:`NetlifyError`, which says whether a later retry could help
and how long Netlify asked to wait: the job queue schedules its next attempt from that.
The token never appears in an error: Netlify's message is cut short and scrubbed.

Every attempt first spends one call of the token's budget (``KAIXUPUSH_NETLIFY_CALLS_PER_MIN``
on average, bursts of ten seconds' worth: a token bucket in PostgreSQL, keyed by a
keyed hash of the token, shared by every process). An attempt over budget never reaches
Netlify: it fails like a 429 Netlify would have sent, with the wait as its Retry-After, so
the same retries and job backoff apply, and the operator's token (shared by the customers
without one of their own) is never pushed into Netlify's own limits by one of them.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from shared import config, crypto, db, http11, numbers, throttle
from shared.admin import netlify_tokens
from shared.errors import ApiError
from shared.kaixupush import paths

log = logging.getLogger("kaixu.kaixupush.netlify")

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
TOKEN_REFUSALS = frozenset({401, 403})  # the token is bad or lacks access: no retry can help
_USER_AGENT = "KaixuPush (Kaixu Gateway)"
BodyFactory = Callable[[], AsyncIterator[bytes]]


class NetlifyError(Exception):
    """A Netlify call that failed for good (after the retries this call was allowed)."""

    def __init__(
        self,
        status: int | None,
        message: str,
        *,
        retry_after: float | None = None,
        sent: bool = True,
        budget: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status  # None: no HTTP answer (network failure, timeout)
        self.message = message
        self.retry_after = retry_after
        self.sent = sent  # False when the request certainly never reached Netlify
        self.budget = budget  # True: refused by the gateway's own budget for the token

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES

    def describe(self) -> str:
        return f"Netlify answered {self.status}: {self.message}" if self.status else self.message


async def customer_token(customer_id: int) -> str | None:
    """The customer's own Netlify token, None when it has none; 503 when it cannot be opened."""
    try:
        return await netlify_tokens.token_for(customer_id)
    except (crypto.DecryptionError, crypto.EncryptionNotConfigured):
        log.warning("the Netlify token of customer %s cannot be opened", customer_id)
        raise ApiError(
            503,
            "NETLIFY_TOKEN_UNAVAILABLE",
            "The stored Netlify token of this customer cannot be opened; an admin must set it again.",
        ) from None


def _operator_token() -> str:
    token = config.settings().netlify_auth_token
    if not token:
        raise ApiError(
            503, "NETLIFY_NOT_CONFIGURED", "No Netlify token is configured for this customer or the gateway."
        )
    return token


async def resolve_token(customer_id: int) -> str:
    """The customer's own Netlify token, else the operator's NETLIFY_AUTH_TOKEN, else 503.

    For work on a deploy that already exists; creating one goes through :func:`deploy_token`."""
    return await customer_token(customer_id) or _operator_token()


async def deploy_token(project: dict[str, Any]) -> str:
    """The token to create a deploy on the project's site.

    A customer's own token limits the sites it reaches to what Netlify lets that customer
    deploy to. The operator's token reaches every site of the operator's account, so it is
    used only for a project an admin registered (a key could name anyone's site)."""
    token = await customer_token(project["customer_id"])
    if token:
        return token
    if project["registered_by"] != "admin":
        raise ApiError(
            403,
            "ADMIN_REGISTRATION_REQUIRED",
            f"Project {project['project_id']} was registered with a key and this customer has no "
            "Netlify token of its own; an admin must register the project (or set the customer's "
            "Netlify token) before it can deploy.",
        )
    return _operator_token()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), None if absent."""
    if not value:
        return None
    value = value.strip()
    if (seconds := numbers.whole(value)) is not None:
        return float(seconds)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_s(attempt: int) -> float:
    """0.25 s, 0.5 s, 1 s... (max 8 s) plus up to 20% jitter."""
    base = min(8.0, 0.25 * 2.0 ** (attempt - 1))
    return base * (1 + random.random() * 0.2)


def _over_budget(wait_s: float) -> NetlifyError:
    return NetlifyError(
        429,
        "the gateway's budget of Netlify calls for this token is spent",
        retry_after=wait_s,
        sent=False,
        budget=True,
    )


async def spend_budget(token: str) -> None:
    """Spend one call of the token's budget, or raise the 429 an attempt over it gets."""
    per_min = config.settings().kaixupush_netlify_calls_per_min
    if per_min <= 0:
        return
    row = await db.fetch_row(
        "SELECT kx_netlify_take(%s, %s, %s) AS wait_s",
        (throttle.subject_hash("netlify-token:" + token), per_min / 60, max(1.0, per_min / 6)),
    )
    if row["wait_s"] > 0:
        raise _over_budget(float(row["wait_s"]))


def to_api_error(error: NetlifyError) -> ApiError:
    """What a caller of the gateway sees when Netlify failed. What no retry can fix has a code
    of its own, so a client stops at once: the token refused (``NETLIFY_TOKEN_REJECTED``,
    401/403) or another refusal (``NETLIFY_REFUSED``, e.g. 404, 422). ``NETLIFY_ERROR``
    (5xx after this call's retries), ``NETLIFY_UNREACHABLE`` and the 429s may pass."""
    if error.budget:
        wait = max(1, math.ceil(error.retry_after or 1))
        return ApiError(
            429,
            "NETLIFY_RATE_LIMITED",
            f"The gateway's budget of Netlify calls for this account is spent; retry in {wait} s.",
            headers={"retry-after": str(wait)},
            retry_after_s=wait,
            scope="gateway",
        )
    if error.status == 429:
        wait = max(1, round(error.retry_after or 30))
        return ApiError(
            429,
            "NETLIFY_RATE_LIMITED",
            "Netlify is rate limiting this account; retry later.",
            headers={"retry-after": str(wait)},
            retry_after_s=wait,
            scope="netlify",
        )
    if error.status is None:
        return ApiError(502, "NETLIFY_UNREACHABLE", f"Netlify could not be reached: {error.message}")
    if error.status in TOKEN_REFUSALS:
        return ApiError(
            502,
            "NETLIFY_TOKEN_REJECTED",
            f"Netlify refused the Netlify token this gateway holds for the account ({error.status}: "
            f"{error.message}): it is invalid, expired, revoked or without access to the site. The "
            "gateway's operator must set a valid one; retrying will not help.",
            netlify_status=error.status,
        )
    if not error.retryable:
        return ApiError(
            502,
            "NETLIFY_REFUSED",
            f"Netlify refused the request ({error.status}): {error.message}",
            netlify_status=error.status,
        )
    return ApiError(
        502, "NETLIFY_ERROR", f"Netlify failed the request: {error.message}", netlify_status=error.status
    )


class Netlify:
    """One customer's view of the API: its token, and the deadline of the work at hand."""

    def __init__(self, token: str, *, deadline: float | None = None) -> None:
        self._token = token
        self._deadline = deadline  # time.monotonic() value no retry may wait past

    async def create_deploy(
        self, site_id: str, *, title: str, branch: str, draft: bool, files: dict[str, str]
    ) -> dict[str, Any]:
        """POST /sites/{site}/deploys (async: Netlify may answer 'preparing' first)."""
        body = {"files": files, "async": True, "draft": draft, "branch": branch}
        return await self._json(
            "POST",
            f"/sites/{quote(site_id, safe='')}/deploys",
            params={"title": title},
            json=body,
            retry_if=lambda error: error.status == 429 or not error.sent,
        )

    async def get_deploy(self, deploy_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/deploys/{quote(deploy_id, safe='')}")

    async def list_site_files(self, site_id: str) -> list[dict[str, Any]]:
        """GET /sites/{site}/files: the files of the site's published deploy, each
        ``{path, sha, size, ...}`` (an empty list before its first deploy)."""
        files = await self._call("GET", f"/sites/{quote(site_id, safe='')}/files", shape=list)
        return [file for file in files if isinstance(file, dict)]

    async def upload_file(
        self, deploy_id: str, path: str, size: int, body: bytes | BodyFactory
    ) -> dict[str, Any]:
        """PUT the file's bytes (``body`` is the bytes or makes a fresh stream per attempt)."""
        return await self._json(
            "PUT",
            f"/deploys/{quote(deploy_id, safe='')}/files/{paths.url_path(path)}",
            params={"size": str(size)},
            content=body,
            headers={"content-type": "application/octet-stream", "content-length": str(size)},
        )

    async def _json(self, method: str, path: str, **request: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self._call(method, path, shape=dict, **request)
        return answer

    async def _call(
        self,
        method: str,
        path: str,
        *,
        shape: type,
        retry_if: Callable[[NetlifyError], bool] = lambda error: error.retryable,
        **request: Any,
    ) -> Any:
        """The answer, a JSON value of ``shape`` (an object or a list), after the retries."""
        attempts = max(1, config.settings().netlify_max_attempts)
        for attempt in range(1, attempts + 1):
            try:
                return await self._once(method, path, attempt, shape, **request)
            except NetlifyError as error:
                wait = error.retry_after if error.retry_after is not None else backoff_s(attempt)
                if (
                    attempt == attempts
                    or not (error.retryable and retry_if(error))
                    or not self._can_wait(wait)
                ):
                    raise
                log.info("Netlify %s %s: %s; retrying in %.2fs", method, path, error.describe(), wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def _can_wait(self, wait: float) -> bool:
        if wait > config.settings().netlify_retry_max_wait_s:
            return False
        return self._deadline is None or time.monotonic() + wait < self._deadline

    async def _once(
        self,
        method: str,
        path: str,
        attempt: int,
        shape: type,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        content: bytes | BodyFactory | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        cfg = config.settings()
        sent_headers = {
            "authorization": f"Bearer {self._token}",
            "user-agent": _USER_AGENT,
            "accept": "application/json",
            **(headers or {}),
        }
        if attempt > 1:
            sent_headers["x-nf-retry-count"] = str(attempt - 1)
        await spend_budget(self._token)
        url = cfg.netlify_api_base + path + (f"?{urlencode(params)}" if params else "")
        if json is not None:
            content, sent_headers["content-type"] = orjson.dumps(json), "application/json"
        body = content() if callable(content) else content
        try:
            response = await send(method, url, sent_headers, body, cfg.netlify_timeout_s)
            try:
                raw = await response.aread()
            finally:
                await response.aclose()
        except (http11.ConnectError, http11.ConnectTimeout) as exc:
            raise NetlifyError(None, f"connection failed ({type(exc).__name__})", sent=False) from None
        except http11.TimeoutException:
            raise NetlifyError(None, f"no answer within {cfg.netlify_timeout_s:g} s") from None
        except http11.TransportError as exc:
            raise NetlifyError(None, f"transport failed ({type(exc).__name__})") from None
        return self._read(response, raw, shape)

    def _read(self, response: http11.Response, raw: bytes, shape: type) -> Any:
        try:
            data = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            data = None
        if response.is_success and isinstance(data, shape):
            return data
        if response.is_success:
            raise NetlifyError(
                response.status, "the answer was not a JSON " + ("object" if shape is dict else "array")
            )
        message = data.get("message") or data.get("error") if isinstance(data, dict) else None
        text = str(message or raw.decode(errors="replace").strip() or f"HTTP {response.status}")
        text = text.replace(self._token, "[token]")[:300]
        raise NetlifyError(
            response.status, text, retry_after=parse_retry_after(response.headers.get("retry-after"))
        )


async def send(
    method: str, url: str, headers: dict[str, str], body: bytes | AsyncIterator[bytes] | None, timeout: float
) -> http11.Response:
    """One request on the providers' connection pool: bytes in one write, a stream as it is
    produced (its length is in ``headers``, else it goes chunked)."""
    pool = http11.pool()
    if body is None or isinstance(body, bytes):
        sized = {name: value for name, value in headers.items() if name != "content-length"}
        origin, head = http11.request_head(method, url, sized, len(body or b""))
        return await pool.request(origin, head, body or b"", timeout)
    chunked = "content-length" not in headers
    origin, target, host = http11.split_url(url)
    fields = {"host": host.decode(), **headers, **({"transfer-encoding": "chunked"} if chunked else {})}
    head = http11.encode_head(method.encode(), target, ((k.encode(), v.encode()) for k, v in fields.items()))
    return await pool.request_stream(origin, head, body, chunked, timeout)
