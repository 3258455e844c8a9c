"""The OpenAPI description at /api/openapi.json: it lists exactly the router's /api/ operations,
it is valid OpenAPI 3, and a live server keeps to it under schemathesis' generated requests."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from copr_lite.config import load_config
from copr_lite.keys import CONFIG, PLUGINS
from copr_lite.liveserver import cli, free_port, serving
from copr_lite.openapi import openapi_document
from copr_lite.openapi_v3 import openapi_v3_document
from copr_lite.plugins import api_paths, make_plugin_manager
from copr_lite.testing import TEST_CHROOTS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
# HTML pages under /api/: documented on /api/ itself, not in the JSON API description.
HTML_PAGES = {"/api/", "/api/new/"}


def router_operations(app: Any, prefix: str = "/api/") -> set[tuple[str, str]]:
    """(path, method) of every route under `prefix`, without aiohttp's automatic HEAD and
    the pages."""
    found = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if not path.startswith(prefix) or path in HTML_PAGES or route.method == "HEAD":
            continue
        found.add((path, route.method.lower()))
    return found


def document_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def app_document(app: Any) -> dict[str, Any]:
    config = app[CONFIG]
    return openapi_document(config.public_base_url, list(config.chroots), api_paths(app[PLUGINS]))


def test_document_lists_exactly_the_api_routes(make_app):
    app = make_app()
    in_router, in_document = router_operations(app), document_operations(app_document(app))
    assert in_router, "no /api/ routes found: the route walk is broken"
    assert not in_router - in_document, (
        f"routes missing from the document: {in_router - in_document}"
    )
    assert not in_document - in_router, f"documented but not routed: {in_document - in_router}"


def test_v3_document_lists_exactly_the_api_3_routes(make_app):
    app = make_app()
    config = app[CONFIG]
    # With the built-in plugins' paths under /api_3/ (the outgoing webhooks).
    paths = api_paths(app[PLUGINS])
    document = openapi_v3_document(config.public_base_url, list(config.chroots), paths)
    in_router, in_document = router_operations(app, "/api_3/"), document_operations(document)
    assert len(in_router) > 40, "the /api_3/ route walk is broken"
    assert not in_router - in_document, f"missing from the document: {in_router - in_document}"
    assert not in_document - in_router, f"documented but not routed: {in_document - in_router}"


@pytest.mark.parametrize("chroots", [[], list(TEST_CHROOTS)])
def test_v3_document_is_valid_openapi_3(chroots):
    """With the built-in plugins' paths under /api_3/ (the outgoing webhooks)."""
    builtin = api_paths(make_plugin_manager(load_config(None), load_entrypoints=False))
    assert "/api_3/webhook/outgoing/{ownername}/{projectname}" in builtin
    document = openapi_v3_document("http://127.0.0.1:8080", chroots, builtin)
    validate(document)
    body = document["paths"]["/api_3/project/add/{ownername}"]["post"]["requestBody"]
    properties = body["content"]["application/json"]["schema"]["properties"]
    # The operation's declared fields, in v3's spelling.
    assert {"name", "chroots", "additional_repos", "enable_net", "persistent"} <= set(properties)
    assert "repos" not in properties and "initial_pkgs" not in properties


async def test_v3_openapi_json_is_served(client):
    resp = await client.get("/api_3/openapi.json")
    assert resp.status == 200
    config = client.server.app[CONFIG]
    paths = api_paths(client.server.app[PLUGINS])
    expected = openapi_v3_document(config.public_base_url, sorted(config.chroots), paths)
    assert await resp.json() == json.loads(json.dumps(expected))


async def test_v3_paths_answer_with_a_trailing_slash_too(client):
    plain = await client.get("/api_3/mock-chroots/list")
    slashed = await client.get("/api_3/mock-chroots/list/")
    assert plain.status == slashed.status == 200
    assert await plain.json() == await slashed.json()
    missing = await client.get("/api_3/build/123456/")
    assert missing.status == 404
    assert (await missing.json())["error"] == "Build 123456 does not exist."


async def test_openapi_json_is_served(client):
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["openapi"] == "3.0.3"
    assert body == json.loads(json.dumps(app_document(client.server.app)))


@pytest.mark.parametrize(
    "chroots", [[], list(TEST_CHROOTS), ["fedora-rawhide-x86_64", "epel-9-x86_64"]]
)
def test_document_is_valid_openapi_3(chroots):
    """With the built-in plugins' paths (the remote plugin's GET /api/workers/)."""
    builtin = api_paths(make_plugin_manager(load_config(None), load_entrypoints=False))
    assert "/api/workers/" in builtin
    document = openapi_document("http://127.0.0.1:8080", chroots, builtin)
    assert document["openapi"] == "3.0.3"
    validate(document)  # raises OpenAPIValidationError with the offending part


def test_configured_chroots_are_form_fields():
    document = openapi_document("http://copr.example", ["fedora-41-x86_64", "epel-9-x86_64"])
    paths = document["paths"]
    for path in ("/api/coprs/{username}/new/", "/api/coprs/{username}/{project}/new_build/"):
        content = paths[path]["post"]["requestBody"]["content"]
        for media in ("application/x-www-form-urlencoded", "multipart/form-data"):
            fields = content[media]["schema"]["properties"]
            assert {"fedora-41-x86_64", "epel-9-x86_64"} <= set(fields)
            assert "fedora-40-x86_64" not in fields
    chroot_param = next(
        p
        for p in paths["/api/coprs/{username}/{project}/detail/{chroot}/"]["get"]["parameters"]
        if p["name"] == "chroot"
    )
    assert chroot_param["schema"]["enum"] == ["epel-9-x86_64", "fedora-41-x86_64"]


def test_every_error_response_is_the_shared_error_schema():
    document = openapi_document("http://copr.example", list(TEST_CHROOTS))
    for path, item in document["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status == "200":
                    continue
                assert response == {"$ref": f"#/components/responses/Error{status}"}, (
                    method,
                    path,
                )
    for status, response in document["components"]["responses"].items():
        schema = response["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, status


# ---------------------------------------------------------------- schemathesis on a live server

# Two chroots keep the generated forms small. The test user owns the project `demo`, which the
# generated requests address most of the time (the dictionaries below), so that they reach the
# handlers' real work rather than stopping at "no such project". Create and delete address
# `other` instead, so that `demo` lives through the whole run. SRPM URLs point at the server
# itself (allowed for 127.0.0.0/8 here): the imports fail at once, with loopback traffic only.
LIVE_CHROOTS = ("fedora-rawhide-x86_64", "epel-9-x86_64")
USER = "alice"
PROJECT = "demo"
SEED = 20261127  # fixed: the same requests on every run, so CI is stable
MAX_EXAMPLES = 40  # per operation and phase
# No 500; every answer's status and body as described; every operation described as needing
# login refuses requests without (or with wrong) credentials.
CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance,ignored_auth"


# The values generated requests mostly use: the test user, its project, another project name
# (for create and delete) and build ids that exist.
DICTIONARIES = f"""
[dictionaries.owners]
values = ["{USER}"]

[dictionaries.projects]
values = ["{PROJECT}"]

[dictionaries.other]
values = ["other"]

[dictionaries.builds]
values = ["1", "2", "3"]
"""


def schemathesis_toml(base: str) -> str:
    srpm = f"{base}/results/nothing/hello-1-1.src.rpm"
    return (
        DICTIONARIES
        + f"""
[dictionaries.srpms]
values = ["{srpm}", "{srpm} {srpm}"]

[dictionaries.unset]
values = ["", "false"]

[parameters]
"path.username" = {{ dictionary = "owners", probability = 0.8 }}
"path.project" = {{ dictionary = "projects", probability = 0.8 }}
"path.build_id" = {{ dictionary = "builds", probability = 0.6 }}
"body.pkgs" = {{ dictionary = "srpms", probability = 0.6 }}
"body.initial_pkgs" = {{ dictionary = "srpms", probability = 0.3 }}
"body.persistent" = {{ dictionary = "unset", probability = 0.8 }}

[[operations]]
include-path = "/api/coprs/{{username}}/new/"
parameters = {{ "body.name" = {{ dictionary = "other", probability = 0.5 }} }}

[[operations]]
include-path = "/api/coprs/{{username}}/{{project}}/delete/"
parameters = {{ "path.project" = {{ dictionary = "other", probability = 0.8 }} }}
"""
    )


# Straight to the local server, whatever proxy the environment names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def request(
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with DIRECT.open(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def multipart(fields: dict[str, str], file_name: str, content: bytes) -> tuple[bytes, str]:
    boundary = "copr-lite-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="pkgs"; filename="{file_name}"'
        "\r\nContent-Type: application/x-rpm\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def assert_documented(path: str, body: dict[str, Any], document: dict[str, Any]) -> None:
    """`body` matches the 200 schema of POST `path` (for answers schemathesis cannot reach)."""
    response = document["paths"][path]["post"]["responses"]["200"]
    schema = response["content"]["application/json"]["schema"]
    OAS30Validator({**schema, "components": document["components"]}).validate(body)


def fixture_srpm(workdir: Path) -> tuple[str, bytes]:
    """The hello-copr-lite SRPM where rpmbuild is installed (so monitor and build detail have
    a real package to show), else bytes that fail the import."""
    rpmbuild = shutil.which("rpmbuild")
    if rpmbuild is None:
        return "hello-copr-lite-1.0-1.src.rpm", b"not really an rpm"
    top = workdir / "rpmbuild"
    spec = FIXTURES / "hello-copr-lite.spec"
    subprocess.run(
        [rpmbuild, "-bs", "--define", f"_topdir {top}", "--define", f"_sourcedir {FIXTURES}", spec],
        capture_output=True,
        check=True,
        timeout=60,
    )
    srpm = next((top / "SRPMS").glob("*.src.rpm"))
    return srpm.name, srpm.read_bytes()


def seed_project(base: str, auth: dict[str, str], workdir: Path) -> None:
    """The project the generated requests address, with one uploaded build.

    The upload's answer is checked here: schemathesis names every file part after its field
    (`pkgs`), which the server refuses as not an SRPM, so it never sees a successful upload.
    """
    status, body = request(
        f"{base}/api/coprs/{USER}/new/",
        data=json.dumps({"name": PROJECT, "chroots": " ".join(LIVE_CHROOTS)}).encode(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert status == 200, body
    data, boundary = multipart({}, *fixture_srpm(workdir))
    status, body = request(
        f"{base}/api/coprs/{USER}/{PROJECT}/new_build_upload/",
        data=data,
        headers={**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 200, body
    _, document = request(f"{base}/api/openapi.json")
    assert_documented("/api/coprs/{username}/{project}/new_build_upload/", body, document)


@pytest.fixture
def live_server(tmp_path: Path):
    """A real `python -m copr_lite serve` on a free port, with a user and an API token."""
    port = free_port()
    config = tmp_path / "copr-lite.ini"
    chroots = "\n".join(f"{name} = rpmbuild" for name in LIVE_CHROOTS)
    config.write_text(
        f"[server]\nhost = 127.0.0.1\nport = {port}\ndata_dir = {tmp_path / 'data'}\n"
        f"access_log = no\nlog_level = WARNING\n\n[builds]\nsrpm_allowed_networks = 127.0.0.0/8\n\n"
        f"[chroots]\n{chroots}\n"
    )
    cli(config, "user", "add", USER, "--password-stdin", stdin="password123\n")
    issued = cli(config, "user", "token", USER).stdout
    login = re.search(r"^login = (\S+)$", issued, re.M)
    token = re.search(r"^token = (\S+)$", issued, re.M)
    assert login and token, issued
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with serving(config, tmp_path, log):
        status, _ = request(base + "/api/chroots/")
        assert status == 200
        credential = f"{login[1]}:{token[1]}"
        auth = {"Authorization": "Basic " + base64.b64encode(credential.encode()).decode()}
        seed_project(base, auth, tmp_path)
        yield base, credential, log


def assert_keeps_to_description(
    live_server: tuple[str, str, Path],
    tmp_path: Path,
    toml: str,
    path: str,
    max_examples: int,
    timeout: float,
) -> None:
    """schemathesis finds no problem with the description at `path` of the live server (with
    the settings in `toml`: every phase, a fixed seed, one worker)."""
    base, credential, log = live_server
    (tmp_path / "schemathesis.toml").write_text(toml)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "--no-color",
        "run",
        base + path,
        "--auth",
        credential,
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--max-failures",
        "20",
    ]
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, (
        f"schemathesis found problems:\n{result.stdout[-20000:]}\n{result.stderr[-4000:]}\n"
        f"server log:\n{log.read_text()[-8000:]}"
    )


def test_live_server_keeps_to_the_description(live_server, tmp_path):
    toml = schemathesis_toml(live_server[0])
    assert_keeps_to_description(live_server, tmp_path, toml, "/api/openapi.json", MAX_EXAMPLES, 240)


V3_MAX_EXAMPLES = 15  # per operation and phase: API v3 has three times v1's operations


def schemathesis_v3_toml() -> str:
    """As schemathesis_toml, for API v3's parameter names (query and JSON body too)."""
    return (
        DICTIONARIES
        + """
[parameters]
"path.ownername" = { dictionary = "owners", probability = 0.8 }
"query.ownername" = { dictionary = "owners", probability = 0.8 }
"body.ownername" = { dictionary = "owners", probability = 0.8 }
"path.projectname" = { dictionary = "projects", probability = 0.8 }
"query.projectname" = { dictionary = "projects", probability = 0.8 }
"body.projectname" = { dictionary = "projects", probability = 0.8 }
"path.dirname" = { dictionary = "projects", probability = 0.8 }
"path.build_id" = { dictionary = "builds", probability = 0.6 }
"query.build_id" = { dictionary = "builds", probability = 0.6 }

[[operations]]
include-path = "/api_3/project/add/{ownername}"
parameters = { "body.name" = { dictionary = "other", probability = 0.5 } }

[[operations]]
include-path = "/api_3/project/delete/{ownername}/{projectname}"
parameters = { "path.projectname" = { dictionary = "other", probability = 0.8 } }
"""
    )


def test_live_server_keeps_to_the_v3_description(live_server, tmp_path):
    toml = schemathesis_v3_toml()
    path = "/api_3/openapi.json"
    assert_keeps_to_description(live_server, tmp_path, toml, path, V3_MAX_EXAMPLES, 300)
