"""An invoice's life: draft → issued (numbered) → paid, and issued or paid → void.

``PATCH admin-invoices?id=N {"status": "issued" | "paid" | "void"}``. Each transition runs in
one transaction that locks the invoice row (``FOR UPDATE``, after a per-customer advisory
lock so a customer's months change one at a time), writes the row, books or takes back the
credit it carries into the next month, and records the audit entry; a refused one writes
nothing.

- **issue** (draft → issued): takes the next number from ``invoice_counter`` with an upsert
  in the same transaction, so numbers are gapless: a refused or rolled-back issue burns none.
  At most one live (issued or paid) invoice per customer and month: the partial unique index
  says so, and its violation is answered 409 ``ALREADY_ISSUED``. The snapshot's carried-out
  credit is added to the next month's ``carried_in_nanos``. A snapshot whose carried-in credit
  is no longer the month's (an earlier month was issued or voided since) is stale: 409.
- **pay** (issued → paid): sets ``paid_at``.
- **void** (issued or paid → void): keeps its number, sets ``voided_at`` and takes back the
  credit it carried out. A draft is never voided: it has no number (the table requires one on
  every non-draft), is no document, and a later version supersedes it.

Credit moves along the months in order: an invoice that carries credit cannot be issued or
voided while the next month already has a live invoice (that one counted the credit as it
stood): void the later one first.
"""

from __future__ import annotations

from typing import Any

import psycopg

from shared import audit, db, fields, money, params
from shared.admin import accounts
from shared.billing import invoices, reconcile
from shared.errors import ApiError, bad_request, found
from shared.http import Ctx

# status asked for -> (the statuses it may come from, the audit action)
TRANSITIONS = {
    "issued": (("draft",), "invoice.issue"),
    "paid": (("issued",), "invoice.pay"),
    "void": (("issued", "paid"), "invoice.void"),
}
_NEXT_NUMBER = (
    "INSERT INTO invoice_counter AS c (only_row, last_number) VALUES (true, 1) "
    "ON CONFLICT (only_row) DO UPDATE SET last_number = c.last_number + 1 RETURNING last_number"
)
_LIVE_INDEX = "invoice_snapshots_live"


def parse_status(body: dict[str, Any]) -> str:
    """The one field of the body, ``status``, naming a state an invoice can be moved to."""
    fields.reject_unknown(body, ("status",))
    status = body.get("status")
    if status is None:
        raise bad_request("status", "status is required: issued, paid or void.")
    if not isinstance(status, str) or status not in TRANSITIONS:
        raise bad_request("status", "status must be issued, paid or void.")
    return status


def _invalid(row: dict[str, Any], wanted: str) -> ApiError:
    sources = " or ".join(TRANSITIONS[wanted][0])
    why = ""
    if wanted == "void" and row["status"] == "draft":
        why = " (a draft has no number and is no document: a newer snapshot supersedes it)"
    return ApiError(
        409,
        "INVALID_TRANSITION",
        f"Invoice {row['id']} is {row['status']}: only a {sources} invoice can become {wanted}{why}.",
        invoice_status=row["status"],
    )


async def _lock(conn: db.Connection, invoice_id: int) -> dict[str, Any]:
    """The invoice row, locked, after the lock on its customer's invoices (taken first, so two
    transitions of one customer never wait on each other's rows in the opposite order)."""
    cur = await conn.execute("SELECT customer_id FROM invoice_snapshots WHERE id = %s", (invoice_id,))
    owner = found(await cur.fetchone(), f"Invoice snapshot {invoice_id}")
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('invoice-state:' || %s, 0))", (owner["customer_id"],)
    )
    cur = await conn.execute("SELECT * FROM invoice_snapshots WHERE id = %s FOR UPDATE", (invoice_id,))
    return found(await cur.fetchone(), f"Invoice snapshot {invoice_id}")


async def _next_month_live(conn: db.Connection, row: dict[str, Any]) -> None:
    """409 when credit would move into a month whose live invoice already counted it."""
    following = invoices.month_after(row["month"])
    cur = await conn.execute(
        "SELECT number FROM invoice_snapshots WHERE customer_id = %s AND month = %s "
        "AND status IN ('issued', 'paid')",
        (row["customer_id"], following),
    )
    live = await cur.fetchone()
    if live is not None:
        raise ApiError(
            409,
            "NEXT_MONTH_ISSUED",
            f"Invoice {row['id']} carries credit into {following}, whose invoice no. {live['number']} "
            "is already issued: void that one first.",
        )


async def _carry(conn: db.Connection, row: dict[str, Any], nanos: int) -> None:
    """Add ``nanos`` (negative: take back) to the credit carried into the next month."""
    await conn.execute(
        "INSERT INTO monthly_usage (customer_id, month, carried_in_nanos) VALUES (%s, %s, %s) "
        "ON CONFLICT (customer_id, month) DO UPDATE "
        "SET carried_in_nanos = monthly_usage.carried_in_nanos + excluded.carried_in_nanos, "
        "updated_at = now()",
        (row["customer_id"], invoices.month_after(row["month"]), nanos),
    )


async def _issue(conn: db.Connection, row: dict[str, Any]) -> dict[str, Any]:
    if row["month"] > accounts.current_month():
        raise ApiError(409, "INVALID_TRANSITION", f"{row['month']} has not begun: it cannot be invoiced yet.")
    snapshot = reconcile.document(row)
    brought = await invoices.carried_in(conn, row["customer_id"], row["month"])
    if brought != int(snapshot["totals"]["carried_in_nanos"]):
        raise ApiError(
            409,
            "STALE_INVOICE",
            f"The credit carried into {row['month']} changed since version {row['version']} was taken: "
            "take a new snapshot and issue that.",
        )
    carried = int(snapshot["totals"]["carried_out_nanos"])
    if carried:
        await _next_month_live(conn, row)
    cur = await conn.execute(_NEXT_NUMBER)
    number = (await db.one(cur))["last_number"]
    try:
        cur = await conn.execute(
            "UPDATE invoice_snapshots SET status = 'issued', number = %s, issued_at = now(), "
            "carried_out_nanos = %s WHERE id = %s RETURNING *",
            (number, carried, row["id"]),
        )
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name != _LIVE_INDEX:
            raise
        # Leaving the transaction with this error rolls the number back with everything else.
        raise ApiError(
            409,
            "ALREADY_ISSUED",
            f"Customer {row['customer_id']} already has an issued invoice for {row['month']}: void it first.",
        ) from None
    issued = await db.one(cur)
    if carried:
        await _carry(conn, row, carried)
    return issued


async def _pay(conn: db.Connection, row: dict[str, Any]) -> dict[str, Any]:
    cur = await conn.execute(
        "UPDATE invoice_snapshots SET status = 'paid', paid_at = now() WHERE id = %s RETURNING *",
        (row["id"],),
    )
    return await db.one(cur)


async def _void(conn: db.Connection, row: dict[str, Any]) -> dict[str, Any]:
    carried = int(row["carried_out_nanos"])
    if carried:
        await _next_month_live(conn, row)
        await _carry(conn, row, -carried)
    cur = await conn.execute(
        "UPDATE invoice_snapshots SET status = 'void', voided_at = now() WHERE id = %s RETURNING *",
        (row["id"],),
    )
    return await db.one(cur)


_APPLY = {"issued": _issue, "paid": _pay, "void": _void}


async def transition(invoice_id: int, wanted: str, actor: str) -> dict[str, Any]:
    """Move one invoice to ``wanted``, audited, in one transaction; the row as it now is."""
    sources, action = TRANSITIONS[wanted]
    async with db.connection() as conn, conn.transaction():
        row = await _lock(conn, invoice_id)
        if row["status"] not in sources:
            raise _invalid(row, wanted)
        updated = await _APPLY[wanted](conn, row)
        details = {
            "customer_id": row["customer_id"],
            "month": row["month"],
            "version": row["version"],
            "from": row["status"],
            "to": wanted,
            "number": updated["number"],
            "due_cents": updated["total_cents"],
            "carried_out_nanos": updated["carried_out_nanos"],
            "carried_out_cents": money.cents(updated["carried_out_nanos"]),
        }
        await audit.record(conn, actor, action, f"invoice:{invoice_id}", details)
    return updated


async def patch(ctx: Ctx) -> dict[str, Any]:
    """PATCH ?id= {"status"}: issue, mark paid or void one invoice."""
    invoice_id = params.int_param(ctx, "id", required=True)
    wanted = parse_status(await ctx.json_object())
    return {"item": await transition(invoice_id, wanted, ctx.actor or "admin")}
