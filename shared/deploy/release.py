"""The release step in AWS: a CloudFormation custom resource that applies the migrations.

CloudFormation invokes this Lambda when the ``Migrations`` resource is created, or updated
because ``sql/`` changed (its ``Checksum`` property), and every function of the stack
depends on that resource: the schema is migrated once per release, before any new function
serves a request, and never by a request-serving function. A failed migration fails the
deploy, which rolls the functions back to the release that matches the schema. Deleting the
stack leaves the database alone.

CloudFormation waits for an answer PUT to the pre-signed ``ResponseURL``; without one a
stack hangs for an hour, so every outcome is answered, including running out of time.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

from shared import config, migrate

log = logging.getLogger("kaixu.release")
_ANSWER_MARGIN_S = 10.0  # time kept to answer CloudFormation before the Lambda is stopped


def _migrate() -> dict[str, str]:
    url = config.settings().database_url
    if not url:
        raise RuntimeError("DATABASE_URL is empty in the gateway's secret")
    applied = migrate.migrate(url)
    return {"Applied": ", ".join(applied) or "none", "SchemaVersion": str(len(migrate.discover()))}


def _run_within(seconds: float) -> dict[str, str]:
    """Migrate in a thread, so that running out of time is answered rather than killed."""
    outcome: dict[str, Any] = {}  # "data": dict[str, str], or "error": BaseException

    def run() -> None:
        try:
            outcome["data"] = _migrate()
        except BaseException as exc:  # SystemExit from migrate (an edited migration) included
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(
            f"migrations did not finish within {seconds:.0f} s; run `python -m shared.migrate` "
            "against the database, then deploy again"
        )
    if "error" in outcome:
        raise outcome["error"]
    data: dict[str, str] = outcome["data"]
    return data


def _answer(event: dict[str, Any], status: str, reason: str, data: dict[str, str]) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": event.get("PhysicalResourceId") or "kaixu-migrations",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"],
        data=body,
        method="PUT",
        headers={"content-type": "", "content-length": str(len(body))},  # what the URL was signed for
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def handler(event: dict[str, Any], context: Any) -> None:
    data: dict[str, str] = {}
    try:
        if event["RequestType"] != "Delete":
            data = _run_within(context.get_remaining_time_in_millis() / 1000 - _ANSWER_MARGIN_S)
        status, reason = "SUCCESS", f"migrations applied: {data.get('Applied', 'none')}"
    except BaseException as exc:
        log.exception("migrations failed")
        status, reason = "FAILED", f"{type(exc).__name__}: {exc}"
    _answer(event, status, reason, data)
