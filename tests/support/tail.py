"""A live tail of the monitor, read in a thread as the admin screen reads it."""

from __future__ import annotations

import json
import threading

import httpx

from tests.support.reports import PASSWORD_HEADERS


class TailReader:
    """Reads an SSE tail in a thread, collecting (event, data) frames."""

    def __init__(self, server: str, after_id: int | None = None, headers: dict | None = None) -> None:
        self.frames: list[tuple[str, dict]] = []
        self.done = False  # the server ended the stream
        self._params = {"tail": "1"} | ({"after_id": str(after_id)} if after_id is not None else {})
        self._url = f"{server}/.netlify/functions/admin-monitor"
        self._headers = headers or PASSWORD_HEADERS
        self._client = httpx.Client(timeout=httpx.Timeout(10, read=30))
        self.status: int | None = None
        self.headers: httpx.Headers | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Hangs up at the first line after close() (the tests make the server ping every 0.2 s)."""
        headers = self._headers
        with self._client.stream("GET", self._url, params=self._params, headers=headers) as response:
            self.status, self.headers = response.status_code, response.headers
            event = None
            for line in response.iter_lines():
                if self._stop.is_set():
                    return
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    self.frames.append((event, json.loads(line[6:])))
        self.done = True

    def rows(self, kind: str = "test") -> list[str]:
        return [data["summary"] for event, data in self.frames if event == "row" and data["kind"] == kind]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.close()
