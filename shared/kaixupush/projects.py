"""The project registry: which Netlify site a customer's project deploys to.

Customers' admin keys upsert their own projects (``kaixupush-projects``); operators manage
everyone's (``admin-kaixupush-projects``). A project id is the customer's own name for it
(unique per customer); ``id`` is the registry row. Every change is audited.

A Netlify site belongs to one project at most (``SITE_TAKEN`` otherwise). A key may choose
which site a project deploys to only when its customer has a Netlify token of its own: that
token limits the sites it reaches. Without one, deploys use the operator's token, which
reaches every site of the operator's account, so only an admin may register or re-point such
a project; ``registered_by`` records who chose the site and deploys check it.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from starlette.responses import Response

from shared import audit, db, fields, params
from shared.errors import ApiError, bad_request, found
from shared.http import Ctx, JSONResponse
from shared.kaixupush.manifest import check_project_id
from shared.kaixupush.netlify_api import customer_token

SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
COLUMNS = "id, customer_id, project_id, name, netlify_site_id, registered_by, created_at, updated_at"
SITE_INDEX = "push_projects_site"
_EDITABLE = ("project_id", "name", "netlify_site_id")


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 200 or not value.isprintable():
        raise bad_request("name", "name must be 1-200 printable characters.")
    return value.strip()


def _site_id(value: object) -> str:
    if not isinstance(value, str) or not SITE_ID.match(value):
        raise bad_request(
            "netlify_site_id", "netlify_site_id must be a Netlify site id (letters, digits, . _ -)."
        )
    return value


_CHECKS = {"project_id": check_project_id, "name": _name, "netlify_site_id": _site_id}


def _validated(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    values = {}
    for name in _EDITABLE:
        if name in body or not partial:
            values[name] = _CHECKS[name](body.get(name))
    if partial and not values:
        raise bad_request("name", "Send at least one of project_id, name, netlify_site_id.")
    return values


async def find(customer_id: int, project_id: str) -> dict[str, Any]:
    row = await db.fetch_one(
        f"SELECT {COLUMNS} FROM push_projects WHERE customer_id = %s AND project_id = %s",
        (customer_id, project_id),
    )
    if row is None:
        raise ApiError(404, "PROJECT_NOT_FOUND", f"Project {project_id} is not registered for this customer.")
    return row


async def _list(where: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
    return await params.fetch_page(ctx, f"SELECT {COLUMNS} FROM push_projects", where)


# ----------------------------------------------------------------------------- customer side


async def customer_list(ctx: Ctx) -> dict[str, Any]:
    return await _list({"customer_id": ctx.customer_id}, ctx)


async def _check_site_choice(
    conn: db.Connection, customer_id: int, values: dict[str, Any], own_token: bool
) -> None:
    """403 when a key without its customer's own Netlify token registers a project or points
    one at another site (the row, if any, stays locked until the transaction ends)."""
    cur = await conn.execute(
        "SELECT netlify_site_id FROM push_projects WHERE customer_id = %s AND project_id = %s FOR UPDATE",
        (customer_id, values["project_id"]),
    )
    before = await cur.fetchone()
    if own_token or (before is not None and before["netlify_site_id"] == values["netlify_site_id"]):
        return
    raise ApiError(
        403,
        "ADMIN_REGISTRATION_REQUIRED",
        "This customer has no Netlify token of its own, so a key cannot choose the Netlify site a "
        "project deploys to; an admin must register the project (or set the customer's Netlify token).",
    )


async def customer_upsert(ctx: Ctx) -> Response:
    """POST {project_id, name, netlify_site_id}: 201 when created, 200 when updated."""
    body = await ctx.json_object()
    fields.reject_unknown(body, _EDITABLE)
    values = _validated(body, partial=False)
    own_token = await customer_token(ctx.customer) is not None
    async with db.connection() as conn, conn.transaction():
        await _check_site_choice(conn, ctx.customer, values, own_token)
        try:
            cur = await conn.execute(
                "INSERT INTO push_projects AS p "
                "(customer_id, project_id, name, netlify_site_id, registered_by) "
                "VALUES (%(customer)s, %(project_id)s, %(name)s, %(netlify_site_id)s, 'key') "
                "ON CONFLICT (customer_id, project_id) DO UPDATE SET name = excluded.name, "
                "netlify_site_id = excluded.netlify_site_id, registered_by = CASE "
                "WHEN p.netlify_site_id = excluded.netlify_site_id THEN p.registered_by ELSE 'key' END, "
                f"updated_at = now() RETURNING {COLUMNS}, (xmax = 0) AS created",
                {"customer": ctx.customer_id, **values},
            )
        except psycopg.errors.UniqueViolation as exc:
            raise _conflict(exc, values) from None
        row = await db.one(cur)
        created = row.pop("created")
        await audit.record(
            conn,
            ctx.actor or "key",
            "push.project_upsert",
            f"push_project:{row['id']}",
            {**values, "registered_by": row["registered_by"]},
        )
    return JSONResponse({"item": row}, status_code=201 if created else 200)


# ----------------------------------------------------------------------------- admin side


async def _admin_row(conn: db.Connection, row_id: int) -> dict[str, Any]:
    cur = await conn.execute(f"SELECT {COLUMNS} FROM push_projects WHERE id = %s FOR UPDATE", (row_id,))
    return found(await cur.fetchone(), f"Project {row_id}")


def _conflict(exc: psycopg.errors.UniqueViolation, values: dict[str, Any]) -> ApiError:
    """409 for the unique constraint a write hit: the site's, or the customer's project id."""
    if exc.diag.constraint_name == SITE_INDEX:
        return ApiError(
            409,
            "SITE_TAKEN",
            f"Netlify site {values['netlify_site_id']} is already registered to a project.",
        )
    return ApiError(
        409, "DUPLICATE_PROJECT", f"This customer already has a project {values.get('project_id')}."
    )


async def admin_get(ctx: Ctx) -> dict[str, Any]:
    row_id = params.int_param(ctx, "id")
    if row_id is not None:
        row = await db.fetch_one(f"SELECT {COLUMNS} FROM push_projects WHERE id = %s", (row_id,))
        return {"item": found(row, f"Project {row_id}")}
    project_id = ctx.query.get("project_id")
    if project_id is not None:
        check_project_id(project_id)
    return await _list({"customer_id": params.int_param(ctx, "customer_id"), "project_id": project_id}, ctx)


async def admin_create(ctx: Ctx) -> Response:
    body = await ctx.json_object()
    fields.reject_unknown(body, ("customer_id", *_EDITABLE))
    customer_id = fields.int_field(body, "customer_id")
    values = _validated(body, partial=False)
    async with db.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT 1 FROM customers WHERE id = %s FOR KEY SHARE", (customer_id,))
        found(await cur.fetchone(), f"Customer {customer_id}")
        try:
            cur = await conn.execute(
                "INSERT INTO push_projects (customer_id, project_id, name, netlify_site_id, registered_by) "
                "VALUES (%(customer)s, %(project_id)s, %(name)s, %(netlify_site_id)s, 'admin') "
                f"RETURNING {COLUMNS}",
                {"customer": customer_id, **values},
            )
        except psycopg.errors.UniqueViolation as exc:
            raise _conflict(exc, values) from None
        row = await db.one(cur)
        await audit.record(
            conn,
            ctx.actor or "admin",
            "push.project_create",
            f"push_project:{row['id']}",
            {"customer_id": customer_id, **values},
        )
    return JSONResponse({"item": row}, status_code=201)


async def admin_update(ctx: Ctx) -> dict[str, Any]:
    row_id = params.int_param(ctx, "id", required=True)
    body = await ctx.json_object()
    fields.reject_unknown(body, _EDITABLE)
    values = _validated(body, partial=True)
    sets = ", ".join(f"{name} = %({name})s" for name in values)
    if "netlify_site_id" in values:  # an admin chose the site: the operator's token may deploy it
        sets += ", registered_by = 'admin'"
    async with db.connection() as conn, conn.transaction():
        before = await _admin_row(conn, row_id)
        try:
            async with conn.transaction():
                cur = await conn.execute(
                    f"UPDATE push_projects SET {sets}, updated_at = now() "
                    f"WHERE id = %(id)s RETURNING {COLUMNS}",
                    {**values, "id": row_id},
                )
        except psycopg.errors.UniqueViolation as exc:
            raise _conflict(exc, values) from None
        row = await cur.fetchone()
        changes = {name: {"from": before[name], "to": value} for name, value in values.items()}
        await audit.record(
            conn, ctx.actor or "admin", "push.project_update", f"push_project:{row_id}", changes
        )
    return {"item": row}


async def admin_delete(ctx: Ctx) -> dict[str, Any]:
    row_id = params.int_param(ctx, "id", required=True)
    async with db.connection() as conn, conn.transaction():
        row = await _admin_row(conn, row_id)
        await conn.execute("DELETE FROM push_projects WHERE id = %s", (row_id,))
        await audit.record(
            conn,
            ctx.actor or "admin",
            "push.project_delete",
            f"push_project:{row_id}",
            {"customer_id": row["customer_id"], "project_id": row["project_id"]},
        )
    return {"item": row}
