"""The soak's traffic: gateway calls with faults, and the admin work that runs beside them.

Calls go over raw asyncio HTTP/1.1 keep-alive connections (one per worker, as ``bench/load.py``
does) so that the driver can hang up at exactly the moment it chooses: after the first
``delta`` of a stream, or while a chat call still waits for its provider. Each call carries
its own request id (``x-kaixu-request-id: soak-N``), so every answer the client saw can be
matched with the rows the gateway wrote, and its own fault, written into the prompt for the
provider fake (``bench/soak_upstream.py``).

Beside the calls, admin tasks credit top-ups (some sent twice with one Idempotency-Key, at
once, as a double click would) and rotate keys; every call picks its key when it starts, so
calls race the rotations and some meet a key revoked under them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.soak_upstream import make_directive

CHAT_PATH = "/.netlify/functions/gateway-chat"
STREAM_PATH = "/.netlify/functions/gateway-stream"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
PROVIDERS = tuple(MODELS)
# Refusals decided before or by ADMIT: nothing was reserved, nothing may be billed.
ADMISSION_CODES = {
    "INVALID_KEY",
    "KEY_REVOKED",
    "CAP_REACHED",
    "DEVICE_LIMIT",
    "INSTALL_ID_REQUIRED",
    "RATE_LIMITED",
    "CONCURRENCY_LIMIT",
}

# name: (weight, endpoints it applies to). Without --faults only "none" and "slow" are drawn.
FAULTS: dict[str, tuple[float, tuple[str, ...]]] = {
    "none": (0.50, ("chat", "stream")),
    "slow": (0.12, ("chat", "stream")),
    "status": (0.07, ("chat", "stream")),  # the provider's error status and body
    "error_after": (0.05, ("stream",)),  # the provider's mid-stream error event
    "drop": (0.05, ("chat", "stream")),  # the provider cuts the connection (mid-body / mid-stream)
    "no_terminal": (0.03, ("stream",)),  # the stream ends without its end marker
    "stall": (0.006, ("chat", "stream")),  # silence before the answer, past UPSTREAM_TIMEOUT_S
    "stall_mid": (0.006, ("stream",)),  # silence mid-stream, past UPSTREAM_TIMEOUT_S
    "client_gone_stream": (0.08, ("stream",)),  # the client hangs up after the first delta
    "client_gone_chat": (0.03, ("chat",)),  # the client hangs up while the provider thinks
}
CLEAN = ("none", "slow")


@dataclass
class KeySlot:
    """One key the traffic uses; a rotation puts the new key in the same slot."""

    slot: int
    customer_id: int
    key_id: int
    secret: str
    rpm: int
    seats: int
    installs: list[str]
    key_ids: list[int] = field(default_factory=list)


@dataclass
class Rotation:
    old_key_id: int
    new_key_id: int
    answered_at: float  # wall clock (the database's clock too: same machine) when it answered


@dataclass
class TopUp:
    customer_id: int
    amount_cents: int
    idempotency_key: str
    topup_ids: list[int]  # what each send answered (a double send must answer one id)
    statuses: list[int]


@dataclass
class Outcomes:
    """What the client saw. ``calls`` maps each request id to (key id, endpoint, provider,
    fault, outcome, status, code)."""

    calls: dict[str, tuple[int, str, str, str, str, int, str]] = field(default_factory=dict)
    rotations: list[Rotation] = field(default_factory=list)
    topups: list[TopUp] = field(default_factory=list)
    admin_errors: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def by_outcome(self) -> Counter[str]:
        return Counter(call[4] for call in self.calls.values())

    def refusals(self) -> Counter[str]:
        return Counter(call[6] for call in self.calls.values() if call[4] == "refused")


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def ensure(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self.reader, self.writer

    def close(self, *, reset: bool = False) -> None:
        if self.writer is not None:
            if reset:
                self.writer.transport.abort()
            else:
                self.writer.close()
        self.reader = self.writer = None


def build_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        f"host: 127.0.0.1:{port}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.strip().split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return
        yield data[:-2]


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        return b"".join([chunk async for chunk in read_chunks(reader)])
    return await reader.readexactly(int(headers.get("content-length", "0")))


@dataclass
class Plan:
    """One call, decided before it is sent."""

    rid: str
    endpoint: str
    provider: str
    fault: str
    slot: KeySlot
    key_id: int
    secret: str
    install: str | None
    body: bytes


class Traffic:
    def __init__(
        self,
        port: int,
        slots: list[KeySlot],
        *,
        faults: bool,
        seed: int,
        upstream_timeout_s: float,
        deadline: float,
    ) -> None:
        self.port = port
        self.slots = slots
        self.rng = random.Random(seed)
        self.faults = faults
        self.upstream_timeout_s = upstream_timeout_s
        self.deadline = deadline
        self.outcomes = Outcomes()
        self.sequence = 0
        names = [n for n in FAULTS if faults or n in CLEAN]
        self.fault_names = names
        self.fault_weights = [FAULTS[n][0] for n in names]

    # ----- planning

    def _directive(self, fault: str, endpoint: str, max_tokens: int) -> str:
        rng = self.rng
        usage = {"input_tokens": rng.randint(5, 60), "output_tokens": rng.randint(1, max_tokens)}
        stall = round(self.upstream_timeout_s + 0.5, 2)
        extra: dict[str, Any] = {}
        if fault == "slow":
            extra = (
                {"words": rng.randint(5, 15), "chunk_delay_s": rng.choice((0.005, 0.01, 0.02))}
                if endpoint == "stream"
                else {"delay_s": rng.choice((0.01, 0.03, 0.05))}
            )
        elif fault == "status":
            extra = {"status": rng.choice((400, 401, 429, 500, 503, 529))}
        elif fault == "error_after":
            extra = {"words": 4, "error_after": rng.randint(0, 3), "chunk_delay_s": 0.005}
        elif fault == "drop":
            extra = {"words": 4, "drop_after": rng.randint(0, 3), "chunk_delay_s": 0.005}
        elif fault == "no_terminal":
            extra = {"words": 3, "no_terminal": 1}
        elif fault == "stall":
            extra = {"delay_s": stall}
        elif fault == "stall_mid":
            extra = {"words": 2, "chunk_delay_s": stall}
        elif fault == "client_gone_stream":
            extra = {"words": rng.choice((8, 12, 60)), "chunk_delay_s": 0.03}
        elif fault == "client_gone_chat":
            extra = {"delay_s": 0.3}
        return make_directive(**usage, **extra)

    def plan(self) -> Plan:
        rng = self.rng
        self.sequence += 1
        rid = f"soak-{self.sequence}"
        fault = rng.choices(self.fault_names, self.fault_weights)[0]
        endpoints = FAULTS[fault][1]
        endpoint = rng.choice(endpoints)
        provider = rng.choice(PROVIDERS)
        slot = rng.choice(self.slots)
        draw = rng.random()  # mostly the devices that fit the seats; a few more, and a few with none
        seated = slot.installs[: slot.seats]
        install = None if draw < 0.01 else rng.choice(seated if draw < 0.93 else slot.installs)
        max_tokens = rng.choice((16, 64, 256))
        prompt = f"Soak call {rid}: say something. {self._directive(fault, endpoint, max_tokens)}"
        body = {
            "provider": provider,
            "model": MODELS[provider],
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
        }
        return Plan(
            rid,
            endpoint,
            provider,
            fault,
            slot,
            slot.key_id,
            slot.secret,
            install,
            json.dumps(body, separators=(",", ":")).encode(),
        )

    # ----- one call

    async def call(self, conn: Connection, plan: Plan) -> tuple[str, int, str]:
        """(outcome, status, code) of one call as the client saw it."""
        headers = {
            "authorization": f"Bearer {plan.secret}",
            "x-kaixu-request-id": plan.rid,
            "x-kaixu-app": "soak",
            "user-agent": "kaixu-soak/1",
        }
        if plan.install is not None:
            headers["x-kaixu-install-id"] = plan.install
        path = STREAM_PATH if plan.endpoint == "stream" else CHAT_PATH
        reader, writer = await conn.ensure()
        writer.write(build_request(self.port, path, plan.body, headers))
        if plan.fault == "client_gone_chat":
            try:  # refused at admission, it is answered at once; else we leave before the answer
                status, head = await asyncio.wait_for(read_head(reader), 0.08)
            except TimeoutError:
                conn.close(reset=self.rng.random() < 0.5)
                return "client_disconnect", 0, ""
        else:
            status, head = await read_head(reader)
        if plan.endpoint == "stream" and status == 200:
            return await self._stream(reader, conn, plan)
        body = await read_body(reader, head)
        if head.get("connection", "").lower() == "close":
            conn.close()
        if status == 200:
            return "ok", status, ""
        try:
            code = str(json.loads(body).get("code", ""))
        except ValueError:
            code = "NOT_JSON"
        if code in ADMISSION_CODES:
            return "refused", status, code
        if status == 500:
            return "server_error", status, code
        return "upstream_error", status, code

    async def _stream(
        self, reader: asyncio.StreamReader, conn: Connection, plan: Plan
    ) -> tuple[str, int, str]:
        leave = plan.fault == "client_gone_stream"
        pending = b""
        outcome, code = "broken_stream", ""
        async for chunk in read_chunks(reader):
            pending += chunk
            while b"\n\n" in pending:
                frame, pending = pending.split(b"\n\n", 1)
                event = frame.split(b"\n", 1)[0].removeprefix(b"event: ").decode()
                if event == "delta" and leave:
                    conn.close(reset=self.rng.random() < 0.5)
                    return "client_disconnect", 200, ""
                if event == "done":  # after an error: stopped at the cap (or a revoked key)
                    outcome = "stopped" if outcome == "stream_error" else "ok"
                elif event == "error":
                    outcome = "stream_error"
                    data = frame.split(b"data: ", 1)[1] if b"data: " in frame else b"{}"
                    code = str(json.loads(data).get("code", ""))
        return outcome, 200, code

    # ----- workers

    async def worker(self, budget: list[int]) -> None:
        conn = Connection(self.port)
        try:
            while budget[0] > 0 and time.time() < self.deadline:
                budget[0] -= 1
                plan = self.plan()
                try:
                    outcome, status, code = await self.call(conn, plan)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as error:
                    conn.close()
                    outcome, status, code = "broken", 0, type(error).__name__
                self.outcomes.calls[plan.rid] = (
                    plan.key_id,
                    plan.endpoint,
                    plan.provider,
                    plan.fault,
                    outcome,
                    status,
                    code,
                )
        finally:
            conn.close()

    async def run(self, calls: int, concurrency: int) -> None:
        budget = [calls]
        started = time.perf_counter()
        await asyncio.gather(*(self.worker(budget) for _ in range(concurrency)))
        self.outcomes.elapsed_s += time.perf_counter() - started


# --------------------------------------------------------------------------- admin work


class Admin:
    """The operator's side, over the admin API (an admin token from admin-login)."""

    def __init__(self, base_url: str, password: str) -> None:
        self.http = httpx.AsyncClient(base_url=base_url + "/.netlify/functions/", timeout=60)
        self.password = password

    async def login(self) -> None:
        answer = await self.http.post("admin-login", json={"password": self.password})
        answer.raise_for_status()
        self.http.headers["authorization"] = f"Bearer {answer.json()['token']}"

    async def close(self) -> None:
        await self.http.aclose()

    async def post(self, path: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        answer = await self.http.post(path, json=body, **kwargs)
        if answer.status_code >= 300:
            raise RuntimeError(f"POST {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        answer = await self.http.get(path, params=params)
        if answer.status_code >= 300:
            raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:300]}")
        return answer.json()


async def topups_loop(
    admin: Admin, customers: list[int], outcomes: Outcomes, every_s: float, stop: asyncio.Event, seed: int
) -> None:
    """Credit small top-ups while the calls run; one in five is sent twice at once with the
    same Idempotency-Key (it must credit once and answer the same top-up both times)."""
    rng = random.Random(seed)
    while not stop.is_set():
        customer = rng.choice(customers)
        amount = rng.randint(1, 3)
        key = f"soak-topup-{uuid.uuid4().hex}"
        sends = 2 if rng.random() < 0.2 else 1
        body = {"customer_id": customer, "amount_cents": amount}
        answers = await asyncio.gather(
            *(
                admin.http.post("admin-topups", json=body, headers={"idempotency-key": key})
                for _ in range(sends)
            ),
            return_exceptions=True,
        )
        ids, statuses = [], []
        for answer in answers:
            if isinstance(answer, BaseException):
                outcomes.admin_errors.append(f"topup: {answer!r}")
                continue
            statuses.append(answer.status_code)
            if answer.status_code in (200, 201):
                ids.append(int(answer.json()["item"]["id"]))
            else:
                outcomes.admin_errors.append(f"topup: {answer.status_code} {answer.text[:200]}")
        outcomes.topups.append(TopUp(customer, amount, key, ids, statuses))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(0.5, 1.5) * every_s)


async def rotations_loop(
    admin: Admin, slots: list[KeySlot], outcomes: Outcomes, every_s: float, stop: asyncio.Event, seed: int
) -> None:
    """Rotate a random key now and then: the new secret goes into the slot at once, so calls
    that picked the old one just before race the revocation."""
    rng = random.Random(seed)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(0.5, 1.5) * every_s)
        if stop.is_set():
            return
        slot = rng.choice(slots)
        old = slot.key_id
        try:
            answer = await admin.http.post("admin-keys", params={"id": old, "action": "rotate"})
        except httpx.HTTPError as error:
            outcomes.admin_errors.append(f"rotate: {error!r}")
            continue
        if answer.status_code != 200:
            outcomes.admin_errors.append(f"rotate: {answer.status_code} {answer.text[:200]}")
            continue
        item = answer.json()["item"]
        slot.key_id, slot.secret = int(item["id"]), item["key"]
        slot.key_ids.append(slot.key_id)
        outcomes.rotations.append(Rotation(old, slot.key_id, time.time()))
