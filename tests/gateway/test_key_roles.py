"""Key roles: least power by default, deploy rights asked for, a viewer never spends, and the
migration that introduced them leaves every existing key's power as it was."""

from __future__ import annotations

import shutil
import uuid

import psycopg
import pytest

from shared import migrate
from shared.gateway import keys
from tests.support import admin as admin_support
from tests.support.admin import new_customer, new_key
from tests.support.calls import body
from tests.support.database import with_database
from tests.support.operations import cli

admin = admin_support.admin


def test_a_new_key_calls_models_but_cannot_deploy(admin, server, upstreams, client):
    customer = new_customer(admin)
    key = new_key(admin, customer["id"])
    assert key["role"] == "caller"
    auth = {"authorization": f"Bearer {key['key']}"}
    assert client.post("gateway-chat", json=body(), headers=auth).status_code == 200
    refused = client.post("kaixupush-init", json={"project": "site", "files": {}}, headers=auth)
    assert refused.status_code == 403 and refused.json()["required_role"] == "deployer"


def test_the_master_key_is_the_owner(admin, db):
    created = admin.post("admin-customers", json={"email": f"{uuid.uuid4().hex[:8]}@example.com"}).json()
    master = db.execute(
        "SELECT role FROM api_keys WHERE customer_id = %s", (created["item"]["id"],)
    ).fetchone()
    assert master["role"] == "owner"


def test_a_viewer_key_cannot_spend_and_nothing_is_written(make_key, client, db, upstreams):
    key = make_key(role="viewer", rpm_limit=5)
    refused = client.post("gateway-chat", json=body(), headers=key.auth)
    assert refused.status_code == 403 and refused.json()["code"] == "ROLE_FORBIDDEN"
    assert upstreams.requests == []
    for table in ("reservations", "usage_events", "rate_limit_slots", "monthly_usage"):
        assert db.execute(f"SELECT count(*) AS n FROM {table}").fetchone()["n"] == 0, table


@pytest.mark.parametrize("bad", ["root", "", None, 3])
def test_a_key_role_must_be_one_of_the_roles(admin, db, bad):
    customer = new_customer(admin)
    response = admin.post("admin-keys", json={"customer_id": customer["id"], "role": bad})
    assert response.status_code == 400 and response.json()["field"] == "role"
    assert db.execute("SELECT count(*) AS n FROM api_keys WHERE kind = 'sub'").fetchone()["n"] == 0


def test_the_cli_issues_least_power_unless_asked(database_url):
    created = cli(database_url, "create-customer", f"{uuid.uuid4().hex[:8]}@example.com")
    assert created["role"] == keys.MASTER_ROLE
    plain = cli(database_url, "create-key", str(created["customer_id"]))
    deployer = cli(database_url, "create-key", str(created["customer_id"]), "--role", "deployer")
    assert (plain["role"], deployer["role"]) == ("caller", "deployer")


def test_the_roles_migration_keeps_every_key_as_it_was_and_lists_the_deployers(database_url, tmp_path):
    """Before 007 every key was made a deployer. After it, none has changed role, the operator
    gets one audit event naming the deployer keys to review, and new keys default to caller."""
    before_roles = tmp_path / "sql"
    before_roles.mkdir()
    for migration in migrate.discover():
        if migration.version < 7:
            shutil.copy(migrate.SQL_DIR / migration.name, before_roles / migration.name)
    name = f"kaixu_roles_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(database_url, name)
    try:
        migrate.migrate(url, before_roles)
        with psycopg.connect(url, autocommit=True) as conn:
            customer = conn.execute("INSERT INTO customers (email) VALUES ('old@example.com') RETURNING id")
            customer_id = customer.fetchone()[0]
            ids = []
            for role in (None, None, "viewer"):
                new = keys.generate()
                columns = "customer_id, key_hash, key_last4" + (", role" if role else "")
                values = [customer_id, new.hash, new.last4, *([role] if role else [])]
                placeholders = ", ".join(["%s"] * len(values))
                row = conn.execute(
                    f"INSERT INTO api_keys ({columns}) VALUES ({placeholders}) RETURNING id, role", values
                )
                ids.append(row.fetchone())
        assert [role for _, role in ids] == ["deployer", "deployer", "viewer"]
        migrate.migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            after = conn.execute("SELECT id, role FROM api_keys ORDER BY id").fetchall()
            event = conn.execute(
                "SELECT actor, details FROM audit_events WHERE action = 'key.roles_introduced'"
            ).fetchall()
            default = conn.execute(
                "INSERT INTO api_keys (customer_id, key_hash, key_last4) VALUES (%s, 'x', 'x')"
                " RETURNING role",
                (customer_id,),
            ).fetchone()
        assert after == ids
        assert len(event) == 1 and event[0][0] == "migration"
        assert event[0][1]["deployer_keys"] == [ids[0][0], ids[1][0]]
        assert default == ("caller",)
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
