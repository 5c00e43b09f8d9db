"""Operator CLI for scripting: ``python -m shared.cli <command> ...`` prints JSON.

Uses ``DATABASE_URL`` (or its fallbacks), else the dev server's embedded database in the
data folder (started for the command if the dev server is not running).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from shared import config, db, migrate
from shared.admin import accounts
from shared.billing import plans, topups
from shared.errors import ApiError, bad_request
from shared.gateway import keys

ACTOR = "cli"


async def _create_customer(args: argparse.Namespace) -> dict[str, Any]:
    customer, key, new = await accounts.create_customer(
        args.email,
        actor=ACTOR,
        plan_id=await plans.id_by_name(args.plan) if args.plan else None,
        monthly_cap_cents=args.cap_cents,
        rpm_limit=args.rpm,
        max_concurrent=args.max_concurrent,
    )
    return {"customer_id": customer["id"], "key": new.secret, "role": key["role"]}


async def _create_key(args: argparse.Namespace) -> dict[str, Any]:
    settings = {
        "role": args.role,
        "label": args.label,
        "monthly_cap_cents": args.cap_cents,
        "rpm_limit": args.rpm,
        "rpd_limit": args.rpd,
        "max_devices": args.max_devices,
        "max_concurrent": args.max_concurrent,
        "require_install_id": True if args.require_install_id else None,
    }
    key, new = await accounts.create_key(
        args.customer_id, actor=ACTOR, **{k: v for k, v in settings.items() if v is not None}
    )
    return {"key_id": key["id"], "key": new.secret, "role": key["role"]}


async def _topup(args: argparse.Namespace) -> dict[str, Any]:
    if args.cents <= 0:
        raise bad_request("cents", "cents must be a positive whole number.")
    async with db.connection() as conn, conn.transaction():
        topup = await topups.credit(
            conn, args.customer_id, args.cents, actor=ACTOR, source="manual", month=accounts.current_month()
        )
    return {
        "topup_id": topup["id"],
        "customer_id": args.customer_id,
        "month": topup["month"],
        "amount_cents": topup["amount_cents"],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    customer = commands.add_parser("create-customer", help="create a customer and its master key")
    customer.add_argument("email")
    customer.add_argument("--plan", help="plan name (default: the default plan)")
    customer.add_argument("--cap-cents", type=int, help="monthly cap in cents")
    customer.add_argument("--rpm", type=int, help="default requests per minute for its keys")
    customer.add_argument("--max-concurrent", type=int, help="calls in flight at once (0: unlimited)")
    customer.set_defaults(run=_create_customer)

    key = commands.add_parser("create-key", help="issue a sub-key for a customer")
    key.add_argument("customer_id", type=int)
    key.add_argument("--label")
    key.add_argument(
        "--role",
        choices=keys.ROLES,
        default=keys.DEFAULT_ROLE,
        help=f"what the key may do (default {keys.DEFAULT_ROLE}: call models; deployer also deploys sites)",
    )
    key.add_argument("--cap-cents", type=int, help="monthly cap override in cents")
    key.add_argument("--rpm", type=int, help="requests per minute")
    key.add_argument("--rpd", type=int, help="requests per day")
    key.add_argument("--max-devices", type=int, help="device seats")
    key.add_argument("--max-concurrent", type=int, help="calls in flight at once for this key")
    key.add_argument("--require-install-id", action="store_true")
    key.set_defaults(run=_create_key)

    topup = commands.add_parser("topup", help="credit this month's cap")
    topup.add_argument("customer_id", type=int)
    topup.add_argument("cents", type=int)
    topup.set_defaults(run=_topup)
    return parser


async def _run(
    command: Callable[[argparse.Namespace], Awaitable[dict[str, Any]]], args: argparse.Namespace
) -> dict[str, Any]:
    try:
        return await command(args)
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    embedded = None
    if not config.settings().database_url:
        from shared.host.embedded_pg import EmbeddedPostgres

        embedded = EmbeddedPostgres(config.settings().data_dir / "pg")
        os.environ["DATABASE_URL"] = embedded.url()
        config.reload()
        migrate.migrate(config.settings().database_url)
    try:
        result = asyncio.run(_run(args.run, args))
    except ApiError as error:
        print(json.dumps({"error": error.message, "code": error.code}), file=sys.stderr)
        return 1
    finally:
        if embedded is not None:
            embedded.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
