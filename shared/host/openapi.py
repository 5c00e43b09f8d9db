"""The OpenAPI 3.1 document of every function: ``python -m shared.host.openapi`` writes
``openapi.json``; the ``openapi`` function serves it.

It is built from the functions themselves: each one's name, methods, credential (its auth
hook), description (its module's docstring) and the paths it serves; the gateway's request
body from its JSON Schema (shared/gateway/request.py). What else the code checks by hand
(query parameters, the bodies of the admin API) is listed here, next to the rule that a
function without a description has no place in the document (a test holds it). Every error
is the gateway's envelope, but for the OpenAI- and Anthropic-compatible functions, which
answer in their APIs' own shapes.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from shared import config
from shared.gateway import request as chat_request
from shared.http import FUNCTIONS_PREFIX, ByPath, Ctx, FunctionApp

INTEGER = {"type": "integer"}
STRING = {"type": "string"}
MONTH = {"type": "string", "pattern": r"^\d{4}-(0[1-9]|1[0-2])$"}
PAGE = {"limit": INTEGER, "cursor": STRING}
OBJECT = {"type": "object"}
# Query parameters each function reads (they are parsed by hand: shared.params).
QUERY: dict[str, dict[str, dict[str, Any]]] = {
    "admin-audit": {**PAGE, "action": STRING, "actor": STRING, "target": STRING, "since": STRING},
    "admin-customers": {**PAGE, "id": INTEGER, "q": STRING},
    "admin-devices": {**PAGE, "customer_id": INTEGER, "api_key_id": INTEGER, "id": STRING, "action": STRING},
    "admin-export": {"type": STRING, "customer_id": INTEGER, "api_key_id": INTEGER, "month": MONTH},
    "admin-invoices": {
        **PAGE,
        "id": INTEGER,
        "customer_id": INTEGER,
        "month": MONTH,
        "preview": STRING,
        "status": {"type": "string", "enum": ["draft", "issued", "paid", "void"]},
        "format": {"type": "string", "enum": ["json", "html"]},
    },
    "admin-keys": {**PAGE, "id": INTEGER, "customer_id": INTEGER, "action": STRING},
    "admin-kaixupush-deploys": {**PAGE, "customer_id": INTEGER, "project_id": STRING, "state": STRING},
    "admin-kaixupush-invoices": {
        **PAGE,
        "customer_id": INTEGER,
        "month": MONTH,
        "action": STRING,
        "view": {"type": "string", "enum": ["billing"]},
    },
    "admin-kaixupush-jobs": {
        **PAGE,
        "id": INTEGER,
        "customer_id": INTEGER,
        "state": STRING,
        "action": STRING,
    },
    "admin-kaixupush-projects": {**PAGE, "id": INTEGER, "customer_id": INTEGER, "project_id": STRING},
    "admin-monitor": {
        **PAGE,
        "id": INTEGER,
        "tail": STRING,
        "after_id": INTEGER,
        "level": {"type": "string", "enum": ["info", "warn", "error"]},
        "status": STRING,
        "function": STRING,
        "app": STRING,
        "request_id": STRING,
        "kind": STRING,
        "code": STRING,
        "since": STRING,
        "view": {"type": "string", "enum": ["rates"]},
        "minutes": INTEGER,
        "action": STRING,
    },
    "admin-models": {"id": INTEGER, "provider": STRING, "include_retired": STRING},
    "admin-netlify-token": {"customer_id": INTEGER},
    "admin-overview": {"month": MONTH, "format": {"type": "string", "enum": ["json", "csv"]}},
    "admin-plans": {"id": INTEGER},
    "admin-sell-prices": {"plan_id": INTEGER, "customer_id": INTEGER},
    "admin-topups": {**PAGE, "id": INTEGER, "customer_id": INTEGER, "month": MONTH},
    "admin-usage": {
        **PAGE,
        "customer_id": INTEGER,
        "month": MONTH,
        "api_key_id": INTEGER,
        "provider": STRING,
        "model": STRING,
        "view": STRING,
    },
    "customer-devices": {**PAGE, "api_key_id": INTEGER, "id": STRING, "action": STRING},
    "customer-invoices": {
        **PAGE,
        "id": INTEGER,
        "month": MONTH,
        "format": {"type": "string", "enum": ["json", "html"]},
    },
    "customer-kaixupush": {
        **PAGE,
        "view": {"type": "string", "enum": ["deploys", "charges"]},
        "project_id": STRING,
        "month": MONTH,
    },
    "customer-keys": {**PAGE, "id": INTEGER, "action": {"type": "string", "enum": ["rotate", "revoke"]}},
    "customer-summary": {"month": MONTH},
    "customer-webhook": {"limit": INTEGER, "action": {"type": "string", "enum": ["test"]}},
    "customer-usage": {
        **PAGE,
        "month": MONTH,
        "api_key_id": INTEGER,
        "provider": STRING,
        "model": STRING,
        "format": {"type": "string", "enum": ["json", "csv"]},
    },
    "kaixupush-billing": {"month": MONTH},
    "kaixupush-file-status": {"push_id": STRING},
    "kaixupush-status": {"push_id": STRING},
    "kaixupush-upload": {"push_id": STRING, "path": STRING},
    "kaixupush-upload-chunk": {"push_id": STRING, "path": STRING, "part": INTEGER, "parts": INTEGER},
}
# Bodies that are not JSON objects.
RAW_BODIES = {"kaixupush-upload", "kaixupush-upload-chunk"}
# 2xx answers that are not JSON.
STREAMS = {
    "gateway-stream": ["text/event-stream"],
    "admin-monitor": ["application/json", "text/event-stream"],
}
DOWNLOADS = {
    "admin-export": "text/csv",
    "admin-invoices": "text/html",
    "admin-overview": "text/csv",
    "customer-invoices": "text/html",
    "customer-usage": "text/csv",
    "kaixupush-client": "text/x-python",
}
ERROR_SCHEMAS = {"openai": "OpenAIError", "anthropic": "AnthropicError"}


def _components() -> dict[str, Any]:
    schemas: dict[str, Any] = {"ChatRequest": chat_request.SCHEMA}
    schemas["Error"] = {
        "type": "object",
        "required": ["error", "code", "request_id"],
        "properties": {"error": STRING, "code": STRING, "request_id": {"type": ["string", "null"]}},
    }
    schemas["OpenAIError"] = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["message", "type", "code"]}},
    }
    schemas["AnthropicError"] = {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {"type": "object", "required": ["type", "message"]},
        },
    }
    return {
        "schemas": schemas,
        "securitySchemes": {
            "kaixuKey": {"type": "http", "scheme": "bearer", "description": "A Kaixu key, kx_live_..."},
            "anthropicKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            "adminToken": {"type": "http", "scheme": "bearer", "description": "A token from admin-login."},
            "customerToken": {
                "type": "http",
                "scheme": "bearer",
                "description": "A customer session token from customer-login.",
            },
            "secretHeader": {"type": "apiKey", "in": "header", "name": "x-kaixu-maintenance-secret"},
        },
    }


def _security(app: FunctionApp) -> list[dict[str, list[str]]]:
    hook = getattr(app.auth, "__qualname__", "") if app.auth else ""
    if app.name in ("gateway-chat", "gateway-stream", "openai"):
        return [{"kaixuKey": []}]
    if app.name == "anthropic":
        return [{"anthropicKey": []}, {"kaixuKey": []}]
    if "require_admin" in hook:
        return [{"adminToken": []}]
    if "require_customer" in hook:
        return [{"customerToken": []}]
    if "require_role" in hook:
        return [{"kaixuKey": []}]
    if hook:
        return [{"secretHeader": []}]
    return []


def _request_body(app: FunctionApp) -> dict[str, Any]:
    if app.name in ("gateway-chat", "gateway-stream"):
        schema: dict[str, Any] = {"$ref": "#/components/schemas/ChatRequest"}
    else:
        schema = OBJECT
    if app.name in RAW_BODIES:
        return {"required": True, "content": {"application/octet-stream": {"schema": {"type": "string"}}}}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _responses(app: FunctionApp, method: str) -> dict[str, Any]:
    error = {"$ref": f"#/components/schemas/{ERROR_SCHEMAS.get(app.name, 'Error')}"}
    if app.name in STREAMS and method in ("GET", "POST"):
        ok: dict[str, Any] = {media: {"schema": {}} for media in STREAMS[app.name]}
    elif app.name in DOWNLOADS:
        ok = {DOWNLOADS[app.name]: {"schema": STRING}, "application/json": {"schema": OBJECT}}
    else:
        ok = {"application/json": {"schema": {"type": ["object", "array"]}}}
    return {
        "2XX": {"description": "Done.", "content": ok},
        "4XX": {
            "description": "Refused: the body says why.",
            "content": {"application/json": {"schema": error}},
        },
        "5XX": {
            "description": "Not configured here, a provider failed, or the database is unavailable.",
            "content": {"application/json": {"schema": error}},
        },
    }


def _operation(app: FunctionApp, method: str, description: str, path: str) -> dict[str, Any]:
    handler = app.handlers[method]
    if isinstance(handler, ByPath):
        handler = handler.routes[path]
    summary = (handler.__doc__ or description).strip().splitlines()[0]
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}_{(app.name + path).replace('-', '_').replace('/', '_')}",
        "summary": summary,
        "description": description,
        "security": _security(app),
        "responses": _responses(app, method),
    }
    query = QUERY.get(app.name, {})
    if query:
        operation["parameters"] = [{"name": n, "in": "query", "schema": s} for n, s in sorted(query.items())]
    if method in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = _request_body(app)
    return operation


def _serves(handler: Any, path: str) -> bool:
    return not isinstance(handler, ByPath) or path in handler.routes


def description_of(app: FunctionApp) -> str:
    module = sys.modules.get(f"functions.{app.name.replace('-', '_')}")
    return (module.__doc__ or "").strip() if module else ""


def document(apps: dict[str, FunctionApp]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for name, app in sorted(apps.items()):
        description = description_of(app)
        if not description:
            raise ValueError(f"function {name} has no description: give its module a docstring")
        for path in app.paths or ("",):
            methods = [m for m in sorted(app.handlers) if _serves(app.handlers[m], path)]
            paths[f"{FUNCTIONS_PREFIX}{name}{path}"] = {
                m.lower(): _operation(app, m, description, path) for m in methods
            }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kaixu Gateway",
            "version": config.settings().build,
            "description": "Every function of the gateway: the gateway itself, its OpenAI- and "
            "Anthropic-compatible APIs, the admin API and KaixuPush.",
        },
        "paths": paths,
        "components": _components(),
    }


_served: dict[str, Any] = {}


async def serve(ctx: Ctx) -> dict[str, Any]:
    """GET openapi: the document, built once per process."""
    if not _served:
        from shared.host.asgi import discover_functions

        _served.update(document(discover_functions()))
    return _served


def main() -> int:
    from shared.host.asgi import discover_functions

    out = config.PROJECT_ROOT / "openapi.json"
    out.write_text(json.dumps(document(discover_functions()), indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
