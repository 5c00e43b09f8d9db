"""A dry run of a deploy (``kaixupush-init`` with ``dry_run: true``): what the deploy would
change on the site, without creating anything.

It makes the checks a deploy would be refused by (the project, a usable Netlify token, the
month's push cap; not the deploy rate limit, since nothing is deployed), then reads the
site's published files from Netlify once and sorts the manifest's paths into new, changed and
unchanged, and names the published paths the deploy would remove (every deploy lists every
file). ``required`` are the digests the published deploy does not hold: at most what Netlify
will ask for (it may still hold some from older deploys). Nothing is written, nothing billed.
"""

from __future__ import annotations

from typing import Any

from shared import config, db
from shared.http import Ctx
from shared.kaixupush import billing, manifest, projects, publish
from shared.kaixupush.netlify_api import Netlify, NetlifyError, deploy_token, to_api_error


def _published(files: list[dict[str, Any]]) -> dict[str, str]:
    """path -> sha1 of the site's published deploy, paths in the manifest's form (``/a.html``)."""
    return {
        "/" + file["path"].lstrip("/"): file["sha"]
        for file in files
        if isinstance(file.get("path"), str) and isinstance(file.get("sha"), str)
    }


def compare(files: dict[str, str], published: dict[str, str]) -> dict[str, Any]:
    """The manifest ``files`` against the ``published`` deploy, both path -> sha1."""
    new = sorted(path for path in files if path not in published)
    changed = sorted(path for path, sha1 in files.items() if published.get(path, sha1) != sha1)
    held = set(published.values())
    required = sorted({sha1 for sha1 in files.values() if sha1 not in held})
    return {
        "new": new,
        "changed": changed,
        "unchanged_count": len(files) - len(new) - len(changed),
        "removed": sorted(set(published) - set(files)),
        "required": required,
        "required_count": len(required),
    }


async def dry_run(ctx: Ctx, req: manifest.InitRequest) -> dict[str, Any]:
    """The dry run's answer (200): the comparison, and the limits the client checks."""
    project = await projects.find(ctx.customer, req.project_id)
    token = await deploy_token(project)
    async with db.connection() as conn:
        await billing.check_cap(conn, ctx.customer, extra_deploys=1, extra_bytes=req.bytes)
    try:
        files = await Netlify(token).list_site_files(project["netlify_site_id"])
    except NetlifyError as error:
        raise to_api_error(error) from None
    cfg = config.settings()
    return {
        "dry_run": True,
        "project_id": project["project_id"],
        "file_count": len(req.files),
        **compare(req.files, _published(files)),
        "part_bytes": cfg.kaixupush_part_bytes,
        "max_file_bytes": cfg.kaixupush_max_file_bytes,
        "client": publish.versions(),
    }
