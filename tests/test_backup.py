"""`backup` while the server builds and writes, `restore` into a fresh directory, and a server
started there serving every project, build, log and repository, dnf installing from it."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3

import pytest
from test_results_views import NEEDS_DNF, dnf  # noqa: F401  (the dnf fixture)
from test_retention import cli

from copr_lite.keys import DB
from copr_lite.testing import add_user, basic_auth, upload_srpm, wait_until

F40 = "fedora-40-x86_64"
pytestmark = NEEDS_DNF


async def status(client, build_id: int) -> str:
    resp = await client.get(f"/api/coprs/build/{build_id}/")
    return str((await resp.json())["status"])


async def wait_status(client, build_id: int, wanted: set[str], within: float = 90) -> None:
    async def reached():
        return await status(client, build_id) in wanted

    await wait_until(reached, within=within, interval=0.2)


async def test_backup_during_builds_restores_and_serves(
    aiohttp_client,
    make_app,
    tmp_path,
    fixture_srpm,
    dnf,  # noqa: F811
):
    settings = {"sign": True, "chroots": {F40: "rpmbuild"}}
    app = make_app(**settings)
    client = await aiohttp_client(app)
    _, token = await add_user(app, "alice")
    auth = basic_auth(token)
    for name in ("proj", "empty"):
        resp = await client.post(
            "/api/coprs/alice/new/", headers=auth, data={"name": name, "chroots": F40}
        )
        assert resp.status == 200
    hello = await upload_srpm(client, token, "alice/proj", fixture_srpm("hello-copr-lite"))
    stub = await upload_srpm(client, token, "alice/proj", fixture_srpm("copr-lite-base-stub"))
    for build_id in (hello, stub):
        await wait_status(client, build_id, {"succeeded"})
    long = await upload_srpm(client, token, "alice/proj", fixture_srpm("copr-lite-e2e-long"))
    await wait_status(client, long, {"running"})

    # Writes go on during the backup: builds whose import fails at once, one after another.
    writing = True
    written: list[int] = []

    async def write():
        while writing:
            resp = await client.post(
                "/api/coprs/alice/proj/new_build/",
                headers=auth,
                data={"pkgs": "http://127.0.0.1:9/gone-1-1.src.rpm"},
            )
            written.append(int((await resp.json())["id"]))
            await asyncio.sleep(0.02)

    writer = asyncio.create_task(write())
    ini = tmp_path / "copr-lite.ini"
    ini.write_text(f"[server]\ndata_dir = {tmp_path / 'data'}\n")
    dest = tmp_path / "backup"
    code, out, err = await cli("backup", str(dest), "--config", str(ini), cwd=tmp_path)
    writing = False
    await writer
    assert code == 0, err
    assert "backed up" in out and len(written) > 3

    # What the backup holds is what the restored server must serve.
    conn = sqlite3.connect(dest / "copr-lite.sqlite3")
    projects = sorted(row[0] for row in conn.execute("SELECT name FROM projects"))
    builds = dict(conn.execute("SELECT id, pkg_name FROM builds").fetchall())
    conn.close()
    assert projects == ["empty", "proj"]
    assert {hello, stub, long} <= set(builds) and len(builds) > 3
    await client.close()
    shutil.rmtree(tmp_path / "data")  # nothing of the old directory may be needed

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    code, out, err = await cli("restore", str(dest), cwd=fresh)
    assert code == 0, err
    assert "restored" in out
    code, _, err = await cli("restore", str(dest), cwd=fresh)
    assert code == 1 and "is not empty" in err

    restored = make_app(data_dir=fresh / "data", **settings)
    client = await aiohttp_client(restored)
    for name in projects:
        resp = await client.get(f"/api/coprs/alice/{name}/detail/")
        assert resp.status == 200
        repomd = f"/results/alice/{name}/{F40}/repodata/repomd.xml"
        assert (await client.get(repomd)).status == 200
        assert (await client.get(repomd + ".asc")).status == 200  # signed with its own key
    for build_id in builds:
        assert (await client.get(f"/api/coprs/build/{build_id}/")).status == 200
    for build_id, package in ((hello, "hello-copr-lite"), (stub, "copr-lite-base-stub")):
        resp = await client.get(
            f"/results/alice/proj/{F40}/{build_id:08d}-{package}/builder-live.log"
        )
        assert resp.status == 200 and "Finished: succeeded" in await resp.text()
    # The long build was running at the snapshot: it is built again, from the restored SRPM.
    assert await status(client, long) in {"pending", "starting", "running"}
    paths = await restored[DB].read(
        lambda conn: [
            r[0] for r in conn.execute("SELECT srpm_path FROM builds WHERE srpm_path IS NOT NULL")
        ]
    )
    assert paths and all(path.startswith(f"{fresh / 'data'}/") for path in paths), paths

    url = str(client.make_url(f"/results/alice/proj/{F40}/"))
    out = await dnf(
        "--refresh", f"--repofrompath=r,{url}", "--repo=r", "install", "hello-copr-lite"
    )
    assert "hello-copr-lite" in out and "Complete!" in out


@pytest.mark.parametrize("args", [["backup", "out"], ["restore", "nowhere"]])
async def test_backup_and_restore_refuse_with_one_line(tmp_path, args):
    code, _, err = await cli(*args, cwd=tmp_path)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
