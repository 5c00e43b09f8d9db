"""One contract: the OpenAPI document describes every function, and schemathesis fuzzes every
operation against the live server, with an admin's token, a customer's key and no credential.

No answer may be a 5xx, every answer must match the document (status, content type, schema),
and every error is the JSON envelope (or, for the compatible APIs, their own error shape).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import given as hypothesis_given
from schemathesis import checks

from shared import config
from shared.host import openapi
from shared.host.asgi import discover_functions
from shared.http import FunctionApp
from tests.support.admin import ADMIN_PASSWORD
from tests.support.fakes.stripe_api import FakeStripe, serve_fake_stripe
from tests.support.kaixupush import netlify, netlify_server  # noqa: F401  (fixtures)

# Per operation and credential: bounded to fit the suite; `python bench/fuzz.py` runs more.
EXAMPLES = int(os.environ.get("KAIXU_FUZZ_EXAMPLES", "4"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def test_every_function_is_described_in_the_document() -> None:
    apps = discover_functions()
    document = openapi.document(apps)
    described = {path.removeprefix("/.netlify/functions/").split("/")[0] for path in document["paths"]}
    assert described == set(apps)
    for path, operations in document["paths"].items():
        assert operations, path
        for operation in operations.values():
            assert operation["summary"] and operation["description"], path
    assert document["paths"]["/.netlify/functions/gateway-stream"]["post"]["responses"]["2XX"]["content"] == {
        "text/event-stream": {"schema": {}}
    }


def test_a_function_without_a_description_is_refused() -> None:
    async def get(ctx: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(ValueError, match="nameless has no description"):
        openapi.document({"nameless": FunctionApp("nameless", {"GET": get})})


def test_the_committed_document_is_current_and_served(server: str) -> None:
    generated = openapi.document(discover_functions())
    committed = json.loads((config.PROJECT_ROOT / "openapi.json").read_text())
    assert committed == generated, "run: python -m shared.host.openapi"
    served = httpx.get(f"{server}/.netlify/functions/openapi", timeout=10)
    assert served.status_code == 200 and served.json() == generated


@pytest.fixture
def stripe(configure: Any) -> Iterator[FakeStripe]:
    for fake in serve_fake_stripe():
        configure(
            STRIPE_SECRET_KEY=fake.secret_key, STRIPE_API_BASE=fake.url, STRIPE_WEBHOOK_SECRET="whsec_test"
        )
        yield fake


@pytest.fixture
def credentials(server, configure, make_key, upstreams, netlify, stripe) -> dict[str, dict[str, str]]:  # noqa: F811
    """Everything configured (providers, Netlify, Stripe, secrets), and the three callers."""
    configure(
        ADMIN_PASSWORD=ADMIN_PASSWORD,
        KAIXU_MAINTENANCE_SECRET="maintenance-secret",
        KAIXU_ENCRYPTION_KEYS="k1:" + "A" * 43 + "=",
    )
    token = httpx.post(f"{server}/.netlify/functions/admin-login", json={"password": ADMIN_PASSWORD}).json()[
        "token"
    ]
    key = make_key(role="owner", customer={"monthly_cap_cents": 100_000})
    return {
        "admin": {"authorization": f"Bearer {token}"},
        "customer": {"authorization": f"Bearer {key.secret}", "x-api-key": key.secret},
        "nobody": {},
    }


def _operations(server: str) -> list[Any]:
    document = httpx.get(f"{server}/.netlify/functions/openapi", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("who", ["admin", "customer", "nobody"])
def test_schemathesis_finds_no_5xx_and_no_answer_outside_the_document(server, credentials, who) -> None:
    headers = credentials[who]
    failures: list[str] = []
    for operation in _operations(server):
        fuzz_operation(operation, server, headers, who, failures)
    assert not failures, "\n\n".join(failures[:10])


def fuzz_operation(
    operation: Any, server: str, headers: dict[str, str], who: str, failures: list[str]
) -> None:
    """Up to EXAMPLES generated requests for one operation; failures collected, not raised."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not os.environ.get("KAIXU_FUZZ_RANDOM"),  # the suite: the same examples each run
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis_given(case=operation.as_strategy())
    def fuzz(case: Any) -> None:
        response = case.call(base_url=server, headers=headers, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as failure:
            failures.append(f"{operation.label} [{who}] {response.status_code}: {failure}"[:600])

    fuzz()


def test_a_nul_character_anywhere_is_a_400_and_writes_nothing(server, credentials, db) -> None:
    """Found by the fuzzer: PostgreSQL text cannot hold U+0000, and it was a 500."""
    customer = credentials["customer"]
    status = httpx.get(f"{server}/.netlify/functions/kaixupush-status?push_id=a%00b", headers=customer)
    assert status.status_code == 400 and status.json()["code"] == "INVALID_INPUT"
    before = db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"]
    created = httpx.post(
        f"{server}/.netlify/functions/admin-customers",
        json={"email": "nul\u0000@example.com"},
        headers=credentials["admin"],
    )
    assert created.status_code == 400 and created.json()["request_id"]
    assert db.execute("SELECT count(*) AS n FROM customers").fetchone()["n"] == before
