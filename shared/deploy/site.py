"""The admin site for Netlify: ``python -m shared.deploy site``, netlify.toml's build command.

It copies ``public/`` to ``build/site/`` (the published folder) and writes two files from the
build environment, so nobody edits ``netlify.toml`` by hand:

- ``_redirects`` proxies ``/.netlify/functions/*`` to ``API_ORIGIN``: the admin screen's calls
  stay same-origin; ``/v1/*``, so the OpenAI and Anthropic SDKs may use the site as base; and
  ``/kaixupush.py``, the deploy client the API publishes (one source: the API's own file);
- ``config.json`` gives the screen ``STREAM_ORIGIN``, where it opens what Netlify's proxy
  would cut at 26 s or buffer: the monitor's live tail, CSV exports, the "try it" stream.
  It defaults to ``API_ORIGIN`` (one uvicorn host serves both).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from shared import config

OUT = config.PROJECT_ROOT / "build" / "site"
_LOCAL_HOSTS = ("localhost", "127.0.0.1")


def origin(name: str, value: str) -> str:
    """``value`` as a bare origin (scheme and host, no path), or a SystemExit naming ``name``."""
    value = value.strip().rstrip("/")
    if not value:
        raise SystemExit(
            f"deploy: {name} is required in the build environment: the API's origin, e.g. "
            "https://abc123.execute-api.eu-west-1.amazonaws.com (the stack's ApiUrl and StreamUrl outputs)"
        )
    parts = urlsplit(value)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS)
    if not (secure and parts.hostname) or parts.path or parts.query or parts.fragment:
        raise SystemExit(f"deploy: {name} must be an https:// origin with no path, got {value!r}")
    return value


def build(out: Path = OUT, environ: Mapping[str, str] = os.environ) -> Path:
    api = origin("API_ORIGIN", environ.get("API_ORIGIN", ""))
    stream = origin("STREAM_ORIGIN", environ.get("STREAM_ORIGIN") or api)
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(config.PROJECT_ROOT / "public", out)
    (out / "_redirects").write_text(
        f"/.netlify/functions/*  {api}/.netlify/functions/:splat  200!\n/v1/*  {api}/v1/:splat  200!\n"
        f"/kaixupush.py  {api}/kaixupush.py  200!\n/account  /account.html  200\n"
    )
    (out / "config.json").write_text(json.dumps({"stream_origin": stream}, indent=2) + "\n")
    return out
