"""The admin SPA as files: served at ``/``, the seed's screen text in the seed's order, no
inline script or remote resource, no HTML injection sinks; and the admin-models endpoint
behind its model picker. (Behaviour in a browser: test_spa.py.)"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx

from shared.admin import exports
from shared.billing import pricing
from tests.support import admin as admin_support

admin = admin_support.admin  # the fixture

PUBLIC = Path(__file__).resolve().parents[2] / "public"
JS_FILES = sorted((PUBLIC / "assets" / "js").rglob("*.js"))

# The admin screen as the seed describes it, line by line: every heading, table header row,
# hint and example must appear in this order and wording ("|---|" rows are not text).
SEED = """
Admin login
Password comes from ADMIN_PASSWORD.
v5 adds universal caps, per-device seats, allowlists, exports, invoice snapshots, Stripe top-ups, and stronger rate limiting.
Customers
| ID | Plan | Monthly cap | Active | Active keys | Netlify token | Created |
Click a customer row to prefill Customer ID for Keys/Usage.
Netlify token is stored encrypted in Netlify DB. KaixuPush will prefer the customer token; without one it falls back to NETLIFY_AUTH_TOKEN only for projects an admin registered.
Create customer + issue master key
Keys (Sub-keys / Rotate / Revoke)
| ID | Last4 | Label | Cap override | RPM override | Max devices | Require install | Allowed providers | Allowed models | Revoked | Created | Actions |
Create sub-key
Rotate = create a new key with same settings and revoke the old key. Revoke = immediate cutoff.
Usage
| Time | Provider | Model | Input | Output | Cost (cents) |
SSE endpoint: POST /.netlify/functions/gateway-stream
Billing & Controls
Customer policy
Top-ups
Manual top-ups raise the chosen month's cap by the amount (listed below as source “manual”). Stripe checkout requires Stripe env vars + webhook.
Invoice snapshot
—
Devices
| Key | Install ID | First seen | Last seen | Revoked | User-Agent | Action |
Exports & Invoices
Downloads carry your admin session (its Bearer token, never the password), so the page fetches each file and saves it locally.
KaixuPush (Deploy Proxy)
Project registry
| ID | Project ID | Name | Netlify Site ID | Updated | Actions |
Tip: click a row to load into the form.
Deploy history
| Push ID | Project | Branch | State | Required | Uploaded | URL | Created |
Chunk jobs
| Push ID | Project | Path | SHA1 | Parts | Received | Staged bytes | Status | Updated |
Push invoices
| Month | Total | Pricing | Deploys | Bytes | Updated |
Integration
Non-stream
POST /.netlify/functions/gateway-chat
Streaming (SSE)
POST /.netlify/functions/gateway-stream
Client opens EventSource-like stream via fetch and reads SSE frames (event/meta/delta/done).
Normalized request
{
"provider": "openai" | "anthropic" | "gemini",
"model": "...",
"messages": [{"role":"user","content":"Hello"}],
"max_tokens": 256,
"temperature": 0.7
}
SSE events
event: meta
data: {"provider":"openai","model":"gpt-4o-mini","month":{"month":"2026-02","cap_cents":2000,"spent_cents":0,"key_cap_cents":500,"key_spent_cents":12}}
event: delta
data: {"text":"Hel"}
event: delta
data: {"text":"lo!"}
event: done
data: {"usage":{"input_tokens":12,"output_tokens":18,"cost_cents":1},"month":{"month":"2026-02","cap_cents":2000,"spent_cents":1,"key_cap_cents":500,"key_spent_cents":13}}
This build is Netlify DB-native (Neon) and uses an in-house DB-backed rate limiter (no Redis required).
Monitor
| Time | Level | Function | App | Status | Provider/Model | ms | Request | Summary |
Tip: tag your apps with headers x-kaixu-app and x-kaixu-build. For client-side errors (before the request hits the gateway), POST to /.netlify/functions/client-error-report.
"""  # noqa: E501


class _ScreenText(HTMLParser):
    """The page's text in document order; a table header row becomes "| A | B |"."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.header: list[str] | None = None
        self.cell: list[str] | None = None
        self.in_thead = False
        self.skip = 0
        self.scripts: list[dict[str, str | None]] = []
        self.attributes: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes.extend((tag, name, value) for name, value in attrs)
        if tag in ("script", "style"):
            self.skip += 1
            if tag == "script":
                self.scripts.append(dict(attrs))
        elif tag == "thead":
            self.in_thead = True
        elif tag == "tr" and self.in_thead:
            self.header = []
        elif tag == "th" and self.header is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1
        elif tag == "thead":
            self.in_thead = False
        elif tag == "th" and self.cell is not None and self.header is not None:
            self.header.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.header is not None:
            self.parts.append(" | " + " | ".join(self.header) + " | ")
            self.header = None

    def handle_data(self, data: str) -> None:
        if self.skip:
            self.scripts[-1]["inline"] = (self.scripts[-1].get("inline") or "") + data
        elif self.cell is not None:
            self.cell.append(data)
        elif self.header is None:
            self.parts.append(data)


def _screen(html: str) -> _ScreenText:
    parser = _ScreenText()
    parser.feed(html)
    return parser


def _normalised(text: str) -> str:
    return " ".join(text.split())


def test_the_spa_and_its_assets_are_served(server: str) -> None:
    page = httpx.get(f"{server}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="assets/js/main.js"></script>' in page.text
    for path in (
        "assets/app.css",
        "assets/favicon.svg",
        *(p.relative_to(PUBLIC).as_posix() for p in JS_FILES),
    ):
        asset = httpx.get(f"{server}/{path}", timeout=10)
        assert asset.status_code == 200, path
        if path.endswith(".js"):  # browsers refuse modules served with another type
            assert "javascript" in asset.headers["content-type"], (path, asset.headers["content-type"])


def test_the_seed_screen_text_appears_in_the_seed_order() -> None:
    text = _normalised("".join(_screen((PUBLIC / "index.html").read_text()).parts))
    position = 0
    for line in filter(None, (line.strip() for line in SEED.splitlines())):
        wanted = _normalised(line)
        found = text.find(wanted, position)
        assert found >= 0, f"missing after position {position} (or out of order): {wanted!r}"
        position = found + len(wanted)


def test_no_inline_script_no_remote_resource_and_no_html_sinks() -> None:
    screen = _screen((PUBLIC / "index.html").read_text())
    assert screen.scripts == [{"type": "module", "src": "assets/js/main.js"}]
    for tag, name, value in screen.attributes:
        assert not name.startswith("on"), f"inline handler {name} on <{tag}>"
        assert name != "style", f"inline style on <{tag}> (the CSP forbids it)"
        if name in ("src", "href"):
            assert not re.match(r"^(https?:)?//", value or ""), f"remote resource {value} on <{tag}>"
    css = (PUBLIC / "assets" / "app.css").read_text()
    assert "@import" not in css and not re.search(r"url\(\s*['\"]?(https?:)?//", css)
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\(")
    for path in JS_FILES:
        source = path.read_text()
        assert not sinks.search(source), f"{path.name} uses an HTML/code injection sink"
        assert not re.search(r"""from\s+["'](https?:)?//""", source), f"{path.name} imports from the network"


def test_every_relative_import_names_an_existing_module() -> None:
    imports = re.compile(r"""(?:import|export)\s[^;]*?\sfrom\s+["'](\.{1,2}/[^"']+)["']""", re.S)
    for path in JS_FILES:
        for target in imports.findall(path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.name} imports missing {target}"


def test_export_buttons_send_only_the_filters_each_export_accepts() -> None:
    """The SPA's per-type filter list must match the server's (a stray filter is a 400)."""
    source = (PUBLIC / "assets" / "js" / "panels" / "exports.js").read_text()
    block = re.search(r"const FILTERS = \{(.*?)\};", source, re.S).group(1)
    spa = {
        kind: set(re.findall(r'"(\w+)"', names)) for kind, names in re.findall(r"(\w+): \[([^\]]*)\]", block)
    }
    server = {kind: set(export.filters) for kind, export in exports.EXPORTS.items()}
    assert spa == server


def test_admin_models_lists_the_price_book_for_admins_only(admin, server: str) -> None:
    body = admin_support.ok(admin.get("admin-models"))
    assert len(body["items"]) == len(pricing.list_prices())
    assert {"provider": "openai", "model": "gpt-4o-mini"}.items() <= next(
        item for item in body["items"] if item["model"] == "gpt-4o-mini"
    ).items()
    anonymous = httpx.get(f"{server}/.netlify/functions/admin-models", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "UNAUTHORIZED"
