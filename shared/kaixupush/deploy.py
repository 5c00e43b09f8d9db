"""Starting and finishing a deploy: kaixupush-init, -complete and -status.

init takes one of the customer's places for concurrent work (``limits.busy``) before it
reads a byte of the body, which is checked while it arrives (``manifest.read_init``). It
admits the deploy first (project, Netlify token, then under the customer's push lock: the
push cap, then the deploy rate limit) and records it as ``creating``; only then is Netlify
asked to create it, so a refusal costs Netlify nothing and an admitted deploy holds its
place against concurrent inits. If Netlify refuses, the push is marked ``init_failed``: it
is never billed (nor counted against the cap) but it does count against the deploy rate
limit, since it cost a Netlify call.

An Idempotency-Key is checked again under the customer's lock, so concurrent retries with
one key make one push. A push whose process died before Netlify answered stays ``creating``
until :func:`sweep_abandoned` (run by the upkeep) marks it ``init_failed``: the creation call
retries only within ``NETLIFY_TIMEOUT_S`` and its last attempt is bounded by that timeout, so
an older ``creating`` push is dead (an answer arriving later still is refused, not recorded).

A dry run (``dry_run: true``) creates nothing: ``plan`` compares the manifest with the site's
published files instead.

complete and status read the deploy through ``pushes.poll`` (at most one Netlify call per
push per ``KAIXUPUSH_STATUS_CACHE_S``). The upkeep finalises pushes whose files were all
sent, for the upload window and a day more, so a deploy that becomes ready is billed even if
nobody asks; pushes older than that end ``expired`` (finished, never billed).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from psycopg.types.json import Jsonb
from starlette.responses import Response

from shared import audit, config, db, idempotency
from shared.errors import ApiError, bad_request
from shared.http import Ctx, JSONResponse
from shared.kaixupush import billing, limits, manifest, plan, projects, publish, pushes
from shared.kaixupush.netlify_api import Netlify, NetlifyError, deploy_token, resolve_token, to_api_error

MAX_WAIT_S = 120
PRUNE_AFTER_S = 3600  # a finished push keeps its manifest this long (requests already under way)


def _init_answer(push: dict[str, Any]) -> dict[str, Any]:
    return {
        "push_id": push["push_id"],
        "deploy_id": push["deploy_id"],
        "state": push["state"],
        "required": push["required"],
        "required_count": len(push["required"]),
        "file_count": push["file_count"],
        "url": push["url"],
        "part_bytes": config.settings().kaixupush_part_bytes,
        "max_file_bytes": config.settings().kaixupush_max_file_bytes,
        "client": publish.versions(),
    }


async def _replay(conn: db.Connection, ctx: Ctx, key: str, fingerprint: str) -> dict[str, Any] | None:
    """The push an earlier request with this Idempotency-Key created, unless Netlify refused
    it (``init_failed``: the key may be used again); 409 while that request is still running."""
    cur = await conn.execute(
        f"SELECT {pushes.COLUMNS}, request_hash FROM push_pushes "
        "WHERE customer_id = %s AND idempotency_key = %s",
        (ctx.customer, key),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise ApiError(409, "IDEMPOTENCY_MISMATCH", "This Idempotency-Key was used with a different request.")
    if row["state"] == "creating":
        raise ApiError(
            409,
            "IDEMPOTENCY_IN_PROGRESS",
            "The first request with this key is still running.",
            headers={"retry-after": "1"},
        )
    return None if row["state"] == "init_failed" else row


async def _admit(
    ctx: Ctx, req: manifest.InitRequest, project: dict[str, Any], key: str | None, fingerprint: str
) -> tuple[dict[str, Any], bool]:
    """Cap, then rate limit, then the push row: one transaction under the customer's lock.
    Returns the push and whether it is new (else an earlier request with the key made it)."""
    async with db.connection() as conn, conn.transaction():
        await limits.lock_customer(conn, ctx.customer)
        if key and (earlier := await _replay(conn, ctx, key, fingerprint)):
            return earlier, False
        await billing.check_cap(conn, ctx.customer, extra_deploys=1, extra_bytes=req.bytes)
        await limits.check_deploy_rate(conn, ctx.customer)
        if key:  # a retry of a refused init (init_failed) may try again with the same key
            await conn.execute(
                "UPDATE push_pushes SET idempotency_key = NULL "
                "WHERE customer_id = %s AND idempotency_key = %s AND state = 'init_failed'",
                (ctx.customer, key),
            )
        cur = await conn.execute(
            "INSERT INTO push_pushes (push_id, customer_id, api_key_id, project_row_id, project_id, "
            "netlify_site_id, branch, title, draft, manifest, file_count, idempotency_key, request_hash) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            f"RETURNING {pushes.COLUMNS}",
            (
                pushes.new_push_id(),
                ctx.customer_id,
                ctx.api_key_id,
                project["id"],
                project["project_id"],
                project["netlify_site_id"],
                req.branch,
                req.title,
                req.draft,
                Jsonb(req.files),
                len(req.files),
                key,
                fingerprint if key else None,
            ),
        )
        return await cur.fetchone(), True  # type: ignore[return-value]


async def _create(netlify: Netlify, push: dict[str, Any], req: manifest.InitRequest) -> dict[str, Any]:
    deploy = await netlify.create_deploy(
        push["netlify_site_id"],
        title=f"{req.title} ({push['push_id']})",
        branch=req.branch,
        draft=req.draft,
        files=req.files,
    )
    if not isinstance(deploy.get("id"), str) or not deploy["id"]:
        raise NetlifyError(502, "the created deploy has no id")
    return deploy


async def _prepared(netlify: Netlify, push: dict[str, Any], actor: str) -> dict[str, Any]:
    """Wait (bounded) until Netlify knows which files the deploy needs. If it takes longer,
    or Netlify cannot be asked, the push stays ``preparing``: kaixupush-status refreshes it
    and kaixupush-file-status lists the required files once known."""
    cfg = config.settings()
    deadline = time.monotonic() + cfg.kaixupush_prepare_timeout_s
    while push["state"] in pushes.PREPARING and time.monotonic() < deadline:
        await asyncio.sleep(cfg.kaixupush_poll_interval_s)
        try:
            push = await pushes.refresh(push, netlify, actor)
        except NetlifyError:
            break
    return push


async def _init_failed(push: dict[str, Any], error: NetlifyError) -> None:
    await db.execute(
        "UPDATE push_pushes SET state = 'init_failed', error = %s, finished_at = now(), updated_at = now() "
        "WHERE id = %s",
        (error.describe()[:500], push["id"]),
    )


async def _created(ctx: Ctx, push: dict[str, Any], deploy: dict[str, Any]) -> dict[str, Any]:
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "UPDATE push_pushes SET deploy_id = %s, state = 'new', updated_at = now() "
            f"WHERE id = %s AND state = 'creating' RETURNING {pushes.COLUMNS}",
            (deploy["id"], push["id"]),
        )
        updated = await cur.fetchone()
        if updated is None:  # swept as abandoned while Netlify took its time
            raise ApiError(
                502, "NETLIFY_TOO_SLOW", "Netlify answered too late and the deploy was given up; retry."
            )
        push = updated
        meta = {
            "push_id": push["push_id"],
            "project_id": push["project_id"],
            "branch": push["branch"],
            "file_count": push["file_count"],
        }
        await billing.record(
            conn,
            customer_id=push["customer_id"],
            api_key_id=push["api_key_id"],
            push_row_id=push["id"],
            kind="deploy_init",
            meta=meta,
        )
        await audit.record(
            conn,
            ctx.actor or "key",
            "push.init",
            f"push:{push['push_id']}",
            {**meta, "deploy_id": deploy["id"], "netlify_site_id": push["netlify_site_id"]},
        )
    return await pushes.apply_deploy(push, deploy, ctx.actor or "key")


async def init(ctx: Ctx) -> Response:
    """POST {project_id, branch?, title?, draft?, bytes?, dry_run?, files: {path: sha1}}.

    The body may be gzip-compressed. With ``dry_run: true`` nothing is created: see ``plan``."""
    key = idempotency.header_key(ctx)
    async with limits.busy(ctx.customer):
        return await _init(ctx, key)


async def _init(ctx: Ctx, key: str | None) -> Response:
    """The init itself, inside the customer's place for concurrent work."""
    req = await manifest.read_init(ctx)
    if req.dry_run:
        return JSONResponse(await plan.dry_run(ctx, req), status_code=200)
    fingerprint = manifest.fingerprint(req)
    if key:
        async with db.connection() as conn:
            if earlier := await _replay(conn, ctx, key, fingerprint):
                return JSONResponse(_init_answer(earlier), status_code=200)
    project = await projects.find(ctx.customer, req.project_id)
    token = await deploy_token(project)
    push, new = await _admit(ctx, req, project, key, fingerprint)
    if not new:
        return JSONResponse(_init_answer(push), status_code=200)
    netlify = Netlify(token)
    try:  # no retry starts after NETLIFY_TIMEOUT_S: a live creation is never swept as abandoned
        deploy = await _create(Netlify(token, deadline=time.monotonic() + _timeout_s()), push, req)
    except NetlifyError as error:
        await _init_failed(push, error)
        raise to_api_error(error) from None
    push = await _created(ctx, push, deploy)
    push = await _prepared(netlify, push, ctx.actor or "key")
    return JSONResponse(_init_answer(push), status_code=201)


def _timeout_s() -> float:
    return config.settings().netlify_timeout_s


async def sweep_abandoned() -> int:
    """Mark ``creating`` pushes older than twice NETLIFY_TIMEOUT_S ``init_failed``: their
    process died before Netlify answered. They stop counting against the deploy rate limit and
    the cap, and their Idempotency-Key may be used again."""
    rows = await db.fetch_all(
        "UPDATE push_pushes SET state = 'init_failed', finished_at = now(), updated_at = now(), "
        "error = 'abandoned: no answer from Netlify to the deploy creation was recorded' "
        "WHERE state = 'creating' AND created_at < now() - make_interval(secs => %s) RETURNING id",
        (2 * _timeout_s(),),
    )
    return len(rows)


def _wait_param(body: dict[str, Any]) -> float:
    wait = body.get("wait", 0)
    if isinstance(wait, bool):
        wait = MAX_WAIT_S if wait else 0
    if not isinstance(wait, int | float) or not 0 <= wait <= MAX_WAIT_S:
        raise bad_request("wait", f"wait must be a number of seconds from 0 to {MAX_WAIT_S}.")
    return float(wait)


async def complete(ctx: Ctx) -> Response:
    """POST {push_id, wait?}: every required file must be uploaded (else 409 MISSING_UPLOADS);
    polls Netlify up to ``wait`` seconds; 200 once ready, 202 while Netlify still works."""
    body = await ctx.json_object()
    push = await pushes.load(ctx.customer, body.get("push_id"))
    wait = _wait_param(body)
    if push["deploy_id"] is None:
        raise ApiError(409, "PUSH_CLOSED", f"Push {push['push_id']} has no Netlify deploy ({push['state']}).")
    if missing := await pushes.missing(push):
        raise ApiError(
            409,
            "MISSING_UPLOADS",
            f"{len(missing)} required file(s) are not uploaded yet.",
            missing_count=len(missing),
            missing=missing[:100],
        )
    netlify = Netlify(await resolve_token(ctx.customer))
    deadline = time.monotonic() + wait
    try:
        push = await pushes.refresh(push, netlify, ctx.actor or "key")
        while push["finished_at"] is None and time.monotonic() < deadline:
            await asyncio.sleep(
                min(config.settings().kaixupush_poll_interval_s, max(0.0, deadline - time.monotonic()))
            )
            push = await pushes.refresh(push, netlify, ctx.actor or "key")
    except NetlifyError as error:
        raise to_api_error(error) from None
    item = await pushes.view(push)
    if push["state"] == "error":
        raise ApiError(502, "NETLIFY_DEPLOY_FAILED", "Netlify could not publish the deploy.", push=item)
    return JSONResponse(item, status_code=200 if push["state"] == "ready" else 202)


async def status(ctx: Ctx) -> dict[str, Any]:
    """GET ?push_id=: the push, refreshed from Netlify while it is not finished, at most once
    per KAIXUPUSH_STATUS_CACHE_S (else as last recorded: ``refreshed: false``). If Netlify
    cannot be asked, the last known state comes with ``refresh_error`` and its code
    (``refresh_error_code``: a client stops waiting on ``NETLIFY_TOKEN_REJECTED``)."""
    push = await pushes.load(ctx.customer, ctx.query.get("push_id"))
    refreshed, problem, code = False, None, None
    if push["finished_at"] is None and push["deploy_id"] is not None:
        try:
            netlify = Netlify(await resolve_token(ctx.customer))
            push, refreshed = await pushes.poll(push, netlify, ctx.actor or "key")
        except NetlifyError as error:
            problem, code = error.describe(), to_api_error(error).code
        except ApiError as error:
            problem, code = error.message, error.code
    item = await pushes.view(push)
    return {"item": {**item, "refreshed": refreshed, "refresh_error": problem, "refresh_error_code": code}}


def _finalize_window_s() -> float:
    """How long after its creation a push whose files were all sent is followed: the upload
    window (a last file may arrive at its end) and a day for Netlify to publish it."""
    return pushes.retention_s() + pushes.FINALIZE_GRACE_S


async def finalize_pending(limit: int = 20) -> int:
    """Refresh pushes whose files are all delivered but whose deploy is not final yet, so a
    deploy that became ready is recorded (and billed) even if its client went away, however
    late in its upload window the last file came."""
    rows = await db.fetch_all(
        f"SELECT {pushes.COLUMNS} FROM push_pushes p WHERE finished_at IS NULL AND deploy_id IS NOT NULL "
        "AND updated_at < now() - interval '10 seconds' "
        "AND created_at > now() - make_interval(secs => %s) "
        "AND NOT EXISTS (SELECT 1 FROM unnest(p.required) r(sha1) "
        "WHERE NOT EXISTS (SELECT 1 FROM push_files f "
        "WHERE f.push_row_id = p.id AND f.sha1 = r.sha1 AND f.status = 'done')) "
        "ORDER BY updated_at LIMIT %s",
        (_finalize_window_s(), limit),
    )
    finished = 0
    for push in rows:
        try:
            push = await pushes.refresh(push, Netlify(await resolve_token(push["customer_id"])), "worker")
        except (NetlifyError, ApiError):
            await db.execute("UPDATE push_pushes SET updated_at = now() WHERE id = %s", (push["id"],))
            continue
        finished += push["finished_at"] is not None
    return finished


async def expire_pushes(limit: int = 500) -> int:
    """End pushes still open past their finalisation window as ``expired``: their files can no
    longer be sent, and a deploy Netlify has not published within a day of its last possible
    file is not going to be. They are never billed and stop counting as deploys in flight."""
    rows = await db.fetch_all(
        "UPDATE push_pushes SET state = %s, finished_at = now(), updated_at = now(), "
        "error = 'expired: the deploy was not ready when its upload window and the day after it had passed' "
        "WHERE id IN (SELECT id FROM push_pushes WHERE finished_at IS NULL "
        "AND created_at < now() - make_interval(secs => %s) ORDER BY created_at LIMIT %s) "
        "AND finished_at IS NULL RETURNING id",
        (pushes.EXPIRED, _finalize_window_s(), limit),
    )
    return len(rows)


async def prune_manifests(limit: int = 200) -> int:
    """Empty the manifests of pushes finished over an hour ago (up to 20,000 paths each, needed
    only to send files): a bounded batch per run."""
    return await db.execute(
        "UPDATE push_pushes SET manifest = '{}'::jsonb WHERE id IN (SELECT id FROM push_pushes "
        "WHERE finished_at IS NOT NULL AND manifest <> '{}'::jsonb "
        "AND finished_at < now() - make_interval(secs => %s) ORDER BY finished_at LIMIT %s)",
        (PRUNE_AFTER_S, limit),
    )
