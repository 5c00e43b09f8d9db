"""A stream's reservation is a lease of output tokens, extended a step at a time.

ADMIT reserves the prompt's bound and a first step of output (``LEASE_STEP_TOKENS``); while
the provider writes, :class:`Lease` takes more, a step at a time, always at least one step
ahead of what the provider has streamed: each step is one round trip (``kx_extend_lease``,
sql/functions/leases.sql), at most one is out per call, and the relay does not wait for it
unless the stream would otherwise read past what is leased.

What the provider has generated is bounded by what it streamed: every token of a byte-level
BPE or byte-fallback tokenizer is at least one byte, so a stream's output tokens are at most
the UTF-8 bytes of its text, tool-call arguments and thinking. The lease counts those bytes.
(A model that reasons unseen is leased all of its max_tokens at admission: see ADMIT.)

When a step is refused (the cap or the key's cap is reached, the credit is spent, the key or
device is revoked, the customer disabled, the reservation released) the lease says so, and
the stream stops reading the provider: the stream's spend never passes what was leased.
The same statement with no step is the stream's keep-alive for the reaper, on a timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared import db
from shared.billing import alerts
from shared.errors import REFUSALS
from shared.money import Month

if TYPE_CHECKING:
    from shared.gateway.pipeline import Call

log = logging.getLogger("kaixu.gateway")

EXTEND = db.named_call(
    "kx_extend_lease", reservation_id="bigint", customer_id="bigint", api_key_id="bigint", add_tokens="bigint"
)
KEEP_ALIVE_EVERY_S = 120.0  # well inside the reaper's patience (UPSTREAM_TIMEOUT_S + 5 min)


class LeaseRefused(Exception):
    """A step the database refused: the stream stops, and says why in its own grammar."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Lease:
    """The output tokens a streamed call holds, grown ahead of what its provider streams."""

    def __init__(self, call: Call, step: int, on_refusal: Callable[[LeaseRefused], None]) -> None:
        self.call = call
        self.step = step
        self.generated = 0  # the bound on output tokens so far: bytes the provider streamed
        self.steps = 0  # steps granted
        self.refusal: LeaseRefused | None = None
        self._on_refusal = on_refusal
        self._pending: asyncio.Future[None] | None = None  # the one statement out, if any
        self._keeper: asyncio.Future[None] | None = None

    @property
    def leased(self) -> int:
        return self.call.leased_tokens

    @property
    def ceiling(self) -> int:
        """No lease grows past max_tokens: the provider writes no more."""
        return self.call.conv.max_tokens

    def start(self) -> None:
        """Keep the reservation alive on a timer while the stream lives (a quiet provider or a
        slow reader takes no steps), checking the key and customer each time."""
        self._keeper = asyncio.ensure_future(self._keep_alive())

    async def cover(self, size: int) -> bool:
        """Count ``size`` more streamed bytes, once the lease covers them: at once when it does,
        else after the step that makes it (the stream reads no further meanwhile). Takes the
        next step early, without waiting, when less than a step is left ahead. False: a step
        was refused, and the stream must stop."""
        need = self.generated + size
        while need > self.leased and self.leased < self.ceiling and self.refusal is None:
            pending = self._pending or self._extend(need)
            await asyncio.wait((pending,))
        if self.refusal is not None:
            return False
        self.generated = need
        if self._pending is None and self.leased < self.ceiling and self.leased - need < self.step:
            self._extend(need)
        return True

    def _extend(self, need: int) -> asyncio.Future[None]:
        """Start the next step: enough for ``need`` bytes and a step beyond, never past the ceiling."""
        add = min(self.ceiling - self.leased, max(self.step, need + self.step - self.leased))
        pending = self._pending = asyncio.ensure_future(self._run(add))
        return pending

    async def _run(self, add: int) -> None:
        try:
            row = await db.fetch_row(EXTEND, self._params(add))
        except Exception as error:
            if not isinstance(error, db.UNAVAILABLE):
                log.exception("lease step failed (request %s)", self.call.ctx.request_id)
            if add:  # a step the stream needs; a keep-alive that failed only risks an early release
                message = "The database is unavailable; the stream was stopped."
                self._refuse(LeaseRefused(503, "DB_UNAVAILABLE", message))
        else:
            if row["status"]:
                self._refuse(self._refusal(row))
            elif add:
                self.call.leased_tokens = row["leased_tokens"]
                self.steps += 1
        finally:
            self._pending = None

    def _params(self, add: int) -> dict[str, Any]:
        admission = self.call.admission
        return {
            "reservation_id": admission["reservation_id"],
            "customer_id": admission["customer_id"],
            "api_key_id": admission["api_key_id"],
            "add_tokens": add,
        }

    def _refusal(self, row: dict[str, Any]) -> LeaseRefused:
        code = row["code"]
        if code == "CAP_REACHED":  # the cap alert, as for a call refused at admission
            admission, month, scope = self.call.admission, Month.of(row), row["scope"]
            customer_id, api_key_id = admission["customer_id"], admission["api_key_id"]
            self.call.ctx.defer(lambda: alerts.check_refusal(customer_id, api_key_id, month, scope))
        message = REFUSALS[code].format(scope=row["scope"], provider="", model="", limit="", retry="")
        return LeaseRefused(row["status"], code, f"{message} The stream was stopped.")

    def _refuse(self, refusal: LeaseRefused) -> None:
        if self.refusal is None:
            self.refusal = refusal
            self._on_refusal(refusal)

    async def _keep_alive(self) -> None:
        while self.refusal is None:
            await asyncio.sleep(KEEP_ALIVE_EVERY_S)
            if self._pending is None:  # a step out refreshes the reservation itself
                self._pending = asyncio.ensure_future(self._run(0))
            await asyncio.wait((self._pending,))

    async def close(self) -> None:
        """Before the call is settled: no keep-alive any more, and no step left out (a step and
        the settlement of the same reservation must never wait on each other's locks)."""
        if self._keeper is not None:
            self._keeper.cancel()
            self._keeper = None
        while self._pending is not None:
            await asyncio.wait((self._pending,))
