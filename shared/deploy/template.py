"""The AWS SAM template, generated from ``functions/``: ``python -m shared.deploy template``.

One Lambda per module in ``functions/``, each behind one HTTP API route
``ANY /.netlify/functions/<name>`` (so every URL works unchanged on the API origin), all
sharing one dependency layer. Beside them:

- the streaming function: the whole app under uvicorn, run by the AWS Lambda Web Adapter
  behind a Function URL in ``RESPONSE_STREAM`` mode, for what API Gateway and Mangum would
  buffer or cut (``gateway-stream``, the monitor's live tail, CSV exports);
- EventBridge schedules for the functions that declare ``scheduled=True``;
- the migrations custom resource, which applies ``sql/`` once per release, before any new
  function serves (every function depends on it);
- log groups with a retention, and alarms when ``AlarmEmail`` is set.

Secrets never appear here: each is a dynamic reference into one Secrets Manager secret,
resolved by CloudFormation at deploy time. Timeouts hold together: an API function stops at
``ApiTimeoutSeconds`` (under HTTP API's 30 s), and every gateway call is cut two seconds
before its invocation's deadline so that it is settled rather than killed (``Call.deadline``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared import config, migrate

TEMPLATE_PATH = config.PROJECT_ROOT / "template.yaml"
CODE_URI = "build/lambda/code"
LAYER_URI = "build/lambda/layer"
ROUTE_PREFIX = "/.netlify/functions/"
WEB_ADAPTER_ACCOUNT = "753240598075"  # AWS's own account that publishes the adapter's layers
WEB_ADAPTER_LAYER_VERSION = 28  # Lambda Web Adapter 1.0.1
STREAM_PORT = 8080
ROLE = {"Fn::GetAtt": ["FunctionRole", "Arn"]}  # one role for every function

# The keys of the Secrets Manager secret, each read into the variable of the same name.
# Keys you do not use stay in the secret as empty strings (a missing key fails the deploy).
SECRET_KEYS = (
    "DATABASE_URL",
    "KEY_PEPPER",
    "ADMIN_PASSWORD",
    "ADMIN_TOKEN_SECRET",
    "KAIXU_ENCRYPTION_KEYS",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "NETLIFY_AUTH_TOKEN",
    "ALERT_WEBHOOK_URL",
    "ALERT_WEBHOOK_SECRET",
    "CLIENT_ERROR_TOKEN",
    "KAIXU_MAINTENANCE_SECRET",
    "KAIXUPUSH_WORKER_SECRET",
)

# Settings every function gets that are not secrets. Values keep each function inside its
# timeout: Netlify calls, inline upload jobs and deploy preparation end well before 29 s.
SETTINGS: dict[str, Any] = {
    "KAIXU_ENV": "production",
    "KAIXU_BUILD": {"Ref": "BuildLabel"},
    "ALLOWED_ORIGINS": {"Ref": "SiteOrigin"},
    "PUBLIC_APP_ORIGIN": {"Ref": "SiteOrigin"},
    "CLIENT_IP_HEADER": {"Ref": "ClientIpHeader"},
    "DB_POOL_MAX": {"Ref": "DbPoolMax"},
    "DB_TIMEOUT_S": "3",
    "UPSTREAM_TIMEOUT_S": {"Ref": "UpstreamTimeoutSeconds"},
    "KAIXUPUSH_S3_BUCKET": {"Ref": "StagingBucket"},
    "NETLIFY_TIMEOUT_S": "20",
    "NETLIFY_RETRY_MAX_WAIT_S": "5",
    "KAIXUPUSH_INLINE_S": "15",
    "KAIXUPUSH_PREPARE_TIMEOUT_S": "20",
}


@dataclass(frozen=True)
class Schedule:
    """How a scheduled function runs: its EventBridge expression, timeout and own settings."""

    expression: Any
    timeout_s: int
    settings: dict[str, str] = field(default_factory=dict)
    description: str = ""


# Every function declared ``scheduled=True`` needs an entry here.
SCHEDULES = {
    "maintenance": Schedule(
        "rate(1 minute)",
        timeout_s=60,
        description="Releases reservations of calls that never settled, retries alerts, "
        "runs due KaixuPush jobs and prunes throttle and idempotency rows.",
    ),
    "kaixupush-worker": Schedule(
        {"Ref": "WorkerSchedule"},
        timeout_s=300,
        settings={"KAIXUPUSH_WORKER_BUDGET_S": "240"},
        description="Long KaixuPush upload jobs, with a bigger time budget than maintenance's.",
    ),
}


def _parameters() -> dict[str, Any]:
    def text(description: str, default: str | None = None, **extra: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {"Type": "String", "Description": description, **extra}
        if default is not None:
            spec["Default"] = default
        return spec

    def number(description: str, default: int, low: int, high: int) -> dict[str, Any]:
        return {
            "Type": "Number",
            "Description": description,
            "Default": default,
            "MinValue": low,
            "MaxValue": high,
        }

    return {
        "SecretArn": text(
            "ARN of the Secrets Manager secret holding the gateway's secrets as JSON keys "
            "(python -m shared.deploy secret prints a skeleton).",
            AllowedPattern="^arn:aws[a-z-]*:secretsmanager:.+$",
            ConstraintDescription="SecretArn is required: the ARN of the gateway's secret.",
        ),
        "SiteOrigin": text(
            "Origin of the admin site on Netlify, e.g. https://kaixu-admin.netlify.app: the one "
            "browser origin allowed by CORS, and where Stripe Checkout returns.",
            AllowedPattern="^https://[^/]+$",
            ConstraintDescription="SiteOrigin is required: https://host, no path.",
        ),
        "Architecture": text(
            "CPU architecture of every function; build the artifact for the same one "
            "(python -m shared.deploy build --arch).",
            "x86_64",
            AllowedValues=["x86_64", "arm64"],
        ),
        "WebAdapterLayerArn": text(
            "ARN of the AWS Lambda Web Adapter layer for the streaming function; empty uses "
            f"AWS's published layer version {WEB_ADAPTER_LAYER_VERSION} for this region and "
            "architecture.",
            "",
        ),
        "BuildLabel": text("Build label reported by health (KAIXU_BUILD).", "release"),
        "MemorySize": number("Memory of each function, in MB (CPU grows with it).", 1024, 256, 10240),
        "ApiTimeoutSeconds": number(
            "Timeout of the functions behind the HTTP API (whose own limit is 30 s).", 29, 10, 30
        ),
        "StreamTimeoutSeconds": number(
            "Timeout of the streaming function: the longest stream, tail or export.", 900, 60, 900
        ),
        "UpstreamTimeoutSeconds": number(
            "Longest silence from a provider before a call fails (UPSTREAM_TIMEOUT_S); every call "
            "is also cut 2 s before its function's deadline.",
            120,
            10,
            900,
        ),
        "DbPoolMax": number(
            "Database connections per function instance (one request at a time each).", 2, 1, 10
        ),
        "GatewayConcurrency": number(
            "Reserved concurrency of gateway-chat, gateway-stream and the streaming function "
            "each; -1 reserves none.",
            -1,
            -1,
            10000,
        ),
        "FunctionConcurrency": number(
            "Reserved concurrency of every other function; -1 reserves none.", -1, -1, 10000
        ),
        "ClientIpHeader": text(
            "Header carrying the client address set by your edge (CLIENT_IP_HEADER); empty "
            "uses API Gateway's source IP.",
            "",
        ),
        "StagingBucket": text(
            "S3 bucket for KaixuPush upload parts (KAIXUPUSH_S3_BUCKET); empty stages them in PostgreSQL.",
            "",
        ),
        "WorkerSchedule": text("How often kaixupush-worker runs.", "rate(5 minutes)"),
        "LogRetentionDays": {
            "Type": "Number",
            "Description": "Days the functions' logs are kept.",
            "Default": 30,
            "AllowedValues": [1, 3, 5, 7, 14, 30, 60, 90, 180, 365, 731, 1827, 3653],
        },
        "AlarmEmail": text(
            "Where alarms (API 5xx, throttles, failed scheduled runs) are emailed; empty creates no alarms.",
            "",
        ),
    }


def _conditions() -> dict[str, Any]:
    def is_set(name: str) -> dict[str, Any]:
        return {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}

    def reserves(name: str) -> dict[str, Any]:
        return {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, -1]}]}

    return {
        "IsArm64": {"Fn::Equals": [{"Ref": "Architecture"}, "arm64"]},
        "HasWebAdapterLayerArn": is_set("WebAdapterLayerArn"),
        "HasStagingBucket": is_set("StagingBucket"),
        "HasAlarmEmail": is_set("AlarmEmail"),
        "ReservesGateway": reserves("GatewayConcurrency"),
        "ReservesFunctions": reserves("FunctionConcurrency"),
    }


def _environment() -> dict[str, Any]:
    secrets = {
        key: {"Fn::Sub": "{{resolve:secretsmanager:${SecretArn}:SecretString:" + key + "}}"}
        for key in SECRET_KEYS
    }
    return {"Variables": {**SETTINGS, **secrets}}


def logical_id(name: str) -> str:
    """``admin-kaixupush-deploys`` → ``AdminKaixupushDeploys``."""
    return "".join(part.capitalize() for part in name.split("-"))


def _log_group(resources: dict[str, Any], prefix: str, name: str) -> dict[str, Any]:
    """A log group with the retention, for a function's ``LoggingConfig``."""
    resources[f"{prefix}Logs"] = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": {"Fn::Sub": "/kaixu/${AWS::StackName}/" + name},
            "RetentionInDays": {"Ref": "LogRetentionDays"},
        },
    }
    return {"LogGroup": {"Ref": f"{prefix}Logs"}}


def _reserved(condition: str, parameter: str) -> dict[str, Any]:
    return {"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]}


@dataclass(frozen=True)
class Endpoint:
    """What the template needs of a function: whether it runs on a schedule, and the paths
    it serves besides its own (below it, and on the API origin: ``/v1/models``)."""

    scheduled: bool = False
    paths: tuple[str, ...] = ()


def _routes(name: str, paths: tuple[str, ...]) -> dict[str, Any]:
    routes = [ROUTE_PREFIX + name]
    if paths:
        routes += [ROUTE_PREFIX + name + "/{proxy+}", *paths]
    return {
        f"Api{i}" if i else "Api": {
            "Type": "HttpApi",
            "Properties": {"ApiId": {"Ref": "HttpApi"}, "Path": route, "Method": "ANY"},
        }
        for i, route in enumerate(routes)
    }


def _api_function(resources: dict[str, Any], name: str, endpoint: Endpoint) -> None:
    scheduled = endpoint.scheduled
    prefix = logical_id(name)
    module = name.replace("-", "_")
    gateway = name in ("gateway-chat", "gateway-stream")
    properties: dict[str, Any] = {
        "Handler": f"functions/{module}.handler",
        "Role": ROLE,
        "LoggingConfig": _log_group(resources, prefix, name),
        "ReservedConcurrentExecutions": _reserved(
            "ReservesGateway" if gateway else "ReservesFunctions",
            "GatewayConcurrency" if gateway else "FunctionConcurrency",
        ),
        "Events": _routes(name, endpoint.paths),
    }
    if scheduled:
        if name not in SCHEDULES:
            raise SystemExit(f"deploy: {name} is scheduled; say how often in SCHEDULES ({__name__})")
        schedule = SCHEDULES[name]
        properties["Description"] = schedule.description
        properties["Timeout"] = schedule.timeout_s
        properties["Events"]["Schedule"] = {
            "Type": "Schedule",
            "Properties": {"Schedule": schedule.expression, "Description": f"Runs {name}."},
        }
        if schedule.settings:
            properties["Environment"] = {"Variables": dict(schedule.settings)}
    resources[f"{prefix}Function"] = {
        "Type": "AWS::Serverless::Function",
        "DependsOn": "Migrations",
        "Properties": properties,
    }


def _stream_function(resources: dict[str, Any]) -> None:
    resources["StreamFunction"] = {
        "Type": "AWS::Serverless::Function",
        "DependsOn": "Migrations",
        "Properties": {
            "Description": "Every function under uvicorn, streamed through a Function URL "
            "(gateway-stream, the monitor's live tail, CSV exports).",
            "Handler": "run.sh",
            "Role": ROLE,
            "Timeout": {"Ref": "StreamTimeoutSeconds"},
            "Layers": [  # added to the dependencies layer every function has (Globals)
                {
                    "Fn::If": [
                        "HasWebAdapterLayerArn",
                        {"Ref": "WebAdapterLayerArn"},
                        {
                            "Fn::Sub": [
                                "arn:${AWS::Partition}:lambda:${AWS::Region}:"
                                f"{WEB_ADAPTER_ACCOUNT}:layer:${{Name}}:{WEB_ADAPTER_LAYER_VERSION}",
                                {
                                    "Name": {
                                        "Fn::If": [
                                            "IsArm64",
                                            "LambdaAdapterLayerArm64",
                                            "LambdaAdapterLayerX86",
                                        ]
                                    }
                                },
                            ]
                        },
                    ]
                },
            ],
            "LoggingConfig": _log_group(resources, "Stream", "stream"),
            "ReservedConcurrentExecutions": _reserved("ReservesGateway", "GatewayConcurrency"),
            "Environment": {
                "Variables": {
                    "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                    "AWS_LWA_INVOKE_MODE": "response_stream",
                    "AWS_LWA_PORT": str(STREAM_PORT),
                    "AWS_LWA_READINESS_CHECK_PROTOCOL": "tcp",
                }
            },
            "FunctionUrlConfig": {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"},
        },
    }


def migrations_checksum(directory: Path = migrate.SQL_DIR) -> str:
    """Changes exactly when ``sql/`` (functions included) does, so the migrations resource
    runs on such releases."""
    digest = hashlib.sha256()
    for migration in migrate.discover(directory) + migrate.discover_functions(directory / "functions"):
        digest.update(f"{migration.name}:{migration.checksum}\n".encode())
    return digest.hexdigest()


def _release(resources: dict[str, Any]) -> None:
    resources["MigrationsFunction"] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {
            "Description": "Applies sql/ migrations once per release (the Migrations resource).",
            "Handler": "shared/deploy/release.handler",
            "Role": ROLE,
            "Timeout": 900,
            "LoggingConfig": _log_group(resources, "Migrations", "migrations"),
        },
    }
    resources["Migrations"] = {
        "Type": "Custom::Migrations",
        "Properties": {
            "ServiceToken": {"Fn::GetAtt": ["MigrationsFunction", "Arn"]},
            "Checksum": migrations_checksum(),
        },
    }


def _shared(resources: dict[str, Any]) -> None:
    resources["HttpApi"] = {
        "Type": "AWS::Serverless::HttpApi",
        "Properties": {"FailOnWarnings": True},
    }
    resources["DependenciesLayer"] = {
        "Type": "AWS::Serverless::LayerVersion",
        "Properties": {
            "Description": "The runtime dependencies (requirements-runtime.txt).",
            "ContentUri": LAYER_URI,
            "CompatibleRuntimes": ["python3.11"],
            "CompatibleArchitectures": [{"Ref": "Architecture"}],
            "RetentionPolicy": "Delete",
        },
    }
    resources["FunctionRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            },
            "ManagedPolicyArns": [
                {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
            ],
            "Policies": [
                {
                    "Fn::If": [
                        "HasStagingBucket",
                        {
                            "PolicyName": "kaixupush-staging",
                            "PolicyDocument": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                                        "Resource": {
                                            "Fn::Sub": "arn:${AWS::Partition}:s3:::${StagingBucket}/*"
                                        },
                                    },
                                    {
                                        "Effect": "Allow",
                                        "Action": "s3:ListBucket",
                                        "Resource": {
                                            "Fn::Sub": "arn:${AWS::Partition}:s3:::${StagingBucket}"
                                        },
                                    },
                                ],
                            },
                        },
                        {"Ref": "AWS::NoValue"},
                    ]
                }
            ],
        },
    }


def _alarms(resources: dict[str, Any]) -> None:
    def alarm(
        description: str, namespace: str, metric: str, dimensions: list[Any], threshold: int
    ) -> dict[str, Any]:
        return {
            "Type": "AWS::CloudWatch::Alarm",
            "Condition": "HasAlarmEmail",
            "Properties": {
                "AlarmDescription": description,
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": dimensions,
                "Statistic": "Sum",
                "Period": 300,
                "EvaluationPeriods": 1,
                "Threshold": threshold,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                "TreatMissingData": "notBreaching",
                "AlarmActions": [{"Ref": "AlarmTopic"}],
            },
        }

    resources["AlarmTopic"] = {
        "Type": "AWS::SNS::Topic",
        "Condition": "HasAlarmEmail",
        "Properties": {"Subscription": [{"Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}}]},
    }
    resources["Api5xxAlarm"] = alarm(
        "The API answered 5xx at least 5 times in 5 minutes.",
        "AWS/ApiGateway",
        "5xx",
        [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}, {"Name": "Stage", "Value": "$default"}],
        5,
    )
    resources["ThrottlesAlarm"] = alarm(
        "Lambda throttled invocations in this account (concurrency exhausted).",
        "AWS/Lambda",
        "Throttles",
        [],
        1,
    )
    for name in SCHEDULES:
        resources[f"{logical_id(name)}ErrorsAlarm"] = alarm(
            f"A scheduled run of {name} failed.",
            "AWS/Lambda",
            "Errors",
            [{"Name": "FunctionName", "Value": {"Ref": f"{logical_id(name)}Function"}}],
            1,
        )


def _outputs() -> dict[str, Any]:
    api = "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    return {
        "ApiUrl": {
            "Description": "The API origin: every function at /.netlify/functions/<name> (API_ORIGIN).",
            "Value": {"Fn::Sub": api},
        },
        "StreamUrl": {
            "Description": "The streaming origin: streams, tails and exports (STREAM_ORIGIN).",
            "Value": {"Fn::GetAtt": ["StreamFunctionUrl", "FunctionUrl"]},
        },
        "NetlifyBuildEnvironment": {
            "Description": "Set these in the Netlify site's build environment.",
            "Value": {"Fn::Sub": f"API_ORIGIN={api} STREAM_ORIGIN=${{StreamFunctionUrl.FunctionUrl}}"},
        },
    }


def build(functions: dict[str, Endpoint]) -> dict[str, Any]:
    """The template for ``functions``: endpoint name → what it needs."""
    resources: dict[str, Any] = {}
    _shared(resources)
    _release(resources)
    for name, endpoint in sorted(functions.items()):
        _api_function(resources, name, endpoint)
    _stream_function(resources)
    _alarms(resources)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "Kaixu Gateway: generated by `python -m shared.deploy template` from "
        "functions/; edit the generator, never this file.",
        "Parameters": _parameters(),
        "Conditions": _conditions(),
        "Globals": {
            "Function": {
                "Runtime": "python3.11",
                "CodeUri": CODE_URI,
                "Architectures": [{"Ref": "Architecture"}],
                "MemorySize": {"Ref": "MemorySize"},
                "Timeout": {"Ref": "ApiTimeoutSeconds"},
                "Layers": [{"Ref": "DependenciesLayer"}],
                "Environment": _environment(),
            }
        },
        "Resources": resources,
        "Outputs": _outputs(),
    }


def discover() -> dict[str, Endpoint]:
    """Every endpoint in ``functions/``, with its schedule and extra paths."""
    from shared.host.asgi import discover_functions

    return {name: Endpoint(app.scheduled, app.paths) for name, app in discover_functions().items()}


def render(template: dict[str, Any]) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # CloudFormation reads no YAML anchors
            return True

    header = "# Generated by `python -m shared.deploy template` from functions/: do not edit.\n"
    return header + yaml.dump(template, Dumper=Dumper, sort_keys=False, width=100, allow_unicode=True)


def write(path: Path = TEMPLATE_PATH) -> Path:
    path.write_text(render(build(discover())))
    return path
