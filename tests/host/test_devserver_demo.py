"""The first five minutes, from the shell: ``python -m shared.devserver`` on a fresh data folder
prints the admin password, a demo key and a curl line that streams a demo answer (run here with
httpx); a later start reuses all of it and prints no secret; ``--no-demo`` turns it off."""

from __future__ import annotations

import stat

import httpx

from shared.host import demo
from shared.providers.demo_model import answer, count_tokens
from tests.support.devserver import DEMO_KEY, PASSWORD, DevServer, run_curl
from tests.support.sse import parse_sse

FUNCTIONS = "/.netlify/functions/"


def streamed(response) -> tuple[str, dict]:
    assert response.status_code == 200, response.text
    frames = parse_sse(response.text)
    assert frames[0][0] == "meta" and frames[-1][0] == "done", frames
    return "".join(data["text"] for name, data in frames if name == "delta"), frames[-1][1]


def test_a_fresh_start_streams_a_billed_demo_answer_and_later_starts_print_no_secret(tmp_path):
    data = tmp_path / "data"
    first = DevServer(data).start()
    try:
        password, key = first.printed(PASSWORD), first.printed(DEMO_KEY)
        assert password and key and key.startswith("kx_live_"), first.output
        assert f"demo provider: demo/{demo.MODEL} answers here at $20 / $200" in first.output
        line = first.curl_line()
        assert line.startswith(f"curl -N {first.origin}/.netlify/functions/gateway-stream") and key in line
        text, done = streamed(run_curl(line))
        assert text == answer(demo.MODEL, "Hello")
        assert done["usage"] == {"input_tokens": 1, "output_tokens": count_tokens(text), "cost_cents": 1}
        assert done["month"]["spent_cents"] == 1
    finally:
        assert first.stop() == 0
    assert "embedded PostgreSQL stopped" in first.output
    kept = data / demo.KEY_FILE
    assert kept.read_text().strip() == key and stat.S_IMODE(kept.stat().st_mode) == 0o600

    again = DevServer(data).start()
    try:
        assert again.printed(PASSWORD) is None and again.printed(DEMO_KEY) is None
        assert key not in again.output and password not in again.output, again.output
        assert f"demo key of {demo.EMAIL}: kept in {kept}" in again.output
        assert "$(cat " in again.curl_line()
        text, done = streamed(run_curl(again.curl_line()))
        assert text == answer(demo.MODEL, "Hello") and done["month"]["spent_cents"] == 2
        customers = admin_get(again, password, "admin-customers")["items"]
        assert [c["email"] for c in customers] == [demo.EMAIL]  # no second demo customer
    finally:
        assert again.stop() == 0

    off = DevServer(data, "--no-demo").start()
    try:
        assert "demo" not in off.output and not [line for line in off.lines if line.startswith("curl ")]
        refused = run_curl(again.curl_line().replace(again.origin, off.origin))
        assert refused.status_code == 503 and refused.json()["code"] == "PROVIDER_NOT_CONFIGURED"
        models = admin_get(off, password, "admin-models?provider=demo")["items"]
        assert [(m["model"], m["configured"]) for m in models] == [(demo.MODEL, False)]
    finally:
        assert off.stop() == 0


def admin_get(server: DevServer, password: str, path: str) -> dict:
    response = httpx.get(
        f"{server.origin}{FUNCTIONS}{path}", headers={"x-admin-password": password}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.json()
