"""Bring a database to this release's schema: ``python -m shared.migrate``.

Two kinds of SQL, the way Flyway keeps versioned and repeatable migrations:

- ``sql/NNN_name.sql``: the tables' history, applied once each in order and recorded with a
  checksum; an applied file that was edited afterwards is an error, not a silent drift.
- ``sql/functions/*.sql``: the server-side functions (ADMIT, SETTLE, ...), one current
  definition each (``CREATE OR REPLACE``), re-applied after the migrations whenever a file's
  checksum differs from the one recorded. A function defined in an old migration is
  superseded here; changing a function's arguments needs a migration that drops the old one
  once no running release calls it.

Each file runs in its own transaction under a transaction-scoped advisory lock, so two
processes migrating at once serialise (the second finds the work done) and the runner is
safe behind a transaction-mode pooler.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from shared import config
from shared.billing import seed

SQL_DIR = config.PROJECT_ROOT / "sql"
FUNCTIONS_DIR = SQL_DIR / "functions"
_LOCK_ID = 0x4B41_4958  # "KAIX": one lock for the whole schema
_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = SQL_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise SystemExit(f"migrate: {path.name} is not named NNN_name.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise SystemExit("migrate: two migrations share a number")
    return found


def discover_functions(directory: Path = FUNCTIONS_DIR) -> list[Migration]:
    """The repeatable files (version 0: they have none)."""
    return [
        Migration(0, f"functions/{path.name}", path.read_text()) for path in sorted(directory.glob("*.sql"))
    ]


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version int PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS schema_functions (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now());
"""


def _lock(conn: psycopg.Connection) -> None:
    """Serialise with any other migrating process, inside the caller's transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
    conn.execute(_BOOKKEEPING)


def _apply_functions(conn: psycopg.Connection, routines: Migration) -> bool:
    with conn.transaction():
        _lock(conn)
        cur = conn.execute("SELECT checksum FROM schema_functions WHERE name = %s", (routines.name,))
        row = cur.fetchone()
        if row and row[0] == routines.checksum:
            return False
        conn.execute(routines.sql)
        conn.execute(
            "INSERT INTO schema_functions (name, checksum) VALUES (%s, %s) ON CONFLICT (name) DO UPDATE "
            "SET checksum = excluded.checksum, applied_at = now()",
            (routines.name, routines.checksum),
        )
        return True


def _apply_one(conn: psycopg.Connection, migration: Migration) -> bool:
    with conn.transaction():
        _lock(conn)
        cur = conn.execute("SELECT checksum FROM schema_migrations WHERE version = %s", (migration.version,))
        row = cur.fetchone()
        if row:
            if row[0] != migration.checksum:
                raise SystemExit(f"migrate: {migration.name} changed after it was applied")
            return False
        conn.execute(migration.sql)
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
            (migration.version, migration.name, migration.checksum),
        )
        return True


def migrate(database_url: str, directory: Path = SQL_DIR) -> list[str]:
    """Apply every pending migration, then every changed function file, then seed what a new
    database lacks (shared/billing/seed.py); return the names applied by this call."""
    applied = []
    with psycopg.connect(database_url, autocommit=True, prepare_threshold=None) as conn:
        for migration in discover(directory):
            if _apply_one(conn, migration):
                applied.append(migration.name)
        for routines in discover_functions(directory / "functions"):
            if _apply_functions(conn, routines):
                applied.append(routines.name)
        if directory == SQL_DIR:
            seed.seed(conn)
    return applied


def schema_version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def main() -> int:
    url = config.settings().database_url
    if not url:
        raise SystemExit("migrate: set DATABASE_URL (or NETLIFY_DB_URL) to the database to migrate")
    names = migrate(url)
    print(f"applied {len(names)} migration(s)" + (": " + ", ".join(names) if names else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
