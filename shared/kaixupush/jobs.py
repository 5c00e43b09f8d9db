"""The durable job queue that turns staged parts into a file on Netlify.

A job row is the unit of work: ``queued`` when its parts are complete, then claimed by one
runner at a time (``FOR UPDATE SKIP LOCKED`` + a lease, so a crashed runner's job is taken
again when the lease ends). A run reads the parts once to check the WHOLE file's SHA-1
(the original never did), then streams them to Netlify part by part.

Outcomes: ``done``; ``retry_wait`` after a 429/5xx/network failure, due again after an
exponential backoff (``KAIXUPUSH_JOB_BACKOFF_S`` doubling, at most
``KAIXUPUSH_JOB_BACKOFF_MAX_S``) and never before Netlify's ``Retry-After``; ``failed`` for
good after any other 4xx, a digest mismatch, a missing part or ``KAIXUPUSH_JOB_MAX_ATTEMPTS``
attempts, with the reason in ``last_error``. upload-complete runs the job at once (bounded
by ``KAIXUPUSH_INLINE_S``); ``kaixupush-worker`` and the maintenance run are the safety net.

A job is delivered only within its push's upload window (``pushes.require_open``), and the
upkeep expires every job of a push older than ``KAIXUPUSH_RETENTION_H`` and deletes its parts:
the window counts from the push's creation, so parts that keep arriving do not keep the
staging alive. The upkeep (:func:`upkeep`, run by ``kaixupush-worker`` and ``maintenance``)
also finalises and expires pushes and prunes the manifests of finished ones.
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

from shared import audit, config, db
from shared.errors import ApiError
from shared.http import Ctx, secret_header
from shared.kaixupush import delivery, deploy, pushes, staging
from shared.kaixupush.netlify_api import Netlify, NetlifyError, resolve_token, to_api_error

log = logging.getLogger("kaixu.kaixupush.jobs")

_CLAIM = """
UPDATE push_jobs SET status = 'running', attempts = attempts + 1, updated_at = now(),
       locked_until = now() + make_interval(secs => %(lease)s)
WHERE id = (
    SELECT id FROM push_jobs
    WHERE ((status IN ('queued', 'retry_wait') AND next_attempt_at <= now())
           OR (status = 'running' AND locked_until < now()))
      AND attempts < %(max)s AND (%(id)s::bigint IS NULL OR id = %(id)s)
    ORDER BY next_attempt_at NULLS FIRST, id
    LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING *
"""
_GIVE_UP_INTERRUPTED = """
UPDATE push_jobs SET status = 'failed', locked_until = NULL, updated_at = now(),
       last_error = 'gave up after ' || attempts || ' attempts (the last one was interrupted)',
       last_error_code = NULL
WHERE status = 'running' AND locked_until < now() AND attempts >= %s
"""
_EXPIRE = """
UPDATE push_jobs SET status = 'expired', updated_at = now(),
       last_error = coalesce(last_error, 'parts expired: the push upload window closed'),
       last_error_code = CASE WHEN last_error IS NULL THEN 'PUSH_EXPIRED' ELSE last_error_code END
WHERE id IN (SELECT j.id FROM push_jobs j JOIN push_pushes p ON p.id = j.push_row_id
             WHERE j.status IN ('receiving', 'queued', 'retry_wait', 'failed')
               AND p.created_at < now() - make_interval(secs => %s)
             ORDER BY j.id LIMIT 500)
RETURNING id
"""


class Permanent(Exception):
    """A failure no retry can fix, with the gateway's code for it."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class Outcome:
    DONE, RETRY, FAILED, BUSY = "done", "retry_wait", "failed", "busy"


async def _claim(job_id: int | None = None) -> dict[str, Any] | None:
    cfg = config.settings()
    return await db.fetch_one(
        _CLAIM, {"lease": cfg.kaixupush_job_lease_s, "max": cfg.kaixupush_job_max_attempts, "id": job_id}
    )


class Failure(NamedTuple):
    """Why an attempt failed: in words, and as the code a client acts on (None: none fits)."""

    reason: str
    code: str | None = None


_SETTLE = """
UPDATE push_jobs SET status = %s, last_error = %s, last_error_code = %s, locked_until = NULL,
       updated_at = now(),
       next_attempt_at = CASE WHEN %s = 'retry_wait' THEN now() + make_interval(secs => %s) END
WHERE id = %s AND status = 'running'
"""


async def _settle(
    job: dict[str, Any], status: str, failure: Failure | None = None, delay_s: float = 0.0
) -> None:
    reason, code = failure or (None, None)
    await db.execute(_SETTLE, (status, reason and reason[:1000], code, status, delay_s, job["id"]))


def retry_delay_s(attempts: int, retry_after: float | None) -> float:
    """Exponential backoff with 10% jitter, never sooner than Netlify's Retry-After."""
    cfg = config.settings()
    backoff = min(cfg.kaixupush_job_backoff_max_s, cfg.kaixupush_job_backoff_s * 2.0 ** max(0, attempts - 1))
    return max(retry_after or 0.0, backoff * (1 + random.random() * 0.1))


async def _check_parts(job: dict[str, Any]) -> int:
    """The file's size after checking every part is staged and the whole file's SHA-1."""
    digest, size = hashlib.sha1(usedforsecurity=False), 0
    for part in range(job["parts"]):
        try:
            data = await staging.read_part(job["id"], part)
        except staging.MissingPart as exc:
            raise Permanent(str(exc), "PARTS_INCOMPLETE") from None
        digest.update(data)
        size += len(data)
    if digest.hexdigest() != job["sha1"]:
        raise Permanent(
            f"sha1 mismatch: the {size} assembled bytes hash to {digest.hexdigest()}, not {job['sha1']}",
            "PARTS_MISMATCH",
        )
    return size


def _stream(job: dict[str, Any]) -> AsyncIterator[bytes]:
    async def parts() -> AsyncIterator[bytes]:
        for part in range(job["parts"]):
            yield await staging.read_part(job["id"], part)

    return parts()


async def _push_of(job: dict[str, Any]) -> dict[str, Any]:
    push = await db.fetch_one(
        f"SELECT {pushes.COLUMNS} FROM push_pushes WHERE id = %s", (job["push_row_id"],)
    )
    if push is None:
        raise Permanent("the push no longer exists", "PUSH_NOT_FOUND")
    return push


async def _deliver(job: dict[str, Any], deadline: float, actor: str) -> None:
    push = await _push_of(job)
    if not await delivery.is_done(push["id"], job["sha1"]):
        try:
            pushes.require_open(push)
        except ApiError as exc:
            raise Permanent(exc.message, exc.code) from None
        size = await _check_parts(job)
        netlify = Netlify(await resolve_token(push["customer_id"]), deadline=deadline)
        try:
            sent = await delivery.send(netlify, push, job["sha1"], size, lambda: _stream(job))
        except ApiError as exc:
            raise Permanent(exc.message, exc.code) from None
        await delivery.finish(push, job["sha1"], sent, "chunked", actor)
        await db.execute("UPDATE push_jobs SET bytes = %s WHERE id = %s", (size, job["id"]))


async def run(job: dict[str, Any], *, budget_s: float, actor: str) -> str:
    """One attempt at a claimed job; its outcome is recorded before returning it."""
    cfg = config.settings()
    try:
        await _deliver(job, time.monotonic() + budget_s, actor)
    except Permanent as exc:
        await _fail(job, Failure(str(exc), exc.code), actor)
        return Outcome.FAILED
    except NetlifyError as exc:
        failure = Failure(exc.describe(), to_api_error(exc).code)
        if not exc.retryable:
            await _fail(job, failure, actor)
            return Outcome.FAILED
        return await _retry_or_fail(job, failure, exc.retry_after, cfg.kaixupush_job_max_attempts, actor)
    except ApiError as exc:  # e.g. no Netlify token configured: an operator can fix that
        failure = Failure(exc.message, exc.code)
        return await _retry_or_fail(job, failure, None, cfg.kaixupush_job_max_attempts, actor)
    except Exception:
        log.exception("push job %s crashed", job["id"])
        failure = Failure("internal error")
        return await _retry_or_fail(job, failure, None, cfg.kaixupush_job_max_attempts, actor)
    await _settle(job, Outcome.DONE)
    await staging.delete_parts([job["id"]])
    return Outcome.DONE


async def _retry_or_fail(
    job: dict[str, Any], failure: Failure, retry_after: float | None, max_attempts: int, actor: str
) -> str:
    if job["attempts"] >= max_attempts:
        gave_up = f"gave up after {job['attempts']} attempts: {failure.reason}"
        await _fail(job, failure._replace(reason=gave_up), actor)
        return Outcome.FAILED
    await _settle(job, Outcome.RETRY, failure, retry_delay_s(job["attempts"], retry_after))
    return Outcome.RETRY


async def _fail(job: dict[str, Any], failure: Failure, actor: str) -> None:
    await _settle(job, Outcome.FAILED, failure)
    details = {"sha1": job["sha1"], "path": job["path"], "reason": failure.reason[:300], "code": failure.code}
    async with db.connection() as conn, conn.transaction():
        await audit.record(conn, actor, "push.job_failed", f"push_job:{job['id']}", details)


async def run_now(job_id: int, *, budget_s: float, actor: str) -> str:
    """Run this job right away if it is due and nobody else holds it; else 'busy'."""
    job = await _claim(job_id)
    if job is None:
        return Outcome.BUSY
    return await run(job, budget_s=budget_s, actor=actor)


async def process_due_jobs(budget_s: float | None = None) -> dict[str, int]:
    """Run due jobs one claim at a time until none is due or the time budget is spent."""
    budget_s = config.settings().kaixupush_worker_budget_s if budget_s is None else budget_s
    deadline = time.monotonic() + budget_s
    counts = {Outcome.DONE: 0, Outcome.RETRY: 0, Outcome.FAILED: 0}
    await db.execute(_GIVE_UP_INTERRUPTED, (config.settings().kaixupush_job_max_attempts,))
    while time.monotonic() < deadline:
        job = await _claim()
        if job is None:
            break
        counts[await run(job, budget_s=deadline - time.monotonic(), actor="worker")] += 1
    return {
        "jobs_done": counts[Outcome.DONE],
        "jobs_retrying": counts[Outcome.RETRY],
        "jobs_failed": counts[Outcome.FAILED],
    }


async def expire_staged() -> int:
    """Expire the unfinished jobs of pushes whose upload window closed; delete their parts."""
    rows = await db.fetch_all(_EXPIRE, (pushes.retention_s(),))
    await staging.delete_parts([row["id"] for row in rows])
    return len(rows)


require_worker_secret = secret_header(
    "x-kaixu-worker-secret", "KAIXUPUSH_WORKER_SECRET", lambda: config.settings().kaixupush_worker_secret
)


async def run_worker(ctx: Ctx) -> dict[str, Any]:
    """POST kaixupush-worker (the schedule, or a scheduler with the secret): one upkeep."""
    return {"item": await upkeep()}


async def upkeep() -> dict[str, int]:
    """What the worker and the maintenance run do: due jobs, expiry of staged parts, pending
    deploys, inits whose process died before Netlify answered, pushes past their window and
    the manifests of finished pushes."""
    counts = await process_due_jobs()
    counts["expired_jobs"] = await expire_staged()
    counts["finalized_pushes"] = await deploy.finalize_pending()
    counts["abandoned_inits"] = await deploy.sweep_abandoned()
    counts["expired_pushes"] = await deploy.expire_pushes()
    counts["pruned_manifests"] = await deploy.prune_manifests()
    return {f"kaixupush_{name}": value for name, value in counts.items()}
