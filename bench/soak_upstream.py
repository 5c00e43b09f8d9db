"""The soak's provider fake: ``python bench/soak_upstream.py PORT``.

It is the test suite's fake of OpenAI, Anthropic and Gemini (``tests/support/fakes/upstreams``:
their real wire formats, error bodies, mid-stream error events, dropped connections, stalls)
served in a process of its own, so that its CPU is not the load driver's. The test fake is
scripted globally (``fake.script(...)``); a soak needs a different behaviour for each of
thousands of concurrent calls, so here each request carries its own script inside its prompt,
which the gateway forwards to the provider as it does any text::

    [[soak:status=503]]                      the provider's own 503 error body
    [[soak:drop_after=1;chunk_delay_s=0.02]] cut the connection after one delta
    [[soak:error_after=2]]                   the provider's mid-stream error event
    [[soak:delay_s=3]]                       stall before answering
    [[soak:input_tokens=17;output_tokens=40;words=9]]  the usage to report, and a longer text

Any field of ``Behaviour`` with a number or boolean value may be set; ``words=N`` makes the
reply N words long (N deltas when streamed). Requests are not recorded (the test fake keeps
every request, which a soak of 200,000 calls cannot afford).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fakes.upstreams import (  # noqa: E402
    FakeUpstreams,
    RecordedRequest,
    _quiet_intentional_drops,
)

DIRECTIVE = re.compile(r"\[\[soak:([^\]]*)\]\]")
_SETTABLE = {
    "status",
    "delay_s",
    "chunk_delay_s",
    "error_after",
    "no_terminal",
    "drop_after",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "thoughts_tokens",
}


def make_directive(**values: Any) -> str:
    """The ``[[soak:...]]`` text that makes the fake behave so (see :func:`parse`)."""
    return "[[soak:" + ";".join(f"{k}={v}" for k, v in values.items()) + "]]"


def _value(name: str, raw: str) -> Any:
    if name in ("no_terminal",):
        return raw.lower() in ("1", "true", "yes")
    if name in ("delay_s", "chunk_delay_s"):
        return float(raw)
    return int(raw)


def parse(text: str) -> dict[str, Any]:
    """Behaviour changes from the directive in ``text`` (none: the default behaviour)."""
    match = DIRECTIVE.search(text)
    changes: dict[str, Any] = {}
    for part in match.group(1).split(";") if match else ():
        name, _, raw = (piece.strip() for piece in part.partition("="))
        if name == "words":
            changes["text"] = " ".join(f"w{i}" for i in range(max(int(raw), 1)))
        elif name in _SETTABLE:
            changes[name] = _value(name, raw)
    return changes


def _texts(value: Any) -> str:
    """Every string inside a request body, joined (where the prompt is differs per provider)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return " ".join(_texts(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_texts(v) for v in value)
    return ""


class SoakUpstreams(FakeUpstreams):
    """The test fake, with each request's behaviour read from its own prompt."""

    def _record(self, scope: dict[str, Any], raw: bytes) -> RecordedRequest:
        request = super()._record(scope, raw)
        with self._lock:
            self._requests.clear()  # keep nothing: a soak sends hundreds of thousands
        return request

    def _route(self, request: RecordedRequest) -> tuple[Any, str]:
        wire, operation = super()._route(request)
        if wire is not None and (changes := parse(_texts(request.body))):
            wire.b = replace(wire.b, **changes)
        limit = _max_tokens(request.body)
        if wire is not None and limit is not None and wire.b.output_tokens > limit:
            # As a provider does: it writes at most the max_tokens it was sent, which is less
            # than the directive assumed when the gateway clamped the call to its budget.
            wire.b = replace(wire.b, output_tokens=limit, thoughts_tokens=min(wire.b.thoughts_tokens, limit))
        return wire, operation


def _max_tokens(body: Any) -> int | None:
    """The output limit a request sent, in any of the three providers' spellings."""
    if not isinstance(body, dict):
        return None
    config = body.get("generationConfig")
    for value in (
        body.get("max_completion_tokens"),
        body.get("max_tokens"),
        config.get("maxOutputTokens") if isinstance(config, dict) else None,
    ):
        if isinstance(value, int):
            return value
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    _quiet_intentional_drops()
    app = SoakUpstreams()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=30,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
