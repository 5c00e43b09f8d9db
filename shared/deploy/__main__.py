"""``python -m shared.deploy template|build|site|secret``: see ``shared/deploy/__init__.py``.

The site command runs in Netlify's build image, so what it imports needs only the standard
library; the other commands import their modules when they run."""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
from pathlib import Path

from shared.deploy import build, site


def _template(args: argparse.Namespace) -> None:
    from shared.deploy import template

    wanted = template.render(template.build(template.discover()))
    if args.check:
        current = template.TEMPLATE_PATH.read_text() if template.TEMPLATE_PATH.exists() else ""
        if current != wanted:
            raise SystemExit("deploy: template.yaml is stale: run `python -m shared.deploy template`")
        print("template.yaml matches functions/")
        return
    template.TEMPLATE_PATH.write_text(wanted)
    print(f"wrote {template.TEMPLATE_PATH.name}")


def _build(args: argparse.Namespace) -> None:
    artifact = build.build(Path(args.out), args.arch)
    print(f"function code: {artifact.code}")
    print(f"dependency layer: {artifact.layer}")
    print(
        f"function + layer unzipped: {artifact.size_bytes / 2**20:.1f} MiB "
        f"(Lambda's limit {build.LAMBDA_LIMIT_BYTES / 2**20:.0f} MiB); deploy with Architecture={args.arch}"
    )


def _site(args: argparse.Namespace) -> None:
    out = site.build(Path(args.out))
    print(f"site for Netlify in {out}")


def _secret(args: argparse.Namespace) -> None:
    """Every key the template reads; what can be generated is, the rest is left empty."""
    from shared.deploy import template

    made = {
        "KEY_PEPPER": secrets.token_urlsafe(32),
        "ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "ADMIN_TOKEN_SECRET": secrets.token_urlsafe(32),
        "KAIXU_ENCRYPTION_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "KAIXU_MAINTENANCE_SECRET": secrets.token_urlsafe(32),
        "KAIXUPUSH_WORKER_SECRET": secrets.token_urlsafe(32),
    }
    json.dump({key: made.get(key, "") for key in template.SECRET_KEYS}, sys.stdout, indent=2)
    print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.deploy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("template", help="write template.yaml from functions/")
    command.add_argument("--check", action="store_true", help="fail if template.yaml is stale")
    command.set_defaults(run=_template)
    command = commands.add_parser("build", help="build the Lambda artifact")
    command.add_argument("--arch", default="x86_64", choices=sorted(build.PLATFORMS))
    command.add_argument("--out", default=str(build.OUT))
    command.set_defaults(run=_build)
    command = commands.add_parser("site", help="build the admin site for Netlify (API_ORIGIN, STREAM_ORIGIN)")
    command.add_argument("--out", default=str(site.OUT))
    command.set_defaults(run=_site)
    command = commands.add_parser("secret", help="print a skeleton of the Secrets Manager secret")
    command.set_defaults(run=_secret)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
