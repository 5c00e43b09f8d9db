"""Count the statements PostgreSQL receives, from the server's own log.

Used by the benchmark and the tests to prove the gateway's round trips per call: while
counting, ``log_statement = 'all'`` makes the server log every statement (one line per
simple query or extended-protocol execute), and we read the lines it wrote meanwhile,
leaving out the counting connection's own. Works on the embedded PostgreSQL (its log is
``<data_directory>/log``) or any server whose log file this process can read.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg

_LINE = re.compile(r"\[(\d+)\] LOG:  (?:statement|execute [^:]*): ")


class StatementLog:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        cursor = conn.cursor(row_factory=psycopg.rows.tuple_row)
        (directory,) = cursor.execute("SELECT current_setting('data_directory')").fetchone()
        self.path = Path(directory) / "log"
        self.own_pid = conn.info.backend_pid
        self.count = 0
        self.statements: list[str] = []  # the first line of each, as logged
        self._offset = 0

    @property
    def available(self) -> bool:
        return self.path.is_file()

    def _set(self, statement: str) -> None:
        self.conn.execute(statement)
        self.conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.3)  # every backend picks up the reloaded setting

    def __enter__(self) -> StatementLog:
        self._set("ALTER SYSTEM SET log_statement = 'all'")
        self._offset = self.path.stat().st_size
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.1)
        end = self.path.stat().st_size
        self._set("ALTER SYSTEM RESET log_statement")
        with self.path.open("rb") as log:
            log.seek(self._offset)
            text = log.read(end - self._offset).decode(errors="replace")
        self.statements = [
            _line_at(text, m.end()) for m in _LINE.finditer(text) if int(m.group(1)) != self.own_pid
        ]
        self.count = len(self.statements)

    def calls_of(self, function: str) -> int:
        """Statements that called ``function`` (a server-side function: kx_extend_lease, ...)."""
        return sum(f"{function}(" in statement for statement in self.statements)


def _line_at(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]
