"""Streams a client cannot hold hostage: a reader that stops reading is cut, and a live
stream keeps its reservation on a timer whatever its reader or provider is doing."""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

from shared.gateway import leases
from tests.support.calls import body
from tests.support.database import wait_for


def _request_and_never_read(server: str, key) -> socket.socket:
    """POST gateway-stream on a socket with a tiny receive buffer, and read nothing."""
    parts = urlsplit(server)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    payload = json.dumps(body()).encode()
    head = (
        f"POST /.netlify/functions/gateway-stream HTTP/1.1\r\nhost: {parts.netloc}\r\n"
        f"authorization: {key.auth['authorization']}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n"
    )
    sock.sendall(head.encode() + payload)
    return sock


def test_a_client_that_stops_reading_is_cut_and_its_call_settled(server, db, make_key, upstreams, configure):
    configure(STREAM_WRITE_TIMEOUT_S="1", STREAM_USAGE_WAIT_S="0")
    upstreams.script("openai", deltas=["x" * 16_000] * 600)  # far more than the socket buffers hold
    key = make_key()
    sock = _request_and_never_read(server, key)
    try:
        row = wait_for(lambda: db.execute("SELECT outcome FROM usage_events").fetchone(), timeout=15)
        assert row == {"outcome": "client_disconnect"}
        assert upstreams.wait_for(lambda: upstreams.streams_closed == 1)  # the provider was let go
        assert db.execute("SELECT count(*) AS n FROM reservations").fetchone()["n"] == 0
    finally:
        sock.close()


def test_a_quiet_stream_keeps_its_reservation_on_a_timer(
    server, db, make_key, upstreams, configure, monkeypatch
):
    monkeypatch.setattr(leases, "KEEP_ALIVE_EVERY_S", 0.2)
    configure(STREAM_PING_S="60")  # nothing passes through the relay loop for a while
    upstreams.script("openai", deltas=["a ", "b "], chunk_delay_s=1.5)
    key = make_key()
    sock = _request_and_never_read(server, key)
    try:
        first = wait_for(lambda: db.execute("SELECT created_at FROM reservations").fetchone())
        time.sleep(0.8)  # well before the provider's first word
        later = db.execute("SELECT created_at FROM reservations").fetchone()
        assert later is not None and later["created_at"] > first["created_at"]
    finally:
        sock.close()
