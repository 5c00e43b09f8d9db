"""The deploy client as a customer runs it: the file the gateway publishes, alone in an empty
folder beside the customer's site, run by a fresh interpreter that cannot see this project
(``-I -S``: no site-packages, neither the current folder nor any PYTHON* variable), against
the test server and the Netlify fake, its output a pipe as in CI."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.kaixupush import client as kaixupush_client
from shared.kaixupush import publish
from tests.support import kaixupush as kaixupush_support
from tests.support.fakes.server import free_port
from tests.support.kaixupush import PROJECT, PushEnv, random_bytes, sha1

netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture

CLIENT = Path(kaixupush_client.__file__)
PART_BYTES = 128 * 1024
SITE = {
    "index.html": b"<h1>home</h1>",
    "copy.html": b"<h1>home</h1>",  # the same digest as index.html: sent once
    "about/index.html": b"<h1>about</h1>",
    "assets/app.js": b"go();" * 2000,
    "media/clip.bin": random_bytes(3 * PART_BYTES - 100, seed=22),  # sent in three parts
}


@dataclass
class Run:
    code: int
    out: str
    err: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.out)


class Customer:
    """A customer's CI workspace: ``kaixupush.py`` as downloaded, and the built site in ``dist``."""

    def __init__(self, root: Path, server: str, key: str) -> None:
        self.root, self.server, self.key = root, server, key
        self.site = root / "dist"

    def write(self, files: dict[str, bytes]) -> None:
        for name, data in files.items():
            (self.site / name).parent.mkdir(parents=True, exist_ok=True)
            (self.site / name).write_bytes(data)

    def run(self, *args: str, **env: str) -> Run:
        environment = {"KAIXU_KEY": self.key, "KAIXU_BASE_URL": self.server, **env}
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-I", "-S", "kaixupush.py", *args],
            cwd=self.root,
            env=environment,
            capture_output=True,  # pipes, not a terminal: what a CI runner gives
            timeout=120,
        )
        seconds = time.monotonic() - started
        return Run(done.returncode, done.stdout.decode(), done.stderr.decode(), seconds)

    def deploy(self, *args: str, **env: str) -> Run:
        return self.run("deploy", "dist", "--project", PROJECT, *args, **env)


@pytest.fixture
def customer(tmp_path: Path, push_env: PushEnv, server: str, configure: Callable[..., Any]) -> Customer:
    configure(KAIXUPUSH_PART_BYTES=str(PART_BYTES))
    root = tmp_path / "workspace"
    root.mkdir()
    shutil.copyfile(CLIENT, root / "kaixupush.py")
    made = Customer(root, server, push_env.key.secret)
    made.write(SITE)
    return made


def _pushes(push_env: PushEnv) -> int:
    return int(push_env.db.execute("SELECT count(*) AS n FROM push_pushes").fetchone()["n"])


# ----------------------------------------------------------------------------- publishing


def test_the_gateway_publishes_the_package_file(server: str) -> None:
    for url in (f"{server}/kaixupush.py", f"{server}/.netlify/functions/kaixupush-client/kaixupush.py"):
        served = httpx.get(url, timeout=10)
        assert served.status_code == 200, url
        assert served.content == CLIENT.read_bytes()
        assert served.headers["content-type"] == "text/x-python; charset=utf-8"
        assert served.headers["cache-control"].startswith("public, max-age=")
        assert served.headers["x-kaixupush-version"] == kaixupush_client.__version__
    again = httpx.get(f"{server}/kaixupush.py", headers={"if-none-match": served.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_the_client_needs_nothing_but_python_3_9_and_its_standard_library() -> None:
    source = CLIENT.read_text()
    ast.parse(source, feature_version=(3, 9))  # no syntax of a later Python
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= sys.stdlib_module_names | {"__future__"}, imported - sys.stdlib_module_names


# ----------------------------------------------------------------------------- deploying as a customer


def test_a_customer_deploys_with_the_file_alone_and_a_rerun_sends_nothing(
    customer: Customer, push_env: PushEnv
) -> None:
    run = customer.deploy()
    assert run.code == kaixupush_client.EXIT_OK, run.err
    assert run.out == "https://site-main.netlify.app\n"  # stdout: the URL, for scripts
    assert "\r" not in run.err and "[#" not in run.err  # no progress bar where there is no terminal
    lines = run.err.splitlines()
    assert lines[0].startswith(f"kaixupush {kaixupush_client.__version__}: deploy of dist")
    assert "scanned dist: 5 files" in run.err
    assert "Netlify needs 4 of 5 files" in run.err
    assert "uploaded 4 of 5 files" in run.err
    assert lines[-1].startswith("ready: https://site-main.netlify.app (deploy ")
    fake = push_env.netlify
    for data in SITE.values():
        assert fake.blobs[sha1(data)] == data  # byte-exact, the large one from its parts
    uploads = fake.count("upload")

    again = customer.deploy()
    assert again.code == 0 and again.out == run.out
    assert "Netlify needs 0 of 5 files" in again.err and fake.count("upload") == uploads


def test_json_prints_one_result_for_scripts(customer: Customer, push_env: PushEnv) -> None:
    run = customer.deploy("--json")
    assert run.code == 0, run.err
    result = run.json()
    deploy = next(iter(push_env.netlify.deploys.values()))
    assert result["ok"] is True and result["deploy_id"] == deploy.id
    assert result["url"] == "https://site-main.netlify.app" and result["state"] == "ready"
    assert result["files"] == 5 and result["files_uploaded"] == 4
    assert result["bytes"] == sum(len(data) for data in SITE.values())
    assert result["bytes_uploaded"] == result["bytes"] - len(SITE["copy.html"])

    failed = customer.deploy("--json", KAIXU_KEY="kx_live_" + "x" * 43)
    assert failed.code == kaixupush_client.EXIT_GATEWAY
    assert failed.json() == {
        "ok": False,
        "error": failed.json()["error"],
        "code": "INVALID_KEY",
        "exit_code": kaixupush_client.EXIT_GATEWAY,
    }


def test_version_is_printed_and_an_older_client_is_warned(customer: Customer) -> None:
    run = customer.run("--version")
    assert run.code == 0 and run.out.strip() == f"kaixupush {kaixupush_client.__version__}"
    current = customer.deploy("--dry-run")
    assert current.code == 0 and "warning" not in current.err

    old = (customer.root / "kaixupush.py").read_text()
    declared = f'__version__ = "{kaixupush_client.__version__}"'
    assert declared in old
    (customer.root / "kaixupush.py").write_text(old.replace(declared, '__version__ = "0.9.0"'))
    outdated = customer.deploy("--dry-run")
    assert outdated.code == 0, outdated.err
    assert (
        f"warning: this KaixuPush client is 0.9.0 and the gateway expects {publish.MIN_CLIENT_VERSION}"
        in outdated.err
    )
    assert f"curl -fsSLO {customer.server}/kaixupush.py" in outdated.err


def test_a_dry_run_compares_with_the_published_site_and_deploys_nothing(
    customer: Customer, push_env: PushEnv
) -> None:
    first = customer.deploy("--dry-run", "--json")
    assert first.code == 0, first.err
    assert first.json()["new"]["files"] == 5 and first.json()["upload"]["files"] == 4
    assert customer.deploy().code == 0
    creates, pushes = push_env.netlify.count("create"), _pushes(push_env)

    customer.write({"about/index.html": b"<h1>about us</h1>", "blog/one.html": b"<p>one</p>"})
    (customer.site / "copy.html").unlink()
    run = customer.deploy("--dry-run", "--json")
    assert run.code == 0, run.err
    plan = run.json()
    assert plan["dry_run"] is True and plan["files"] == 5
    assert plan["new"] == {"files": 1, "bytes": 10, "paths": ["/blog/one.html"]}
    assert plan["changed"] == {"files": 1, "bytes": 17, "paths": ["/about/index.html"]}
    assert plan["unchanged"] == {"files": 3, "bytes": plan["bytes"] - 27}
    assert plan["removed"] == {"files": 1, "paths": ["/copy.html"]}
    assert plan["upload"] == {"files": 2, "bytes": 27}

    text = customer.deploy("--dry-run")
    assert text.code == 0 and "nothing was deployed" in text.out
    assert "new: /blog/one.html" in text.out and "changed: /about/index.html" in text.out
    assert "removed: /copy.html" in text.out
    assert push_env.netlify.count("create") == creates and _pushes(push_env) == pushes  # nothing started


# ----------------------------------------------------------------------------- exit codes


def test_local_problems_exit_2_before_anything_is_sent(customer: Customer, push_env: PushEnv) -> None:
    no_key = customer.deploy(KAIXU_KEY="")
    assert no_key.code == kaixupush_client.EXIT_LOCAL and "Set KAIXU_KEY" in no_key.err
    no_folder = customer.run("deploy", "missing", "--project", PROJECT)
    assert no_folder.code == kaixupush_client.EXIT_LOCAL and "missing is not a folder" in no_folder.err
    usage = customer.run("deploy", "dist")
    assert usage.code == kaixupush_client.EXIT_LOCAL and "--project" in usage.err
    assert _pushes(push_env) == 0


def test_a_gateway_refusal_exits_3_at_once_saying_what_to_do(customer: Customer, push_env: PushEnv) -> None:
    unknown = customer.deploy(KAIXU_KEY="kx_live_" + "x" * 43)
    assert unknown.code == kaixupush_client.EXIT_GATEWAY
    assert "INVALID_KEY" in unknown.err and "check KAIXU_KEY" in unknown.err
    assert "retrying in" not in unknown.err  # a refusal is not retried
    caller = push_env.make_key(customer_id=push_env.key.customer_id, role="caller")
    weak = customer.deploy(KAIXU_KEY=caller.secret)
    assert weak.code == kaixupush_client.EXIT_GATEWAY and "deployer role" in weak.err
    elsewhere = customer.run("deploy", "dist", "--project", "nope")
    assert elsewhere.code == kaixupush_client.EXIT_GATEWAY and "PROJECT_NOT_FOUND" in elsewhere.err
    assert push_env.netlify.count("create") == 0


def test_a_bad_netlify_token_exits_4_within_seconds_naming_the_cause(
    customer: Customer, push_env: PushEnv
) -> None:
    push_env.netlify.tokens = {"a-token-the-gateway-does-not-hold"}
    run = customer.deploy()
    assert run.code == kaixupush_client.EXIT_NETLIFY, run.err
    assert run.seconds < 5  # the acceptance point: not retried for a minute
    assert "NETLIFY_TOKEN_REJECTED" in run.err and "Netlify refused the Netlify token" in run.err
    assert "set a valid Netlify token" in run.err and "retrying in" not in run.err
    assert push_env.netlify.count("create") == 1  # neither the gateway nor the client retried


def test_a_token_revoked_while_netlify_prepares_exits_4(
    customer: Customer, push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(KAIXUPUSH_PREPARE_TIMEOUT_S="0")  # init answers while Netlify still prepares
    push_env.netlify.prepare_polls = 5
    push_env.netlify.fail("get", 401, times=100)  # every later read of the deploy is refused
    run = customer.deploy()
    assert run.code == kaixupush_client.EXIT_NETLIFY, run.err
    assert "NETLIFY_TOKEN_REJECTED" in run.err


def test_a_large_file_netlify_refuses_exits_4_saying_what_to_do(
    customer: Customer, push_env: PushEnv
) -> None:
    """The large file is delivered by the gateway's job; Netlify refusing it is a refusal of
    Netlify's like any other, not one of the gateway's (3) nor one that may pass (5)."""
    push_env.netlify.fail("upload", 401, times=100, message="Access Denied", path="/media/clip.bin")
    run = customer.deploy()
    assert run.code == kaixupush_client.EXIT_NETLIFY, run.err
    assert "could not be delivered: Netlify answered 401: Access Denied" in run.err
    assert kaixupush_client._ASK_OPERATOR_FOR_TOKEN in run.err
    job = push_env.db.execute("SELECT status, last_error_code FROM push_jobs").fetchone()
    assert job == {"status": "failed", "last_error_code": "NETLIFY_TOKEN_REJECTED"}


def test_transient_failures_are_retried_then_exit_5(
    customer: Customer, push_env: PushEnv, configure: Callable[..., Any]
) -> None:
    configure(NETLIFY_MAX_ATTEMPTS="1")
    push_env.netlify.fail("create", 503, times=10)
    run = customer.deploy("--retries", "1")
    assert run.code == kaixupush_client.EXIT_TRANSIENT, run.err
    assert "kaixupush-init answered 502" in run.err and "NETLIFY_ERROR" in run.err
    assert "retrying in" in run.err and "still after 2 attempts" in run.err
    assert push_env.netlify.count("create") == 2

    nobody = customer.deploy(KAIXU_BASE_URL=f"http://127.0.0.1:{free_port()}", KAIXUPUSH_RETRIES="0")
    assert nobody.code == kaixupush_client.EXIT_TRANSIENT and "could not be reached" in nobody.err
