"""A loopback fake of the Stripe API's Checkout Sessions, for tests.

A real HTTP server (uvicorn on 127.0.0.1, in a background thread) that speaks Stripe's wire
format: form-encoded requests with bracketed nested keys (``line_items[0][price_data][currency]``),
``Authorization: Bearer <secret key>``, ``Idempotency-Key`` semantics (same key and same
parameters replay the first answer; different parameters are an ``idempotency_error``), and
Stripe's JSON error envelope. The official SDK talks to it unchanged through
``StripeClient(..., base_addresses={"api": fake.url})``.

    with FakeStripe() as fake:               # or serve_fake_stripe() in a fixture
        ...                                  # point STRIPE_API_BASE at fake.url
        fake.requests[-1].form["metadata"]   # what the SDK sent, decoded
        fake.fail_next(402, "card_error", "Your card was declined.")
        event = fake.event(session_id, "checkout.session.completed", payment_status="paid")
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from tests.support.fakes.server import LoopbackServer

DEFAULT_SECRET_KEY = "sk_test_51FakeKaixuStripeKey0123456789"
MINIMUM_AMOUNT = 50  # Stripe's minimum charge for usd, in cents

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, Any]


def decode_form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding back to nested dicts and lists: ``a[b][0][c]=1``."""
    root: dict[str, Any] = {}
    for name, value in parse_qsl(body.decode(), keep_blank_values=True):
        head, *rest = name.replace("]", "").split("[")
        parts = [head, *rest]
        node: Any = root
        for part, following in itertools.pairwise(parts):
            child: Any = [] if following.isdigit() else {}
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                node[index] = node[index] if node[index] is not None else child
                node = node[index]
            else:
                node = node.setdefault(part, child)
        last = parts[-1]
        if isinstance(node, list):
            index = int(last)
            while len(node) <= index:
                node.append(None)
            node[index] = value
        else:
            node[last] = value
    return root


def _error(status: int, kind: str, message: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"type": kind, "message": message, **extra}}


class FakeStripe:
    """Checkout Sessions on one loopback port: ``start()``, use ``url``, ``stop()``."""

    def __init__(self, secret_key: str = DEFAULT_SECRET_KEY) -> None:
        self.secret_key = secret_key
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._sessions: dict[str, dict[str, Any]] = {}
        self._idempotent: dict[str, tuple[dict[str, Any], tuple[int, dict[str, Any]]]] = {}
        self._failures: list[tuple[int, dict[str, Any]]] = []
        self._http = LoopbackServer(self, "fake-stripe", loop="asyncio", http="h11")
        self.url = ""

    # ----- lifecycle

    def start(self) -> FakeStripe:
        self.url = self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> FakeStripe:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----- scripting and observation

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._sessions.clear()
            self._idempotent.clear()
            self._failures.clear()

    def fail_next(self, status: int, kind: str, message: str, **extra: Any) -> None:
        """The next request is answered with this Stripe error (e.g. 402 card_error)."""
        with self._lock:
            self._failures.append(_error(status, kind, message, **extra))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def session(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._sessions[session_id]))

    def event(self, session_id: str, event_type: str, **changes: Any) -> dict[str, Any]:
        """A webhook event carrying the session as Stripe would send it after checkout."""
        session = {**self.session(session_id), "status": "complete", **changes}
        return {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2024-06-20",
            "created": int(time.time()),
            "data": {"object": session},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }

    # ----- ASGI

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = RecordedRequest(scope["method"], scope["path"], headers, decode_form(body))
        with self._lock:
            self._requests.append(request)
        status, payload = self._answer(request)
        data = json.dumps(payload, indent=2).encode()
        response_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
            (b"request-id", ("req_" + secrets.token_hex(7)).encode()),
            (b"stripe-version", headers.get("stripe-version", "2024-06-20").encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": data})

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            return _error(
                401, "invalid_request_error", f"Invalid API Key provided: {given[:8]}****{given[-4:]}"
            )
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
        if request.method == "POST" and request.path == "/v1/checkout/sessions":
            return self._idempotently(request)
        if request.method == "GET" and request.path.startswith("/v1/checkout/sessions/"):
            with self._lock:
                found = self._sessions.get(request.path.rsplit("/", 1)[-1])
            if found is None:
                return _error(
                    404, "invalid_request_error", "No such checkout.session", code="resource_missing"
                )
            return 200, found
        return _error(
            404, "invalid_request_error", f"Unrecognized request URL ({request.method}: {request.path})."
        )

    def _idempotently(self, request: RecordedRequest) -> tuple[int, dict[str, Any]]:
        key = request.headers.get("idempotency-key")
        with self._lock:
            if key and key in self._idempotent:
                form, answer = self._idempotent[key]
                if form != request.form:
                    return _error(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters they were "
                        f"first used with. Try using a key other than '{key}' if you meant to execute a "
                        "different request.",
                    )
                return answer
        answer = self._create_session(request.form)
        if key:
            with self._lock:
                self._idempotent[key] = (request.form, answer)
        return answer

    def _create_session(self, form: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if "mode" not in form:
            return _error(400, "invalid_request_error", "Missing required param: mode.", param="mode")
        items = form.get("line_items") or []
        if form["mode"] == "payment" and not items:
            return _error(
                400, "invalid_request_error", "Missing required param: line_items.", param="line_items"
            )
        try:
            total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
            currency = items[0]["price_data"]["currency"]
        except (KeyError, TypeError, ValueError):
            return _error(400, "invalid_request_error", "Invalid line_items.", param="line_items")
        if total < MINIMUM_AMOUNT:
            return _error(
                400,
                "invalid_request_error",
                f"The Checkout Session's total amount due must add up to at least $0.50 {currency}",
            )
        session_id = "cs_test_" + secrets.token_urlsafe(44).replace("-", "a").replace("_", "b")
        now = int(time.time())
        session = {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": form.get("cancel_url"),
            "client_reference_id": form.get("client_reference_id"),
            "created": now,
            "currency": currency,
            "customer": None,
            "customer_email": form.get("customer_email"),
            "expires_at": now + 86400,
            "livemode": False,
            "metadata": form.get("metadata", {}),
            "mode": form["mode"],
            "payment_intent": None,
            "payment_method_types": ["card"],
            "payment_status": "unpaid",
            "status": "open",
            "success_url": form.get("success_url"),
            "ui_mode": "hosted",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}#fidkdWxOYHwnPyd1blpxYHZxWjA0",
        }
        with self._lock:
            self._sessions[session_id] = session
        return 200, session


def serve_fake_stripe(secret_key: str = DEFAULT_SECRET_KEY) -> Iterator[FakeStripe]:
    """Body of a (module- or session-scoped) fixture: a started fake, stopped afterwards."""
    fake = FakeStripe(secret_key).start()
    try:
        yield fake
    finally:
        fake.stop()
