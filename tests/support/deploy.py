"""What the deploy tests share: Lambda event payloads as AWS sends them, the settings a built
function runs with here, and the SAM CLI in a virtualenv of its own."""

from __future__ import annotations

import base64
import hashlib
import json
import platform
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared import config
from tests.support.browser import ADMIN_PASSWORD
from tests.support.fakes.upstreams import ENV_VARS, FakeUpstreams

SAM_REQUIREMENTS = config.PROJECT_ROOT / "requirements-deploy.txt"
TOOLS = config.PROJECT_ROOT / ".venv-tools"
ARCH = {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def http_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    cookies: list[str] | None = None,
    function_url: bool = False,
) -> dict[str, Any]:
    """An HTTP API (payload 2.0, ``$default`` stage) or Function URL event; bodies arrive
    base64-encoded, as API Gateway sends anything it does not know to be text."""
    domain = (
        "abcdefghij.lambda-url.us-east-1.on.aws"
        if function_url
        else "a1b2c3.execute-api.us-east-1.amazonaws.com"
    )
    route = "$default" if function_url else f"ANY {path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            "host": domain,
            "user-agent": "deploy-test",
            "x-forwarded-proto": "https",
            "x-forwarded-for": "203.0.113.9",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split(".")[0],
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "deploy-test",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": body is not None,
    }
    if query:
        event["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&"))
    if body is not None:
        event["body"] = base64.b64encode(body).decode()
    if cookies:
        event["cookies"] = cookies
    return event


def json_event(method: str, path: str, payload: Any, **options: Any) -> dict[str, Any]:
    headers = {"content-type": "application/json", **options.pop("headers", {})}
    return http_event(method, path, headers=headers, body=json.dumps(payload).encode(), **options)


def scheduled_event() -> dict[str, Any]:
    """What an EventBridge ``rate(...)`` rule sends."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/kaixu-MaintenanceSchedule"],
        "detail": {},
    }


def custom_resource_event(request_type: str, response_url: str, checksum: str) -> dict[str, Any]:
    """What CloudFormation sends a custom resource's Lambda."""
    event = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:kaixu-MigrationsFunction",
        "ResponseURL": response_url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/kaixu/1",
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": "Migrations",
        "ResourceType": "Custom::Migrations",
        "ResourceProperties": {"ServiceToken": "arn", "Checksum": checksum},
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = "kaixu-migrations"
    return event


def response_of(invocation_response: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    """Status, headers and decoded body of an HTTP API response payload."""
    raw = invocation_response.get("body", "")
    if invocation_response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    headers = invocation_response.get("headers") or {}
    body: Any = raw
    if headers.get("content-type", "").startswith("application/json") and raw:
        body = json.loads(raw)
    return invocation_response["statusCode"], headers, body


ADMIN_TOKEN_SECRET = "a-token-secret-for-the-deploy-tests"


def function_settings(database_url: str, upstreams: FakeUpstreams, **extra: str) -> dict[str, str]:
    """The settings a deployed function gets from the template, pointed at this test run."""
    settings = {
        "DATABASE_URL": database_url,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "ADMIN_TOKEN_SECRET": ADMIN_TOKEN_SECRET,
        "KEY_PEPPER": config.settings().key_pepper,
        "DB_POOL_MAX": "2",
        "DB_TIMEOUT_S": "3",
        "KAIXU_BUILD": "lambda-test",
    }
    for provider, (url_var, key_var) in ENV_VARS.items():
        settings[url_var] = upstreams.base_url(provider)
        settings[key_var] = upstreams.keys[provider]
    return {**settings, **extra}


def sam_command() -> Path:
    """The ``sam`` command of requirements-deploy.txt. Its pins (pydantic, boto3) clash with the
    project's, so it lives in a virtualenv of its own, made on first use and kept."""
    pins = hashlib.sha256(SAM_REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = TOOLS / f"sam-{pins}"
    installed = venv / ".installed"
    if not installed.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        install = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(SAM_REQUIREMENTS)],
            capture_output=True,
            text=True,
        )
        assert install.returncode == 0, f"installing the SAM CLI failed:\n{install.stderr[-3000:]}"
        installed.touch()
    return venv / "bin" / "sam"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
