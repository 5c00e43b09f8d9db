"""The Lambda artifact: ``python -m shared.deploy build [--arch x86_64|arm64]``.

``build/lambda/code`` holds what every function runs (``functions/``, ``shared/``, ``sql/`` and
the streaming function's ``run.sh``); ``build/lambda/layer/python`` the packages of
``requirements-runtime.txt`` and nothing else (no test tools, no embedded PostgreSQL), as wheels
for Lambda's python3.11 (Amazon Linux 2, glibc 2.26). ``sam deploy`` zips both folders as
they are. Everything is compiled to bytecode here, because Lambda's code folders are
read-only: without it every cold start would compile every module again.
"""

from __future__ import annotations

import compileall
import py_compile
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from shared import config

ROOT = config.PROJECT_ROOT
OUT = ROOT / "build" / "lambda"
RUNTIME_REQUIREMENTS = ROOT / "requirements-runtime.txt"
CODE_DIRS = ("functions", "shared", "sql")
LAMBDA_LIMIT_BYTES = 250 * 1024 * 1024  # unzipped function + layers
# Wheels that run on Lambda's python3.11 (Amazon Linux 2: glibc 2.26), newest first.
_GLIBC = ("2_26", "2_24", "2_17", "2_12", "2_5")
PLATFORMS = {
    arch: [f"manylinux_{glibc}_{machine}" for glibc in _GLIBC] + [f"manylinux2014_{machine}"]
    for arch, machine in (("x86_64", "x86_64"), ("arm64", "aarch64"))
}

# The streaming function's handler: the Lambda Web Adapter starts it and forwards each
# invocation to it as HTTP. /opt/python is where Lambda mounts the dependency layer.
RUN_SCRIPT = """#!/bin/sh
# The streaming function: AWS Lambda Web Adapter runs this and relays each invocation to the
# server as HTTP, streaming the answer through the Function URL.
cd "$(dirname "$0")" || exit 1
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}/opt/python"
exec python -m uvicorn shared.host.asgi:app --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \\
  --lifespan on --no-proxy-headers --no-access-log --log-level warning
"""


@dataclass(frozen=True)
class Artifact:
    code: Path
    layer: Path

    @property
    def size_bytes(self) -> int:
        return sum(_size(folder) for folder in (self.code, self.layer))


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _copy_code(code: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in CODE_DIRS:
        shutil.copytree(ROOT / name, code / name, ignore=ignore)
    script = code / "run.sh"
    script.write_text(RUN_SCRIPT)
    script.chmod(0o755)


def _install_layer(target: Path, arch: str) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--requirement",
        str(RUNTIME_REQUIREMENTS),
        "--target",
        str(target),
        *(option for platform in PLATFORMS[arch] for option in ("--platform", platform)),
        "--implementation",
        "cp",
        "--python-version",
        "3.11",
        "--only-binary=:all:",
        "--no-compile",
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        errors = "\n".join(line for line in done.stderr.splitlines() if "WARNING" not in line)
        raise SystemExit(f"deploy: installing the layer's packages failed:\n{errors.strip()}")
    for leftover in target.glob("bin"):  # console scripts: Lambda never runs them
        shutil.rmtree(leftover)


# psycopg and psycopg-binary look their own version up in their installed metadata when
# imported, which loads importlib.metadata with email and zipfile: about 8 ms of every cold
# start, to learn a string the build already knows.
_VERSION_LOOKUP = re.compile(r'^\s*__version__ = metadata\.version\("([\w.-]+)"\)$', re.MULTILINE)


def _pin_versions(target: Path) -> None:
    """Write the version into each package's ``version.py`` that would look it up."""
    for module in target.glob("*/version.py"):
        lookup = _VERSION_LOOKUP.search(module.read_text())
        if lookup is None:
            continue
        found = next(iter(metadata.distributions(name=lookup[1], path=[str(target)])), None)
        if found is not None:
            module.write_text(f'"""Written by the deploy build."""\n\n__version__ = "{found.version}"\n')


def _compile(folder: Path) -> bool:
    """Bytecode that needs no source timestamps (zipping may change them); False when a file
    did not compile."""
    return compileall.compile_dir(
        folder,
        quiet=2,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def build(out: Path = OUT, arch: str = "x86_64") -> Artifact:
    if sys.version_info[:2] != (3, 11):
        raise SystemExit("deploy: build with Python 3.11, the functions' runtime (bytecode is per version)")
    if arch not in PLATFORMS:
        raise SystemExit(f"deploy: --arch must be one of {', '.join(PLATFORMS)}")
    if out.exists():
        shutil.rmtree(out)
    artifact = Artifact(code=out / "code", layer=out / "layer")
    _copy_code(artifact.code)
    _install_layer(artifact.layer / "python", arch)
    _pin_versions(artifact.layer / "python")
    if not _compile(artifact.code):
        raise SystemExit("deploy: the function code does not compile")
    _compile(artifact.layer)  # a package may ship files for other Pythons; those stay source
    if artifact.size_bytes > LAMBDA_LIMIT_BYTES:
        raise SystemExit(
            f"deploy: function + layer unzipped is {artifact.size_bytes / 2**20:.1f} MiB, over "
            f"Lambda's {LAMBDA_LIMIT_BYTES / 2**20:.0f} MiB"
        )
    return artifact
