"""The monitor's live tail: one shared poller per process fans new rows out to every open tail.

The original polled the database every second for each open admin tab (weak point 30).
Here each event loop has one :class:`Hub`: while at least one tail is open, a single task
reads ``gateway_events`` rows above the last id it saw every 500 ms and hands each new row
(already rendered as an SSE frame) to every tail's buffer; the task ends when the last tail
closes. Ten open tabs cost one query every 500 ms, not ten a second.

Ids come from a sequence, so a row whose transaction commits late (the gateway writes its
monitor row inside SETTLE) can appear below ids already seen. The hub remembers such gaps for
a short grace period and asks for them again, so a late row is still delivered, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from collections.abc import AsyncGenerator
from typing import Any

from shared import aws_lambda, config, db, params, sse
from shared.admin import auth as admin_auth
from shared.closing_stream import ClosingStreamingResponse
from shared.errors import ApiError
from shared.http import Ctx

log = logging.getLogger("kaixu.monitor_tail")

POLL_INTERVAL_S = 0.5
POLL_BATCH = 500
BACKLOG_ROWS = 500
MAX_BUFFERED_ROWS = 10_000
GAP_GRACE_S = 10.0
MAX_GAPS = 1000
COLUMNS = (
    "id, created_at, level, kind, function_name, method, app, build, status, provider, model, "
    "duration_ms, request_id, summary, customer_id, api_key_id, code"
)

Frame = tuple[int, bytes]  # (row id, SSE frame)


def _frames(rows: list[dict[str, Any]]) -> list[Frame]:
    return [(row["id"], sse.frame("row", row)) for row in rows]


class Tail:
    """One open tail: the frames waiting to be sent to its client."""

    def __init__(self) -> None:
        self.pending: deque[Frame] = deque()
        self.ready = asyncio.Event()
        self.overflowed = False

    def push(self, frames: list[Frame]) -> None:
        if len(self.pending) + len(frames) > MAX_BUFFERED_ROWS:
            self.overflowed = True  # the client stopped reading: end its tail
        else:
            self.pending.extend(frames)
        self.ready.set()

    async def next(self, timeout: float) -> list[Frame]:
        """The frames that arrived, or [] after ``timeout`` seconds of quiet."""
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            return []
        self.ready.clear()
        frames = list(self.pending)
        self.pending.clear()
        return frames


class Hub:
    """The open tails of one event loop and the single poller that feeds them."""

    def __init__(self) -> None:
        self.tails: set[Tail] = set()
        self.last_id = 0
        self.gaps: dict[int, float] = {}  # missing id -> when to stop waiting for it
        self.polls = 0
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._task is not None

    async def open(self) -> tuple[Tail, int]:
        """Register a tail; returns it and the id up to which rows are NOT sent to it by the hub."""
        async with self._lock:
            if self._task is None:
                row = await db.fetch_row("SELECT coalesce(max(id), 0) AS id FROM gateway_events")
                self.last_id, self.gaps = row["id"], {}
                self._task = asyncio.create_task(self._run())
            tail = Tail()
            self.tails.add(tail)  # no await between this and reading last_id below
            return tail, self.last_id

    def close(self, tail: Tail) -> None:
        self.tails.discard(tail)

    async def _run(self) -> None:
        while self.tails:
            await asyncio.sleep(POLL_INTERVAL_S)
            try:
                while self.tails and await self._poll_once() >= POLL_BATCH:
                    pass  # far behind: keep reading without waiting
            except Exception:
                log.warning("monitor tail poll failed; retrying", exc_info=True)
        self._task = None  # same step as the emptiness check: a new open() starts a new poller

    async def _poll_once(self) -> int:
        self.polls += 1
        now = time.monotonic()
        self.gaps = {gap: until for gap, until in self.gaps.items() if until > now}
        rows = await db.fetch_all(
            f"SELECT {COLUMNS} FROM gateway_events WHERE id > %s OR id = ANY(%s) ORDER BY id LIMIT %s",
            (self.last_id, list(self.gaps), POLL_BATCH),
        )
        for row in rows:
            self._account(row["id"], now)
        if rows:
            frames = _frames(rows)
            for tail in list(self.tails):
                tail.push(frames)
        return len(rows)

    def _account(self, row_id: int, now: float) -> None:
        """Advance past ``row_id``, remembering skipped ids that may still commit."""
        if self.gaps.pop(row_id, None) is not None or row_id <= self.last_id:
            return
        for missing in range(self.last_id + 1, min(row_id, self.last_id + 1 + MAX_GAPS)):
            self.gaps[missing] = now + GAP_GRACE_S
        self.last_id = row_id


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    loop = asyncio.get_running_loop()
    current = _hubs.get(loop)
    if current is None:
        current = _hubs[loop] = Hub()
    return current


async def _stream(
    tail: Tail, after_id: int, backlog: list[Frame], ends_at: float
) -> AsyncGenerator[bytes, None]:
    """Rows as they come, until the admin session that opened the tail ends."""
    sent_early = {row_id for row_id, _ in backlog}
    yield sse.frame("hello", {"after_id": after_id})
    for _, data in backlog:
        yield data
    while True:
        left = ends_at - time.time()
        if left <= 0:
            yield sse.frame(
                "error", {"error": "Your admin session ended; log in again.", "code": "SESSION_EXPIRED"}
            )
            return
        frames = await tail.next(min(config.settings().stream_ping_s, left))
        if tail.overflowed:
            yield sse.frame("error", {"error": "The tail fell too far behind.", "code": "TAIL_OVERFLOW"})
            return
        if not frames:
            yield sse.frame("ping", {"t": int(time.time() * 1000)})
        for row_id, data in frames:
            if row_id > after_id and row_id not in sent_early:
                yield data


async def open_tail(ctx: Ctx) -> ClosingStreamingResponse:
    """GET ?tail=1&after_id=N: SSE ``hello``, then every row above N as it is written."""
    if aws_lambda.buffers_responses(ctx.request.scope):
        raise ApiError(
            400,
            "STREAMING_UNAVAILABLE",
            "This host buffers whole responses, so a live tail would never arrive; "
            "open it on the streaming origin (the deploy's StreamUrl).",
        )
    after_id = params.int_param(ctx, "after_id", minimum=0)
    owner = hub()
    tail, boundary = await owner.open()
    try:
        start = boundary if after_id is None else after_id
        rows = []
        if start < boundary:  # catch up on rows the hub had already passed, newest 500
            rows = await db.fetch_all(
                f"SELECT {COLUMNS} FROM gateway_events WHERE id > %s AND id <= %s ORDER BY id DESC LIMIT %s",
                (start, boundary, BACKLOG_ROWS),
            )
    except BaseException:
        owner.close(tail)
        raise
    return ClosingStreamingResponse(
        _stream(tail, start, _frames(rows[::-1]), admin_auth.session_ends_at(ctx)),
        media_type="text/event-stream",
        headers=sse.HEADERS,
        on_close=lambda: owner.close(tail),
    )
