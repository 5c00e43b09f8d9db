"""The gateway pipeline: parse → ADMIT (one round trip) → upstream → SETTLE (one round trip).

Every admitted call is settled exactly once, whatever happens upstream or to the client:
:meth:`Call.settle` is idempotent in the database (the reservation row is consumed) and is
shielded from cancellation, so a client hanging up cannot leave money reserved.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

from shared import config, db, money, providers
from shared.billing import alerts, pricing
from shared.billing.catalogue import ModelInfo, UnknownModel, catalogue
from shared.billing.pricing import ModelPrice, Sell
from shared.errors import REFUSALS, REFUSED_FIELDS, ApiError, bad_request
from shared.gateway import admissions, keys, settlements
from shared.gateway.request import parse_request
from shared.gateway.versions import versions
from shared.http import Ctx, JSONResponse
from shared.money import Month
from shared.providers import Conversation, Usage
from shared.providers.conversation import IMAGE_TOKEN_BOUND

log = logging.getLogger("kaixu.gateway")
T = TypeVar("T")


# Kept back from a host's deadline (a Lambda's timeout) for SETTLE and the answer: SETTLE
# takes about a millisecond, a database under strain a second or more.
_SETTLE_RESERVE_S = 2.0
_ANSWER_S = 0.5  # of that reserve, kept for the answer once SETTLE has been tried
_PROMPT_OVERHEAD_TOKENS = 32  # per request: role markers, formatting
_MESSAGE_OVERHEAD_TOKENS = 8  # per message


def estimate_tokens(text_bytes: int) -> int:
    """A rough token count (about 4 bytes a token) for calls whose usage never arrived."""
    return math.ceil(text_bytes / 4)


Parse = Callable[[Any], Conversation]


def _install_id(ctx: Ctx) -> str | None:
    raw = ctx.headers.get("x-kaixu-install-id", "").strip()
    if not raw:
        return None
    if len(raw) > 128 or not raw.isprintable():
        raise bad_request("x-kaixu-install-id", "x-kaixu-install-id must be 1-128 printable characters.")
    return raw


def _unpriced(conv: Conversation) -> UnknownModel:
    message = f"Model {conv.provider}:{conv.model} has no price, so it cannot be billed or called."
    return UnknownModel(409, "UNPRICED_MODEL", message)


def _offered(conv: Conversation) -> ModelInfo:
    """The catalogue's entry for the request's model, checked against the request."""
    model = catalogue.find(conv.provider, conv.model)
    if model is None:
        raise _unpriced(conv)
    if (model.mode == "embedding") != conv.embedding:
        what = "not an embedding model" if conv.embedding else "an embedding model: call /v1/embeddings"
        raise bad_request("model", f"{conv.provider}/{conv.model} is {what}.")
    if conv.max_tokens > model.max_output_tokens:
        limit = model.max_output_tokens
        raise bad_request("max_tokens", f"max_tokens may be at most {limit} for {model.model}.")
    return model


async def _parse_offered(ctx: Ctx, parse: Parse) -> tuple[Conversation, ModelInfo]:
    """The request and its model; a name this process's catalogue does not know yet is looked
    up once more after a reload (a model the operator just added)."""
    await catalogue.ready()
    payload = await ctx.json()
    try:
        conv = parse(payload)
        return conv, _offered(conv)
    except UnknownModel:
        if not await catalogue.reload_after_miss():
            raise
    conv = parse(payload)
    return conv, _offered(conv)


def prompt_token_bound(conv: Conversation, model: ModelInfo | ModelPrice, body_size: int = 0) -> int:
    """An upper bound of the prompt's tokens: at most one per byte, a bound per image, plus
    framing; never more than the model's context. A body passed through as it came (of
    ``body_size`` bytes) may carry text no neutral turn holds (reasoning sent back, a name,
    legacy ``functions``): every byte of it but the images' own then counts."""
    text = conv.text_bytes()
    if conv.native is not None:
        text = max(text, body_size - conv.image_bytes())
    framing = _PROMPT_OVERHEAD_TOKENS + _MESSAGE_OVERHEAD_TOKENS * len(conv.turns)
    bound = text + IMAGE_TOKEN_BOUND * conv.images() + framing
    return min(bound, model.max_input_tokens)


def _refusal(row: dict[str, Any], conv: Conversation) -> ApiError:
    code = row["code"]
    if code == "UNPRICED_MODEL":
        return _unpriced(conv)
    message = REFUSALS[code].format(
        provider=conv.provider,
        model=conv.model,
        limit=row["limit_value"],
        scope=row["scope"],
        retry=row["retry_after_s"],
    )
    status = row["status"]
    if code in REFUSED_FIELDS:
        return bad_request(REFUSED_FIELDS[code], message)
    if status == 429:
        retry = str(row["retry_after_s"])
        headers = {
            "retry-after": retry,
            "ratelimit-limit": str(row["limit_value"]),
            "ratelimit-remaining": "0",
            "ratelimit-reset": retry,
        }
        return ApiError(429, code, message, headers=headers, scope=row["scope"])
    if status == 402:
        return ApiError(402, code, message, scope=row["scope"], month=Month.of(row).view())
    return ApiError(status, code, message)


async def _settle_with_retries(params: dict[str, Any], give_up_at: float | None) -> dict[str, Any] | None:
    """SETTLE is idempotent per reservation, so a lost connection, a pool timeout, a lost
    deadlock or a database restarting is retried, backing off, for up to ``SETTLE_RETRY_S``
    (and never past ``give_up_at``, the host's deadline less the time to answer): an answered
    call is then billed what the provider billed, not left to the reaper's prompt bound."""
    loop = asyncio.get_running_loop()
    end = loop.time() + config.settings().settle_retry_s
    if give_up_at is not None:
        end = min(end, give_up_at)
    delay = 0.05
    while True:
        try:
            return await settlements.queue().submit(params)
        except (*db.UNAVAILABLE, psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
            if loop.time() + delay >= end:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 4, 1.0)


@dataclass
class Call:
    """One admitted gateway call, from admission to its single settlement."""

    ctx: Ctx
    conv: Conversation
    install_id: str | None
    admission: dict[str, Any]
    price: ModelPrice = field(init=False)  # the cost price in force at admission
    sell: Sell = field(init=False)  # and the sell rule
    month_after: dict[str, Any] | None = None  # the month's figures once settled
    _settlement: asyncio.Future[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def clamped_to(self) -> int | None:
        """The max_tokens the provider is called with when the month could not afford what the
        call asked for (``conv.max_tokens`` is then this), else None."""
        clamped: int | None = self.admission["clamped_to"]
        return clamped

    @property
    def leased_tokens(self) -> int:
        """The output tokens the reservation holds: all of max_tokens, or a stream's lease so far
        (a :class:`~shared.gateway.leases.Lease` grows it)."""
        leased: int = self.admission["leased_tokens"]
        return leased

    @leased_tokens.setter
    def leased_tokens(self, tokens: int) -> None:
        self.admission["leased_tokens"] = tokens

    def within_lease(self, usage: Usage) -> Usage:
        """The usage to bill: a stream whose lease had not grown to its max_tokens is billed no
        more output than its lease held, so that it can never take the month past its cap.
        (Its lease stays a step ahead of the bytes it streamed, which bound its tokens; what
        the bound misses, a few framing tokens at most, is the operator's.) Otherwise the
        provider's figures, as ever: it writes at most the max_tokens it was sent."""
        leased = self.leased_tokens
        if usage.output_tokens <= leased or leased >= self.conv.max_tokens:
            return usage
        return usage._replace(output_tokens=leased, reasoning_tokens=min(usage.reasoning_tokens, leased))

    @property
    def month_before(self) -> Month:
        return Month.of(self.admission)

    @property
    def deadline(self) -> float | None:
        """Event-loop time by which the upstream work must be over (None: no host limit)."""
        host = self.ctx.deadline
        return None if host is None else host - _SETTLE_RESERVE_S

    @asynccontextmanager
    async def time_limit(self) -> AsyncIterator[None]:
        """Bound upstream work by :attr:`deadline`: a call cut here is settled and answered
        with 504, where a host that reached its own timeout would kill it unbilled."""
        deadline = self.deadline
        if deadline is None:
            yield
            return
        limit = asyncio.timeout_at(deadline)
        try:
            async with limit:
                yield
        except TimeoutError:
            if not limit.expired():
                raise
            raise providers.out_of_time(self.conv.provider) from None

    async def settle(
        self,
        usage: Usage | None,
        *,
        outcome: str,
        status: int,
        estimated: bool = False,
        summary: str | None = None,
        stopped_code: str | None = None,
    ) -> dict[str, Any]:
        """Settle once; later calls (e.g. a disconnect racing the end of a stream) get the same
        result. Shielded: a cancelled caller cannot stop the settlement half-way. A stream
        stopped because its lease could not grow passes the refusal's ``stopped_code``."""
        if self._settlement is None:
            self._settlement = asyncio.ensure_future(
                self._settle(usage, outcome, status, estimated, summary, stopped_code)
            )
        return await asyncio.shield(self._settlement)

    async def _settle(
        self,
        usage: Usage | None,
        outcome: str,
        status: int,
        estimated: bool,
        summary: str | None,
        stopped_code: str | None,
    ) -> dict[str, Any]:
        ctx, admission, conv = self.ctx, self.admission, self.conv
        usage = self.within_lease(usage) if usage else None
        cost = pricing.cost_nanos(self.price, usage) if usage else 0
        params = {
            "reservation_id": admission["reservation_id"],
            "customer_id": admission["customer_id"],
            "api_key_id": admission["api_key_id"],
            "month": admission["month"],
            "provider": conv.provider,
            "model": conv.model,
            "install_id": self.install_id,
            "input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
            "cost_nanos": cost,
            "sell_nanos": pricing.sell_nanos(cost, usage, self.sell) if usage else 0,
            "price_version_id": admission["price_version_id"],
            "sell_version_id": admission["sell_version_id"],
            "outcome": outcome,
            "estimated": estimated,
            "request_id": ctx.request_id,
            "function": ctx.function,
            "app": ctx.app_tag,
            "build": ctx.build_tag,
            "status": status,
            "duration_ms": round(ctx.elapsed_ms(), 2),
            "summary": summary or self._clamp_note(),
            "user_agent": ctx.headers.get("user-agent", "")[:240] or None,
            "clamped_to": self.clamped_to,
            "stopped_code": stopped_code,
        }
        give_up_at = None if ctx.deadline is None else ctx.deadline - _ANSWER_S
        row = await _settle_with_retries(params, give_up_at)
        if not (row and row["month"]):
            return self.month_before.view()
        after = self.month_before.spent(row["spent_nanos"], row["key_spent_nanos"])
        ctx.defer(lambda: alerts.check_after_call(admission["customer_id"], admission["api_key_id"], after))
        return after.view()

    def _clamp_note(self) -> str | None:
        """The monitor row of a clamped call says so."""
        if self.clamped_to is None:
            return None
        return f"max_tokens clamped to {self.clamped_to}: what the month's remaining budget affords"

    def estimated_usage(self, usage: Usage | None, output_bytes: int) -> Usage:
        """Usage for a call whose provider figures did not (all) arrive: what the provider said,
        completed by estimates within what the reservation assumed. The prompt counts at its
        admission bound: the provider bills every prompt token it read, whatever we guess."""
        prompt: int = self.admission["prompt_tokens"]
        output = min(estimate_tokens(output_bytes), self.conv.max_tokens, self.leased_tokens)
        if usage is None:
            return Usage(input_tokens=prompt, output_tokens=output)
        return usage._replace(
            input_tokens=usage.input_tokens or prompt, output_tokens=max(usage.output_tokens, output)
        )

    def usage_view(self, usage: Usage | None) -> dict[str, int]:
        """The call's usage as its caller sees it: ``cost_cents`` is what the call cost the
        customer (the sell amount), never the provider's price."""
        usage = self.within_lease(usage) if usage else None
        charged = pricing.sell_nanos(pricing.cost_nanos(self.price, usage), usage, self.sell) if usage else 0
        return {
            "input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
            "cost_cents": money.cents(charged),
        }


class _KnownKeys:
    """Hashes of keys this process has seen exist, with their customer and key ids, so only a
    key it has not met costs a lookup before the body is read: a stranger with a made-up key
    gets its 401 without the gateway reading, let alone parsing, a megabyte. The ids order a
    batch of admissions (a key never changes customer); ADMIT still checks the key, revoked or
    not, on every call, so this can never let a revoked key through."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._owners: dict[bytes, dict[str, int]] = {}

    async def owner(self, key_hash: bytes) -> dict[str, int]:
        """``{"customer_id": ..., "api_key_id": ...}`` of an existing key; else a 401."""
        if (known := self._owners.get(key_hash)) is not None:
            return known
        found = await db.fetch_one(
            "SELECT customer_id, id AS api_key_id FROM api_keys WHERE key_hash = %s", (key_hash,)
        )
        if found is None:
            raise ApiError(401, "INVALID_KEY", REFUSALS["INVALID_KEY"])
        if len(self._owners) >= self.size:
            self._owners.pop(next(iter(self._owners)))
        self._owners[key_hash] = found
        return found


_known_keys = _KnownKeys(size=10_000)


def _reserve(conv: Conversation, streamed: bool, cfg: config.Settings) -> tuple[int, int]:
    """(output tokens to reserve now, the least a clamp may leave): a call asking for reasoning
    reserves all of its max_tokens and is never clamped (its thinking is billed as output but
    not streamed, so no lease can follow it, and a clamp would leave no room for an answer);
    otherwise a stream leases its first step and any call may be clamped to CLAMP_MIN_TOKENS.
    (ADMIT treats a model marked hidden_reasoning the same way.) Embeddings write nothing."""
    if conv.embedding or conv.reasoning_effort is not None or conv.thinking_budget is not None:
        return conv.max_tokens, conv.max_tokens
    first = min(conv.max_tokens, cfg.lease_step_tokens) if streamed else conv.max_tokens
    return first, cfg.clamp_min_tokens


async def admit(
    ctx: Ctx,
    parse: Parse = parse_request,
    secret: str | None = None,
    *,
    streamed: bool | Callable[[], bool] = False,
) -> Call:
    """Validate the request and admit it, or raise the refusal the client should see.
    ``parse`` reads the body's format; ``secret`` is the key when it does not come as
    ``Authorization: Bearer`` (Anthropic's ``x-api-key``); ``streamed`` says whether the
    answer will be a stream (its reservation is then a lease), or reads it from the body."""
    key_hash = keys.hash_key(secret or keys.bearer_key(ctx.headers.get("authorization")))
    owner = await _known_keys.owner(key_hash)
    conv, model = await _parse_offered(ctx, parse)
    ctx.provider, ctx.model = conv.provider, conv.model
    install_id = _install_id(ctx)
    if unsupported := providers.refusal(conv):
        label = providers.PROVIDERS[conv.provider].label
        raise bad_request(
            unsupported, f"{unsupported} is not supported by {label}; leave it out for this model."
        )
    if not providers.is_configured(conv.provider):
        raise ApiError(503, "PROVIDER_NOT_CONFIGURED", f"Provider {conv.provider} is not configured here.")
    cfg = config.settings()
    lease, clamp_min = _reserve(conv, streamed() if callable(streamed) else streamed, cfg)
    row = await admissions.admit(
        {
            **owner,
            "key_hash": key_hash,
            "provider": conv.provider,
            "model": conv.model,
            "install_id": install_id,
            "user_agent": ctx.headers.get("user-agent", "")[:240] or None,
            "prompt_tokens": prompt_token_bound(conv, model, ctx.body_size),
            "max_tokens": conv.max_tokens,
            "lease_tokens": lease,
            "clamp_min": clamp_min,
            "embedding": conv.embedding,
            "default_rpm": cfg.default_rpm_limit,
            "default_concurrency": cfg.default_max_concurrent,
            "cache_writes": conv.may_write_cache(),
        },
    )
    ctx.customer_id, ctx.api_key_id = row["customer_id"], row["api_key_id"]
    if row["status"]:
        if row["code"] == "CAP_REACHED":
            refused = Month.of(row)
            ctx.defer(
                lambda: alerts.check_refusal(row["customer_id"], row["api_key_id"], refused, row["scope"])
            )
        raise _refusal(row, conv)
    ctx.monitored = True  # the settlement writes this request's monitor row
    if row["clamped_to"] is not None:  # what the month affords: the provider is asked for no more
        conv = conv.with_max_tokens(row["clamped_to"])
    call = Call(ctx, conv, install_id, row)
    async with _settled_if_it_fails(call):
        call.price, call.sell = await versions.of(row)
    return call


def upstream_failure(call_error: providers.UpstreamError) -> ApiError:
    extra: dict[str, Any] = {"provider_status": call_error.upstream_status}
    if call_error.upstream_request_id:
        extra["upstream_request_id"] = call_error.upstream_request_id
    headers = {"retry-after": call_error.retry_after} if call_error.retry_after else None
    return ApiError(call_error.status, call_error.code, call_error.message, headers=headers, **extra)


@asynccontextmanager
async def _settled_if_it_fails(call: Call) -> AsyncIterator[None]:
    """Any failure settles the call at nothing (the provider gave nothing billable) before it
    propagates, so its reservation is released now rather than billed by the reaper."""
    try:
        yield
    except providers.UpstreamError as error:
        await call.settle(None, outcome="upstream_error", status=error.status, summary=error.message)
        raise upstream_failure(error) from None
    except asyncio.CancelledError:
        await call.settle(
            None, outcome="client_disconnect", status=499, summary="cancelled before the provider answered"
        )
        raise
    except Exception:
        await call.settle(None, outcome="upstream_error", status=500, summary="internal error")
        raise


async def _upstream(call: Call, work: Callable[[Conversation], Awaitable[T]]) -> T:
    """One upstream request within the call's time limit."""
    async with _settled_if_it_fails(call), call.time_limit():
        return await work(call.conv)


async def _settle_answered(call: Call, usage: Usage | None, written_bytes: int) -> Usage:
    """Settle an answered call at the provider's usage, or at an estimate when it reported
    none; return what was billed."""
    estimated = usage is None or (usage.input_tokens == 0 and usage.output_tokens == 0)
    if estimated:
        usage = call.estimated_usage(None, written_bytes)
    assert usage is not None
    usage = call.within_lease(usage)
    call.month_after = await call.settle(usage, outcome="ok", status=200, estimated=estimated)
    return usage


async def complete(call: Call) -> tuple[providers.Completion, Usage]:
    """One upstream completion, settled before the answer goes out: the answer and the usage
    billed."""
    completion = await _upstream(call, providers.complete)
    written = len(completion.text.encode()) + sum(len(c.arguments.encode()) for c in completion.tool_calls)
    return completion, await _settle_answered(call, completion.usage, written)


async def embed(call: Call) -> tuple[providers.Embeddings, Usage]:
    """Embeddings, settled before the answer goes out. Without the provider's count (Gemini
    gives none) the inputs are billed at about four bytes a token, recorded as an estimate."""
    embeddings = await _upstream(call, providers.embed)
    usage = embeddings.usage
    if usage is None:
        usage = Usage(input_tokens=sum(estimate_tokens(len(text.encode())) for text in call.conv.inputs()))
        call.month_after = await call.settle(usage, outcome="ok", status=200, estimated=True)
        return embeddings, usage
    return embeddings, await _settle_answered(call, usage, 0)


CLAMPED_HEADER = "x-kaixu-max-tokens"
CLAMPED_FIELD = "max_tokens_clamped_to"


def clamped_headers(call: Call) -> dict[str, str]:
    """``x-kaixu-max-tokens: N`` on the answer of a call clamped to N tokens."""
    return {} if call.clamped_to is None else {CLAMPED_HEADER: str(call.clamped_to)}


def answer(call: Call, body: dict[str, Any]) -> JSONResponse | dict[str, Any]:
    """A non-streamed answer; a clamped call's says so in ``max_tokens_clamped_to`` (at the top
    level, where the SDKs ignore a field they do not know) and in its header."""
    if call.clamped_to is None:
        return body
    return JSONResponse({**body, CLAMPED_FIELD: call.clamped_to}, headers=clamped_headers(call))


async def chat(call: Call) -> dict[str, Any]:
    """gateway-chat's answer."""
    completion, usage = await complete(call)
    return {
        "provider": call.conv.provider,
        "model": call.conv.model,
        "output_text": completion.text,
        "usage": call.usage_view(usage),
        "month": call.month_after,
    }


async def serve_chat(ctx: Ctx) -> JSONResponse | dict[str, Any]:
    """POST gateway-chat: admit, call, settle, answer."""
    call = await admit(ctx)
    return answer(call, await chat(call))
