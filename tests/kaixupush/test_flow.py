"""KaixuPush end to end through HTTP against the fake Netlify: init, uploads, complete."""

from __future__ import annotations

from tests.support import kaixupush as kaixupush_support
from tests.support.kaixupush import PushEnv, ok, sha1

netlify = kaixupush_support.netlify  # fixture
netlify_server = kaixupush_support.netlify_server  # fixture
push_env = kaixupush_support.push_env  # fixture


def test_deploy_whole_files_end_to_end(push_env: PushEnv) -> None:
    files = {"/index.html": b"<h1>hi</h1>", "/css/site.css": b"body{}", "/copy.html": b"<h1>hi</h1>"}
    init = ok(push_env.init(files, branch="main", title="First"), 201)
    assert init["state"] == "uploading"
    assert sorted(init["required"]) == sorted({sha1(b"<h1>hi</h1>"), sha1(b"body{}")})
    for path in ("/index.html", "/css/site.css"):
        assert ok(push_env.upload(init["push_id"], path, files[path]))["uploaded"] is True
    again = ok(push_env.upload(init["push_id"], "/index.html", files["/index.html"]))
    assert again["skipped"] is True
    done = ok(push_env.complete(init["push_id"]))
    assert done["state"] == "ready" and done["url"] == "https://site-main.netlify.app"
    assert push_env.netlify.blobs[sha1(b"body{}")] == b"body{}"
    # Netlify asks per digest: content at two paths is sent once, to one of them
    paths = sorted(r["path"] for r in push_env.netlify.uploads())
    assert paths == [f"/api/v1/deploys/{done['deploy_id']}/files/{p}" for p in ("copy.html", "css/site.css")]
