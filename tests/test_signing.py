"""Signed packages and repositories with the real tools: gpg, rpmsign, rpmkeys, dnf.

One `python -m copr_lite serve` per module at its default settings (signing on, RSA 4096),
with two projects that each build the same SRPM. Everything a user would check is checked
from the outside: pubkey.gpg over HTTP, `rpmkeys -K` with only that key imported, `gpg
--verify` of repomd.xml.asc, and dnf installing into an installroot with gpgcheck=1 and
repo_gpgcheck=1, importing the key on first use. Then the negative cases (another
project's key, a changed byte), `key show|rotate`, and a project published before signing
was turned on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_e2e import (  # the live-server helpers
    CALL_TIMEOUT,
    F40,
    OWNER,
    Api,
    Dnf,
    Server,
    dnf_copr_enable,
    finished,
    http_get,
    make_server,
    serving,
    wait_for_build,
)

from copr_lite import auth, store
from copr_lite.builders import PackageInfo
from copr_lite.keys import CONFIG, DB, DISPATCHER, PUBLISHER, TOKEN_CACHE
from copr_lite.liveserver import wait_for
from copr_lite.signing import Signer, SigningError
from copr_lite.testing import FakeBuilder, read_log, upload_srpm, write_fake_rpm

_TOOLS = ("gpg", "gpgconf", "rpmsign", "rpmkeys", "rpmbuild", "createrepo_c", "dnf", "bwrap")
pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in _TOOLS),
    reason="needs " + ", ".join(_TOOLS) + " (Debian: gnupg rpm createrepo-c dnf bubblewrap)",
)

PROJECTS = ("signed", "other")
NAME = "hello-copr-lite"
RPM = f"{NAME}-1.0-1.fc40.noarch.rpm"
SRPM = f"{NAME}-1.0-1.fc40.src.rpm"
STUB = "copr-lite-base-stub"


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=CALL_TIMEOUT, stdin=subprocess.DEVNULL
    )
    if check:
        assert proc.returncode == 0, (
            f"{' '.join(argv)}: {proc.returncode}\n{proc.stdout}{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    live = make_server(tmp_path_factory.mktemp("signing-server"), chroots=(F40,))
    with serving(live):
        yield live
    text = live.logs[-1].read_text(errors="replace")
    assert "Traceback" not in text and "level=ERROR" not in text, live.log_tail(20000)
    # The server stopped its keyring's gpg-agent on its way out.
    gpg_home = live.data_dir / "gnupg"
    agents = run("pgrep", "-f", f"gpg-agent --homedir {gpg_home}", check=False)
    assert agents.stdout.strip() == "", agents.stdout


@pytest.fixture(scope="module")
def builds(server: Server, fixture_srpm) -> tuple[Api, dict[str, int]]:
    """alice's two projects, each with one build of the hello SRPM, submitted at once (the
    projects' keys are still being made: the builds wait for them); "signed" also builds
    the stub that provides /bin/sh in an empty installroot."""
    api = server.make_user(OWNER)
    ids = {}
    for project in PROJECTS:
        api.ok("post", f"/api/coprs/{OWNER}/new/", name=project, chroots=F40)
        ids[project] = api.ok(
            "upload", f"/api/coprs/{OWNER}/{project}/new_build_upload/", fixture_srpm(NAME)
        )["id"]
    stub = api.ok("upload", f"/api/coprs/{OWNER}/signed/new_build_upload/", fixture_srpm(STUB))[
        "id"
    ]
    for project, build_id in [*ids.items(), ("signed", stub)]:
        detail = wait_for_build(api, build_id, finished, 120, server, "did not finish")
        assert detail["chroots"] == {F40: "succeeded"}, (project, detail, server.log_tail())
    return api, ids


def fetch(url: str, dest: Path) -> Path:
    status, body = http_get(url)
    assert status == 200, (url, status, body[:300])
    dest.write_bytes(body)
    return dest


def project_url(server: Server, project: str) -> str:
    return f"{server.url}/results/{OWNER}/{project}"


def rpm_url(server: Server, project: str, build_id: int, name: str = RPM) -> str:
    return f"{project_url(server, project)}/{F40}/{build_id:08d}-{NAME}/{name}"


def keyring(tmp: Path, pubkey: Path) -> Path:
    """An rpm database holding only `pubkey`."""
    db = tmp / f"rpmdb-{pubkey.stem}"
    db.mkdir()
    run("rpmkeys", "--dbpath", str(db), "--import", str(pubkey))
    return db


def checksig(db: Path, rpm: Path) -> subprocess.CompletedProcess[str]:
    # Without _pkgverify_level an unsigned package "verifies" too.
    return run(
        "rpmkeys",
        "--dbpath",
        str(db),
        "--define",
        "_pkgverify_level signature",
        "--checksig",
        str(rpm),
        check=False,
    )


def key_id(pubkey: Path, tmp: Path) -> str:
    out = run("gpg", "--homedir", str(tmp), "--batch", "--with-colons", "--show-keys", str(pubkey))
    return next(line.split(":")[4] for line in out.stdout.splitlines() if line.startswith("pub:"))


# ---------------------------------------------------------------- keys and signatures


def test_each_project_signs_with_its_own_key(
    server: Server, builds: tuple[Api, dict[str, int]], tmp_path: Path
) -> None:
    _, ids = builds
    gpg_home = tmp_path / "gpg"
    gpg_home.mkdir(mode=0o700)
    keys = {
        p: fetch(f"{project_url(server, p)}/pubkey.gpg", tmp_path / f"{p}.gpg") for p in PROJECTS
    }
    assert all(k.read_bytes().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK") for k in keys.values())
    ids_of = {p: key_id(k, gpg_home) for p, k in keys.items()}
    assert ids_of["signed"] != ids_of["other"], ids_of
    out = run("gpg", "--homedir", str(gpg_home), "--batch", "--show-keys", str(keys["signed"]))
    assert "rsa4096" in out.stdout and "expires" not in out.stdout, out.stdout
    assert f"{OWNER}_signed (copr_lite) <{OWNER}#signed@copr-lite>" in out.stdout, out.stdout

    dbs = {p: keyring(tmp_path, k) for p, k in keys.items()}
    empty = tmp_path / "rpmdb-empty"
    empty.mkdir()
    for project, build_id in ids.items():
        other = "other" if project == "signed" else "signed"
        srpm_import = next(
            (server.data_dir / "results" / OWNER / project / "srpm-builds").glob("*/*.src.rpm")
        )
        files = [
            fetch(rpm_url(server, project, build_id), tmp_path / f"{project}-{RPM}"),
            fetch(rpm_url(server, project, build_id, SRPM), tmp_path / f"{project}-{SRPM}"),
            srpm_import,
        ]
        for rpm in files:
            good = checksig(dbs[project], rpm)
            assert good.returncode == 0 and "signatures OK" in good.stdout, good.stdout
            for db in (dbs[other], empty):
                bad = checksig(db, rpm)
                assert bad.returncode != 0 and "NOT OK" in bad.stdout, (db, bad.stdout)
            sig = run("rpm", "-qp", "--qf", "%{RSAHEADER:pgpsig}", str(rpm)).stdout
            assert ids_of[project].lower()[-16:] in sig.lower(), sig


def test_repomd_is_signed_by_the_project_key(
    server: Server, builds: tuple[Api, dict[str, int]], tmp_path: Path
) -> None:
    for project in PROJECTS:
        other = "other" if project == "signed" else "signed"
        base = f"{project_url(server, project)}/{F40}/repodata"
        repomd = fetch(f"{base}/repomd.xml", tmp_path / f"{project}-repomd.xml")
        asc = fetch(f"{base}/repomd.xml.asc", tmp_path / f"{project}-repomd.xml.asc")
        assert asc.read_text().startswith("-----BEGIN PGP SIGNATURE-----")
        for key_owner, ok in ((project, True), (other, False)):
            home = tmp_path / f"gpg-{project}-{key_owner}"
            home.mkdir(mode=0o700)
            pubkey = fetch(f"{project_url(server, key_owner)}/pubkey.gpg", home / "key.gpg")
            run("gpg", "--homedir", str(home), "--batch", "--import", str(pubkey))
            verify = run(
                "gpg",
                "--homedir",
                str(home),
                "--batch",
                "--verify",
                str(asc),
                str(repomd),
                check=False,
            )
            run("gpgconf", "--homedir", str(home), "--kill", "gpg-agent", check=False)
            assert (verify.returncode == 0) is ok, (project, key_owner, verify.stderr)


def test_repo_files_api_and_page_point_at_the_key(
    server: Server, builds: tuple[Api, dict[str, int]]
) -> None:
    api, _ = builds
    key_url = f"{project_url(server, 'signed')}/pubkey.gpg"
    for path in (
        f"/coprs/{OWNER}/signed/repo/fedora-40/dnf.repo?arch=x86_64",
        f"/coprs/{OWNER}/signed/repo/{F40}/{OWNER}-signed-{F40}.repo",
    ):
        status, body = http_get(server.url + path)
        text = body.decode()
        assert status == 200, (path, text)
        assert "\ngpgcheck=1\n" in text and "\nrepo_gpgcheck=1\n" in text, text
        assert f"\ngpgkey={key_url}\n" in text, text
    detail = api.ok("get", f"/api/coprs/{OWNER}/signed/detail/")["detail"]
    assert detail["gpg_key_url"] == key_url, detail
    status, body = http_get(f"{server.url}/coprs/{OWNER}/signed/")
    assert status == 200 and f'href="{project_url(server, "signed")}/pubkey.gpg"' in body.decode()


# ---------------------------------------------------------------- dnf


@pytest.fixture
def dnf(tmp_path: Path) -> Iterator[Dnf]:
    runner = Dnf(tmp_path / "dnf")
    yield runner
    runner.cleanup()


def root_keys(dnf: Dnf, root: Path) -> list[str]:
    """The gpg-pubkey packages in the installroot's rpmdb (Debian's rpm keeps it under
    $HOME, which the Dnf runner sets)."""
    proc = subprocess.run(
        ["rpm", "--root", str(root), "-q", "gpg-pubkey"],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT,
        env={**os.environ, "HOME": str(dnf.work / "home")},
        check=False,
    )
    return [line for line in proc.stdout.split() if line.startswith("gpg-pubkey-")]


def dnf_fails(dnf: Dnf, *args: str, installroot: Path) -> str:
    with pytest.raises(AssertionError) as failed:
        dnf(*args, installroot=installroot)
    return str(failed.value)


def enable(dnf: Dnf, server: Server, tmp_path: Path, project: str) -> Path:
    reposdir = tmp_path / f"repos-{project}"
    dnf_copr_enable(dnf, server, reposdir, project)
    text = next(reposdir.glob("*.repo")).read_text()
    assert "gpgcheck=1" in text and "repo_gpgcheck=1" in text, text
    return reposdir


def test_dnf_installs_with_both_checks_and_refuses_a_changed_byte(
    server: Server, builds: tuple[Api, dict[str, int]], dnf: Dnf, tmp_path: Path
) -> None:
    _, ids = builds
    reposdir = enable(dnf, server, tmp_path, "signed")
    root = tmp_path / "root"
    root.mkdir()
    out = dnf(f"--setopt=reposdir={reposdir}", "--refresh", "install", STUB, NAME, installroot=root)
    assert f"{NAME}-1.0-1.fc40.noarch" in out, out
    assert "Importing GPG key" in out, out  # on first use, from the .repo file's gpgkey
    keys = root_keys(dnf, root)
    assert len(keys) == 1 and keys[0].startswith("gpg-pubkey-"), keys

    # The package changed by one byte on the server: dnf refuses it, nothing is installed.
    rpm = server.data_dir / "results" / OWNER / "signed" / F40 / f"{ids['signed']:08d}-{NAME}" / RPM
    original = rpm.read_bytes()
    try:
        changed = bytearray(original)
        changed[-64] ^= 0x01
        rpm.write_bytes(bytes(changed))
        root2 = tmp_path / "root2"
        root2.mkdir()
        error = dnf_fails(
            dnf,
            f"--setopt=reposdir={reposdir}",
            "--refresh",
            "install",
            STUB,
            NAME,
            installroot=root2,
        )
        assert not (root2 / "usr" / "bin" / NAME).exists(), error
        # An attacker who also rewrote the (unsigned) metadata is stopped by the package
        # signature alone: a copy of the repository with fresh createrepo_c metadata.
        mirror = tmp_path / "mirror"
        shutil.copytree(rpm.parent.parent, mirror, ignore=shutil.ignore_patterns("repodata"))
        run("createrepo_c", str(mirror))
        key_url = f"{project_url(server, 'signed')}/pubkey.gpg"
        plain = tmp_path / "repos-mirror"
        plain.mkdir()
        (plain / "mirror.repo").write_text(
            f"[mirror]\nbaseurl=file://{mirror}/\ngpgcheck=1\nrepo_gpgcheck=0\ngpgkey={key_url}\n"
        )
        root3 = tmp_path / "root3"
        root3.mkdir()
        error = dnf_fails(
            dnf, f"--setopt=reposdir={plain}", "--refresh", "install", STUB, NAME, installroot=root3
        )
        assert "GPG check FAILED" in error or "does not verify" in error, error
        assert not (root3 / "usr" / "bin" / NAME).exists(), error
    finally:
        rpm.write_bytes(original)


# ---------------------------------------------------------------- operations


def test_key_show_and_rotate_keep_installs_working(
    server: Server, builds: tuple[Api, dict[str, int]], dnf: Dnf, tmp_path: Path
) -> None:
    _, ids = builds
    gpg_home = tmp_path / "gpg"
    gpg_home.mkdir(mode=0o700)
    old_key = fetch(f"{project_url(server, 'signed')}/pubkey.gpg", tmp_path / "old.gpg")
    old_id = key_id(old_key, gpg_home).lower()
    shown = server.cli("key", "show", f"{OWNER}/signed")
    assert f"key id:      {old_id}" in shown and "expires:     never" in shown, shown
    assert "RSA 4096 bits" in shown, shown

    # A client that installed with the old key...
    reposdir = enable(dnf, server, tmp_path, "signed")
    root = tmp_path / "root"
    root.mkdir()
    dnf(f"--setopt=reposdir={reposdir}", "--refresh", "install", STUB, NAME, installroot=root)

    out = server.cli("key", "rotate", f"{OWNER}/signed")
    assert "re-signed" in out and f"pubkey-{old_id}.gpg" in out, out
    new_key = fetch(f"{project_url(server, 'signed')}/pubkey.gpg", tmp_path / "new.gpg")
    new_id = key_id(new_key, gpg_home).lower()
    assert new_id != old_id
    kept = fetch(f"{project_url(server, 'signed')}/pubkey-{old_id}.gpg", tmp_path / "kept.gpg")
    assert kept.read_bytes() == old_key.read_bytes()
    shown = server.cli("key", "show", f"{OWNER}/signed")
    assert f"key id:      {new_id}" in shown and old_id in shown.lower(), shown

    # Everything published is signed with the new key now, the metadata too.
    new_db, old_db = keyring(tmp_path, new_key), keyring(tmp_path, old_key)
    rpm = fetch(rpm_url(server, "signed", ids["signed"]), tmp_path / RPM)
    assert checksig(new_db, rpm).returncode == 0
    assert checksig(old_db, rpm).returncode != 0
    base = f"{project_url(server, 'signed')}/{F40}/repodata"
    repomd = fetch(f"{base}/repomd.xml", tmp_path / "repomd.xml")
    asc = fetch(f"{base}/repomd.xml.asc", tmp_path / "repomd.xml.asc")
    run("gpg", "--homedir", str(gpg_home), "--batch", "--import", str(new_key))
    run("gpg", "--homedir", str(gpg_home), "--batch", "--verify", str(asc), str(repomd))
    run("gpgconf", "--homedir", str(gpg_home), "--kill", "gpg-agent", check=False)

    # ...re-imports the key from gpgkey and keeps installing.
    out = dnf(f"--setopt=reposdir={reposdir}", "--refresh", "reinstall", NAME, installroot=root)
    assert "Importing GPG key" in out and new_id[-8:].upper() in out, out
    keys = root_keys(dnf, root)
    assert len(keys) == 2, keys


def test_a_project_published_unsigned_is_signed_on_the_next_start(
    tmp_path_factory: pytest.TempPathFactory, fixture_srpm, tmp_path: Path
) -> None:
    live = make_server(tmp_path_factory.mktemp("signing-upgrade"), chroots=(F40,))
    plain_config = live.config.read_text()
    live.config.write_text(plain_config + "\n[signing]\nsign = no\n")
    with serving(live):
        api = live.make_user(OWNER)
        api.ok("post", f"/api/coprs/{OWNER}/new/", name="old", chroots=F40)
        build_id = api.ok(
            "upload", f"/api/coprs/{OWNER}/old/new_build_upload/", fixture_srpm(NAME)
        )["id"]
        wait_for_build(api, build_id, finished, 120, live, "did not finish")
        status, _ = http_get(f"{project_url(live, 'old')}/pubkey.gpg")
        assert status == 404
    rpm_path = live.data_dir / "results" / OWNER / "old" / F40 / f"{build_id:08d}-{NAME}" / RPM
    empty = tmp_path / "rpmdb-empty"
    empty.mkdir()
    assert "NOT OK" in checksig(empty, rpm_path).stdout  # unsigned

    live.config.write_text(plain_config)  # signing on, as by default
    with serving(live) as proc:
        # Started without waiting for it; the signing goes on in the background.
        asc = live.data_dir / "results" / OWNER / "old" / F40 / "repodata" / "repomd.xml.asc"

        def signed() -> bool:
            assert proc.poll() is None, live.log_tail()
            return asc.exists()

        wait_for(signed, 60, "signed repomd.xml", interval=0.1, details=live.log_tail)
        pubkey = fetch(f"{project_url(live, 'old')}/pubkey.gpg", tmp_path / "old.gpg")
        db = keyring(tmp_path, pubkey)
        rpm = fetch(rpm_url(live, "old", build_id), tmp_path / RPM)
        srpm = next((live.data_dir / "results" / OWNER / "old" / "srpm-builds").glob("*/*.rpm"))
        for signed in (rpm, srpm):
            good = checksig(db, signed)
            assert good.returncode == 0 and "signatures OK" in good.stdout, good.stdout
        # The metadata was rebuilt: dnf's checksums match the signed packages.
        repomd = asc.with_name("repomd.xml")
        home = tmp_path / "gpg"
        home.mkdir(mode=0o700)
        run("gpg", "--homedir", str(home), "--batch", "--import", str(pubkey))
        run("gpg", "--homedir", str(home), "--batch", "--verify", str(asc), str(repomd))
        run("gpgconf", "--homedir", str(home), "--kill", "gpg-agent", check=False)
        status, _ = http_get(f"{project_url(live, 'old')}/{F40}/repodata/repomd.xml")
        assert status == 200


# ---------------------------------------------------------------- in-process


def agents_of(home: Path) -> str:
    return run("pgrep", "-f", f"gpg-agent --homedir {home}", check=False).stdout.strip()


async def test_signer_makes_one_key_per_project_once_and_stops_its_agent(tmp_path: Path) -> None:
    signer = Signer(tmp_path / "gnupg", key_length=2048)
    try:
        first, again, other = await asyncio.gather(
            signer.key("alice", "p1"), signer.key("alice", "p1"), signer.key("alice", "p2")
        )
        assert first == again and first.fingerprint != other.fingerprint
        assert signer.current("alice", "p1") == first
        assert stat.S_IMODE((tmp_path / "gnupg").stat().st_mode) == 0o700
        listed = await signer._gpg("--with-colons", "--list-secret-keys")
        assert listed.count("\nsec:") + listed.startswith("sec:") == 2, listed
        assert "RSA 2048 bits" in await signer.describe(first.fingerprint)
        await signer.forget("alice", "p1")  # its project was deleted
        assert signer.current("alice", "p1") is None
        listed = await signer._gpg("--with-colons", "--list-keys")
        assert first.fingerprint not in listed and other.fingerprint in listed
    finally:
        await signer.close()
    assert agents_of(tmp_path / "gnupg") == ""


async def test_waiting_for_a_key_is_bounded(tmp_path: Path, monkeypatch) -> None:
    signer = Signer(tmp_path / "gnupg", key_length=2048)
    calls = []
    release = asyncio.Event()
    real = signer._generate

    async def slow(owner: str, project: str, *, previous: tuple[str, ...]):
        calls.append(project)
        await release.wait()
        return await real(owner, project, previous=previous)

    monkeypatch.setattr(signer, "_generate", slow)
    try:
        with pytest.raises(SigningError, match=r"not ready after 0\.05 s"):
            await signer.key("alice", "p", wait=0.05)
        release.set()
        key = await signer.key("alice", "p", wait=60)  # the same generation, still going
        assert calls == ["p"] and signer.current("alice", "p") == key
    finally:
        await signer.close()


async def test_a_package_that_cannot_be_signed_is_not_published(aiohttp_client, make_app):
    from test_dispatcher import add_pending, add_project, start, wait_state

    # The fake builder's header-only RPMs have no payload digest: rpmsign refuses them.
    app, _ = await start(aiohttp_client, make_app, FakeBuilder(), sign=True)
    user, project_id = await add_project(app)
    build_id = await add_pending(app, project_id, user.id, chroots=("fedora-40-x86_64",))
    await wait_state(app, build_id, {"fedora-40-x86_64": "failed"}, within=60)
    build = await app[DB].read(store.get_build, build_id)
    reason = build.chroots[0].fail_reason or ""
    assert reason.startswith("could not sign the packages: rpmsign failed"), reason
    build_dir = app[PUBLISHER].build_dir("alice", "proj", "fedora-40-x86_64", build_id, "hello")
    assert not (build_dir / "success").exists() and (build_dir / "fail").is_file()
    assert reason in read_log(build_dir)
    # The key was made for it on the way (the project was stored without one).
    assert app[PUBLISHER].signer.current("alice", "proj") is not None


async def test_an_srpm_that_cannot_be_signed_fails_the_import(aiohttp_client, make_app):
    from test_dispatcher import add_project, start, wait_state

    app, client = await start(aiohttp_client, make_app, FakeBuilder(), sign=True)
    user, _ = await add_project(app)
    token = await auth.issue_token(app[DB], app[TOKEN_CACHE], user, 1)
    srpm = Path(app[CONFIG].data_dir) / "hello-1.0-1.src.rpm"
    write_fake_rpm(srpm, PackageInfo("hello", None, "1.0", "1", "src"))  # no payload digest
    build_id = await upload_srpm(client, token, "alice/proj", srpm)
    await wait_state(app, build_id, "failed", within=60)
    build = await app[DB].read(store.get_build, build_id)
    reason = build.chroots[0].fail_reason or ""
    assert reason.startswith("import failed: could not sign the packages: rpmsign"), reason
    import_dir = app[PUBLISHER].import_dir("alice", "proj", build_id)
    assert sorted(p.name for p in import_dir.iterdir()) == ["builder-live.log"]
    assert reason.removeprefix("import failed: ") in (import_dir / "builder-live.log").read_text()


def signature_of(rpm: Path) -> str:
    return run("rpm", "-qp", "--nosignature", "--qf", "%{RSAHEADER:pgpsig}", str(rpm)).stdout


async def test_a_signature_file_left_by_a_killed_rpmsign_does_not_stop_signing(
    tmp_path: Path, fixture_srpm
) -> None:
    signer = Signer(tmp_path / "gnupg", key_length=2048)
    srpm = Path(shutil.copy(fixture_srpm(NAME), tmp_path))
    leftover = srpm.with_name(srpm.name + ".sig")  # where rpmsign has gpg write
    leftover.write_bytes(b"half a signature")
    try:
        key = await signer.key("alice", "p")
        await signer.sign_rpms(key, [srpm])  # gpg would ask on a tty to overwrite it
    finally:
        await signer.close()
    assert key.key_id in signature_of(srpm)
    assert not leftover.exists()


async def test_only_a_project_older_than_its_key_has_its_packages_signed_on_arrival(
    aiohttp_client, make_app, fixture_srpm
) -> None:
    """A project created with signing on: each build signs its own packages once the key
    is there, so the key's arrival signs nothing (it would race those builds). A project
    published before signing was on gets everything signed."""
    from test_dispatcher import start

    from copr_lite.engine.projects import ensure_signed

    app, _ = await start(aiohttp_client, make_app, FakeBuilder(), sign=True)
    deps = app[DISPATCHER].deps
    srpms = {}
    for project, sign_earlier in (("new", False), ("old", True)):
        import_dir = app[PUBLISHER].import_dir("alice", project, 1)
        import_dir.mkdir(parents=True)
        srpms[project] = Path(shutil.copy(fixture_srpm(NAME), import_dir))
        await ensure_signed(deps, "alice", project, sign_earlier=sign_earlier)
    new_key = app[PUBLISHER].signer.current("alice", "new")
    old_key = app[PUBLISHER].signer.current("alice", "old")
    assert new_key.adopted and old_key.adopted
    assert signature_of(srpms["new"]).strip() == "(none)"
    assert old_key.key_id in signature_of(srpms["old"])
