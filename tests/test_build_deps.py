"""BuildRequires installed into the build root from the chroot's repositories, for real.

The container builder with the image of `python -m copr_lite builder-image`: real dnf in
the container, repositories made here with rpmbuild and createrepo_c (the chroot's
"distribution" as a file:/// repository, an additional one served over HTTP on loopback),
and a real server for the project's own repository. Plus the parts without podman: the
repositories a job gets, their dnf configuration and the [repos] settings.
"""

from __future__ import annotations

import contextlib
import gzip
import http.server
import importlib.util
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from copr_lite import BuildJob, Chroot, ChrootResult, Outcome, PackageInfo
from copr_lite.builder_image import provides_spec
from copr_lite.config import ConfigError, load_config, render_config
from copr_lite.conformance import make_srpm
from copr_lite.liveserver import free_port, http_server, running
from copr_lite.repos import (
    METALINK,
    DnfRepo,
    check_entry,
    default_distribution_repos,
    dependency_repos,
    dnf_config,
)
from copr_lite.testing import BuilderPlugin, FakeBuilder, store_builds, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent))
from container_image import builder_image_or_skip
from test_builders import build, make_job

ROOT = Path(__file__).resolve().parent.parent
HOST_ARCH = platform.machine()
CHROOT = f"fedora-40-{HOST_ARCH}"
# The project's own repository, which the server would hold on disk (not made yet here).
OWN = f"http://copr.invalid/results/alice/demo/{CHROOT}/"


def _load_plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "test_build_deps_container", ROOT / "plugins" / "container.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


container = _load_plugin()


# ---------------------------------------------------------------- packages and repositories


def package_spec(
    name: str, *, requires: tuple[str, ...] = (), build: str = "", files: str = ""
) -> str:
    """A spec: noarch with one data file unless `files` says otherwise."""
    lines = [
        f"Name: {name}",
        "Version: 1.0",
        "Release: 1%{?dist}",
        "Summary: copr_lite build dependency test package",
        "License: MIT",
        *(f"BuildRequires: {req}" for req in requires),
    ]
    if not files:
        lines.append("BuildArch: noarch")
    lines += [
        "%global debug_package %{nil}",
        "%description",
        "Test package.",
        "%prep",
        "%build",
        build,
        "%install",
    ]
    if files:
        lines.append(files)
    else:
        lines += [
            f"mkdir -p %{{buildroot}}%{{_datadir}}/{name}",
            f"echo {name} > %{{buildroot}}%{{_datadir}}/{name}/{name}.txt",
            "%files",
            f"%{{_datadir}}/{name}/{name}.txt",
        ]
    return "\n".join(lines) + "\n"


HEADER_SPEC = """Name: copr-lite-demo-devel
Version: 1.0
Release: 1%{?dist}
Summary: A header the next build compiles against
License: MIT
BuildArch: noarch
%description
Installs copr_lite_demo.h.
%prep
%build
%install
mkdir -p %{buildroot}%{_includedir}
echo '#define COPR_LITE_DEMO_ANSWER 42' > %{buildroot}%{_includedir}/copr_lite_demo.h
%files
%{_includedir}/copr_lite_demo.h
"""


def consumer_spec(*requires: str) -> str:
    """copr-lite-demo: compiles a program with copr_lite_demo.h and runs it in %build."""
    build = """cat > demo.c <<'EOF'
#include <stdio.h>
#include <copr_lite_demo.h>
int main(void) { printf("answer=%d\\n", COPR_LITE_DEMO_ANSWER); return 0; }
EOF
gcc -o copr-lite-demo demo.c
./copr-lite-demo | tee answer.txt
grep -q answer=42 answer.txt
for f in %{_datadir}/copr-lite-*/*.txt; do echo "found $f"; done"""
    files = """install -D -m 0755 copr-lite-demo %{buildroot}%{_bindir}/copr-lite-demo
%files
%{_bindir}/copr-lite-demo"""
    return package_spec(
        "copr-lite-demo",
        requires=("copr-lite-demo-devel", "gcc", *requires),
        build=build,
        files=files,
    )


def srpm_of(text: str, work: Path, name: str) -> Path:
    spec = work / f"{name}.spec"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(text)
    return make_srpm(spec, work / "srpms")


def make_repo(directory: Path, specs: dict[str, str]) -> Path:
    """A repository of the binary packages of `specs` (rpmbuild -bb, createrepo_c)."""
    work = directory.parent / f"{directory.name}-build"
    for name, text in specs.items():
        spec = work / f"{name}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(text)
        defines = [f"_topdir {work / 'top'}", f"_dbpath {work / 'db'}", f"_rpmdir {directory}"]
        argv = ["rpmbuild", "-bb", *(x for d in defines for x in ("--define", d)), str(spec)]
        subprocess.run(argv, check=True, capture_output=True)
    subprocess.run(["createrepo_c", "-q", str(directory)], check=True)
    return directory


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[tuple[str, list[str]]]:
    """(URL, paths requested so far) of `directory` served on loopback."""
    requests: list[str] = []
    handler = type(
        "Handler",
        (CountingHandler,),
        {"requests": requests, "__init__": _handler_init(directory)},
    )
    with http_server(handler) as url:
        yield f"{url}/", requests


def _handler_init(directory: Path):  # type: ignore[no-untyped-def]
    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        http.server.SimpleHTTPRequestHandler.__init__(
            self, *args, directory=str(directory), **kwargs
        )

    return init


DISTRO_PACKAGES = tuple(f"copr-lite-distro-{n}" for n in range(1, 6))


@pytest.fixture(scope="module")
def distro_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chroot's "distribution": five noarch packages in a file:/// repository."""
    root = tmp_path_factory.mktemp("distro")
    return make_repo(root / "repo", {name: package_spec(name) for name in DISTRO_PACKAGES})


@pytest.fixture(scope="module")
def extra_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    """An additional repository served over HTTP: copr-lite-extra."""
    root = tmp_path_factory.mktemp("extra")
    repo = make_repo(root / "repo", {"copr-lite-extra": package_spec("copr-lite-extra")})
    with serve_directory(repo) as served:
        yield served


@pytest.fixture(scope="module")
def image() -> str:
    return builder_image_or_skip("build dependency tests")


def job(srpm: Path, **fields: object) -> BuildJob:
    return make_job(srpm, CHROOT, build_id=9, **fields)


# ---------------------------------------------------------------- the container builder


async def test_distribution_repository_installs_build_requires(
    image: str, distro_repo: Path, tmp_path: Path
):
    """Every repository local: one container, no network, dnf installs, %build sees it."""
    builder = container.ContainerBuilder(image=image, cache_dir=tmp_path / "cache")
    build_script = "cat %{_datadir}/copr-lite-distro-3/copr-lite-distro-3.txt"
    srpm = srpm_of(
        package_spec("copr-lite-uses-distro", requires=DISTRO_PACKAGES[2:4], build=build_script),
        tmp_path,
        "copr-lite-uses-distro",
    )
    result, run = await build(
        builder,
        job(
            srpm,
            distro_repos=(distro_repo.as_uri(),),
            repos=(OWN,),
            local_repos={OWN: tmp_path / "no-repository-yet"},
        ),
        tmp_path / "b",
    )
    assert result.status == Outcome.SUCCEEDED, run.text
    assert f"repository copr-lite-distro-1: {distro_repo} (read-only)" in run.lines
    assert (
        f"copr-lite-project: no repository at {tmp_path / 'no-repository-yet'}, skipped"
        in run.lines
    )
    assert "BuildRequires: copr-lite-distro-3, copr-lite-distro-4" in run.lines
    assert "dependencies: downloading" not in run.text  # nothing fetched: one container
    assert any(line.startswith("Installed:") for line in run.lines), run.text
    assert "copr-lite-distro-3" in run.lines  # %build printed the installed file


async def test_missing_dependency_fails_with_dnfs_message(
    image: str, distro_repo: Path, tmp_path: Path
):
    builder = container.ContainerBuilder(image=image, cache_dir=tmp_path / "cache")
    srpm = srpm_of(consumer_spec(), tmp_path, "copr-lite-demo")
    result, run = await build(
        builder, job(srpm, distro_repos=(distro_repo.as_uri(),)), tmp_path / "b"
    )
    assert result == ChrootResult.failed(
        "the build dependencies cannot be installed: Unable to find a match: copr-lite-demo-devel"
    ), run.text
    assert "No match for argument: copr-lite-demo-devel" in run.lines
    assert container.DEPS_FAILED in run.lines
    assert not any("rpmbuild" in line and "-ra" in line for line in run.lines[-3:])


async def test_additional_repository_over_http_and_the_package_cache(
    image: str, distro_repo: Path, extra_repo: tuple[str, list[str]], tmp_path: Path
):
    """A fetched repository: downloaded in a first container with network, installed and
    built in a second one without; the next build finds the package in the cache."""
    url, requests = extra_repo
    cache = tmp_path / "cache"
    builder = container.ContainerBuilder(image=image, cache_dir=cache)
    build_script = (
        "cat %{_datadir}/copr-lite-extra/copr-lite-extra.txt; cat /etc/resolv.conf || true"
    )
    srpm = srpm_of(
        package_spec("copr-lite-uses-extra", requires=("copr-lite-extra",), build=build_script),
        tmp_path,
        "copr-lite-uses-extra",
    )
    # A repository that cannot be reached (a closed port) is skipped, and the log says so.
    unreachable = "http://127.0.0.1:9/nothing/"
    the_job = job(
        srpm,
        distro_repos=(distro_repo.as_uri(), unreachable),
        repos=(OWN, url),
        local_repos={OWN: tmp_path / "no-repository-yet"},
    )
    requests.clear()
    result, run = await build(builder, the_job, tmp_path / "first")
    assert result.status == Outcome.SUCCEEDED, run.text
    assert f"repository copr-lite-repo-4: {url}" in run.lines
    assert any("Ignoring repositories: copr-lite-distro-2" in line for line in run.lines), run.text
    assert any(line.startswith("dependencies: downloading with network host") for line in run.lines)
    assert "copr-lite-extra" in run.lines  # %build read the installed file
    rpm_gets = [path for path in requests if path.endswith(".rpm")]
    assert rpm_gets == ["/noarch/copr-lite-extra-1.0-1.noarch.rpm"], requests
    assert list(cache.glob(f"{CHROOT}/**/copr-lite-extra-1.0-1.noarch.rpm"))

    requests.clear()
    result, run = await build(builder, the_job, tmp_path / "second")
    assert result.status == Outcome.SUCCEEDED, run.text
    assert not [path for path in requests if path.endswith(".rpm")], requests


async def test_without_build_requires_the_root_stays_read_only(image: str, tmp_path: Path):
    builder = container.ContainerBuilder(image=image, cache_dir=tmp_path / "cache")
    srpm = srpm_of(
        package_spec("copr-lite-nodeps", build="touch /usr/x && exit 1 || true"), tmp_path, "n"
    )
    result, run = await build(builder, job(srpm), tmp_path / "b")
    assert result.status == Outcome.SUCCEEDED, run.text
    assert "BuildRequires: none" in run.lines
    assert any("Read-only file system" in line for line in run.lines), run.text
    assert not (tmp_path / "cache").exists()


def test_podman_command_lines_of_the_two_phases(tmp_path: Path):
    builder = container.ContainerBuilder(image="img")
    the_job = job(tmp_path / "x.src.rpm")
    argv = builder.run_argv(
        the_job, "n", tmp_path, "/srpm/x", network="host", read_only=False, volumes=["/a:/b:ro"]
    )
    assert "--network=host" in argv and "--read-only" not in argv
    assert argv[argv.index("/a:/b:ro") - 1] == "-v"
    assert builder.dnf_args(the_job, ["a", "b >= 1"], "--cacheonly") == [
        "dnf", "-y", "--config", "/build/dnf.conf", "--releasever", "40",
        "--cacheonly", "install", "a", "b >= 1",
    ]  # fmt: skip
    script = container._deps_script(["a b", "c"], ["dnf", "install", "a b"], ["rpmbuild", "/s"])
    assert script == (
        f"echo \"{container.DEPS_START}\"; if rpm -q --whatprovides 'a b' c >/dev/null 2>&1; "
        f"then echo \"{container.DEPS_PRESENT}\"; else dnf install 'a b' || "
        f'{{ echo "{container.DEPS_FAILED}"; exit 1; }}; fi; echo "{container.DEPS_DONE}"; '
        "exec rpmbuild /s"
    )


def test_dnf_error_lines():
    assert container.dnf_error(
        ["x", "Error: Unable to find a match: foo", container.DEPS_FAILED]
    ) == ("Unable to find a match: foo")
    problem = [
        "Error: ",
        " Problem: conflicting requests",
        "  - nothing provides bar needed by foo",
    ]
    assert container.dnf_error(problem) == (
        "Problem: conflicting requests - nothing provides bar needed by foo"
    )
    assert container.dnf_error(["sh: 1: dnf: not found", container.DEPS_FAILED]) == (
        "sh: 1: dnf: not found"
    )


# ---------------------------------------------------------------- repositories and settings


def test_public_layout_by_default():
    fedora = default_distribution_repos(Chroot.parse("fedora-40-x86_64"))
    assert fedora == (
        "metalink=https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever&arch=$basearch",
        "metalink=https://mirrors.fedoraproject.org/metalink?repo=updates-released-f$releasever&arch=$basearch",
    )
    rawhide = default_distribution_repos(Chroot.parse("fedora-rawhide-aarch64"))
    assert rawhide == (
        "metalink=https://mirrors.fedoraproject.org/metalink?repo=rawhide&arch=$basearch",
    )
    epel = default_distribution_repos(Chroot.parse("epel-9-x86_64"))
    assert [e.split("repo=")[1].split("&")[0] for e in epel] == [
        "centos-baseos-9-stream",
        "centos-appstream-9-stream",
        "centos-crb-9-stream",
        "epel-9",
    ]
    assert default_distribution_repos(Chroot.parse("mageia-9-x86_64")) == ()


def test_repos_settings(tmp_path: Path):
    ini = tmp_path / "copr-lite.ini"
    ini.write_text(
        "[repos]\n"
        "fedora-40-x86_64 = file:///srv/mirror/fedora/$releasever/$basearch/\n"
        "    https://mirror.example.org/updates/40/x86_64/\n"
    )
    config = load_config(ini)
    assert config.distribution_repos("fedora-40-x86_64") == (
        "file:///srv/mirror/fedora/$releasever/$basearch/",
        "https://mirror.example.org/updates/40/x86_64/",
    )
    assert config.distribution_repos("epel-9-x86_64")[-1].endswith("repo=epel-9&arch=$basearch")
    # config check shows both: the configured chroot, and what the others default to.
    rendered = render_config(config)
    assert (
        "fedora-40-x86_64 = file:///srv/mirror/fedora/$releasever/$basearch/ "
        "https://mirror.example.org/updates/40/x86_64/\n" in rendered
    )
    assert "\n# epel-9-x86_64 = metalink=https://mirrors.centos.org/metalink?repo=" in rendered
    assert load_config(ini).repos == load_config(_write(tmp_path, rendered)).repos
    for text, error in (
        ("[repos]\nfedora-40 = http://x/\n", r"\[repos\] fedora-40: a chroot name must look like"),
        ("[repos]\nfedora-40-x86_64 = ftp:/x\n", r"'ftp:/x' is not a repository"),
        (
            "[repos]\nfedora-40-x86_64 = metalink=file:///m\n",
            "a metalink is fetched over the network",
        ),
        ("[repos]\nfedora-40-x86_46 = http://x/\n", "fedora-40-x86_46: not a chroot this server"),
    ):
        ini.write_text(text)
        with pytest.raises(ConfigError, match=error):
            load_config(ini)
    assert check_entry(METALINK + "https://m.example/x") == "metalink=https://m.example/x"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rendered.ini"
    path.write_text(text)
    return path


def test_dependency_repos_mount_local_ones_and_fetch_the_rest(tmp_path: Path):
    chroot = Chroot.parse("fedora-40-x86_64")
    own = "http://srv:8080/results/alice/demo/fedora-40-x86_64/"
    repos = dependency_repos(
        chroot,
        [
            "metalink=https://m.example/?repo=f-$releasever&arch=$basearch",
            "file:///srv/m/$releasever/",
        ],
        [own, "https://extra.example/$basearch/"],
        {own: tmp_path / "own"},
    )
    assert repos == [
        DnfRepo("copr-lite-distro-1", "https://m.example/?repo=f-40&arch=x86_64", True, None),
        DnfRepo("copr-lite-distro-2", "file:///repos/2", False, Path("/srv/m/40")),
        DnfRepo("copr-lite-project", "file:///repos/3", False, tmp_path / "own"),
        DnfRepo("copr-lite-repo-4", "https://extra.example/x86_64/", False, None),
    ]
    assert [r.needs_network for r in repos] == [True, False, False, True]
    # A user's repository cannot name a directory of the build machine.
    (mounted,) = dependency_repos(chroot, [], ["file:///etc/"], {})
    assert mounted.source is None and mounted.url == "file:///etc/"
    text = dnf_config(repos, "/var/cache/x")
    assert "reposdir=\ncachedir=/var/cache/x\nkeepcache=1\n" in text
    assert "[copr-lite-distro-1]\nname=copr-lite-distro-1\nmetalink=https://m.example/" in text
    assert "[copr-lite-project]\nname=copr-lite-project\nbaseurl=file:///repos/3\n" in text
    assert "metadata_expire=0\nskip_if_unavailable=1\n" in text


async def test_the_dispatcher_hands_every_repository_to_the_builder(aiohttp_client, make_app):
    from copr_lite import store
    from copr_lite.keys import CONFIG, DB, DISPATCHER
    from copr_lite.testing import add_user

    fake = FakeBuilder()
    app = make_app(
        plugins=[BuilderPlugin(fake)],
        chroots={"fedora-40-x86_64": "fake", "epel-9-x86_64": "fake"},
        repos={"fedora-40-x86_64": ("file:///srv/fedora/",)},
        base_url="http://copr.example",
    )
    await aiohttp_client(app)
    user, _ = await add_user(app, "alice")
    project_id = await app[DB].write(
        store.create_project,
        user.id,
        {"name": "demo", "repos": "copr://bob/libs https://extra.example/r/"},
        ["fedora-40-x86_64", "epel-9-x86_64"],
    )
    await app[DB].write(store.set_chroot_packages, project_id, "fedora-40-x86_64", "gcc make")
    # A chroot's own extra repositories follow the build's, copr:// names resolved alike.
    epel_repos = "copr://carol/tools https://extra.example/r/ https://epel-only.example/"
    await app[DB].write(store.set_chroot_repos, project_id, "epel-9-x86_64", epel_repos)

    def insert(conn):  # type: ignore[no-untyped-def]
        (build_id,) = store_builds(
            conn, project_id, user.id, ["http://x.example/p-1-1.src.rpm"],
            ["fedora-40-x86_64", "epel-9-x86_64"], timeout=60,
            repos="copr://bob/libs https://extra.example/r/",
        )  # fmt: skip
        store.import_succeeded(
            conn, build_id, "/nonexistent/p.src.rpm", "s", PackageInfo("p", None, "1", "1", "src")
        )

    await app[DB].write(insert)
    app[DISPATCHER].wake()
    await wait_until(lambda: _count(fake, 2), within=15)
    jobs = {j.chroot.name: j for j in fake.jobs}
    results = app[CONFIG].data_dir / "results"
    fedora = jobs["fedora-40-x86_64"]
    assert fedora.distro_repos == ("file:///srv/fedora/",)
    assert fedora.repos == (
        "http://copr.example/results/alice/demo/fedora-40-x86_64/",
        "http://copr.example/results/bob/libs/fedora-40-x86_64/",
        "https://extra.example/r/",
    )
    assert fedora.local_repos == {
        "http://copr.example/results/alice/demo/fedora-40-x86_64/": results
        / "alice/demo/fedora-40-x86_64",
        "http://copr.example/results/bob/libs/fedora-40-x86_64/": results
        / "bob/libs/fedora-40-x86_64",
    }
    assert fedora.buildroot_pkgs == ("gcc", "make")
    epel = jobs["epel-9-x86_64"]
    assert epel.distro_repos == default_distribution_repos(Chroot.parse("epel-9-x86_64"))
    assert epel.repos == (
        "http://copr.example/results/alice/demo/epel-9-x86_64/",
        "http://copr.example/results/bob/libs/epel-9-x86_64/",
        "https://extra.example/r/",  # once, though both the build and the chroot name it
        "http://copr.example/results/carol/tools/epel-9-x86_64/",
        "https://epel-only.example/",
    )
    assert epel.local_repos[epel.repos[3]] == results / "carol/tools/epel-9-x86_64"
    assert epel.buildroot_pkgs == ()


async def _count(fake: FakeBuilder, n: int) -> bool:
    return len(fake.jobs) >= n


def test_debian_image_provides_its_toolchain():
    spec = provides_spec({"gcc": "12.2.0", "bash": "5.2.15", "libc6-dev": "2.36"})
    assert "Provides: gcc = 12.2.0\nProvides: /usr/bin/gcc\nProvides: /usr/bin/cc" in spec
    assert "Provides: /bin/sh" in spec and "Provides: glibc-devel = 2.36" in spec
    assert "make" not in spec  # only what the image has


# ---------------------------------------------------------------- the real server


@pytest.fixture(scope="module")
def server_with_container(
    image: str, distro_repo: Path, extra_repo: tuple[str, list[str]], tmp_path_factory
):
    from test_e2e import Server, serving

    work = tmp_path_factory.mktemp("deps-server")
    port = free_port()
    data_dir = work / "data"
    config = work / "copr-lite.ini"
    config.write_text(
        f"[server]\nport = {port}\ndata_dir = {data_dir}\n"
        "[builds]\nsrpm_allowed_networks = 127.0.0.0/8\n"
        "[signing]\nkey_length = 2048\n"
        f"[chroots]\n{CHROOT} = container\n"
        f"[repos]\n{CHROOT} = {distro_repo.as_uri()}\n"
        f"[plugin:container]\nimage = {image}\n"
    )
    server = Server(f"http://127.0.0.1:{port}", work, config, data_dir, [])
    with serving(server):
        yield server
    text = server.logs[0].read_text(errors="replace")
    assert "Traceback" not in text, server.log_tail(20000)


def wait_build(api, build_id: int, within: float = 240) -> dict:  # type: ignore[no-untyped-def]
    from test_e2e import wait_for_build

    ended = ("succeeded", "failed", "canceled")
    return wait_for_build(api, build_id, lambda d: d["status"] in ended, within, None, interval=0.2)


def test_a_dependency_built_first_in_the_project_is_installed_for_the_next_build(
    server_with_container, extra_repo: tuple[str, list[str]], tmp_path: Path
):
    """The header package, then a package that BuildRequires it (and gcc from the image,
    a distribution package and one of an additional repository); in another project
    without the header the same package fails, naming it."""
    server = server_with_container
    url, _ = extra_repo
    api = server.make_user("alice")
    api.ok("post", "/api/coprs/alice/new/", name="libs", chroots=CHROOT, repos=url)
    api.ok("post", "/api/coprs/alice/new/", name="empty", chroots=CHROOT)
    header = srpm_of(HEADER_SPEC, tmp_path, "copr-lite-demo-devel")
    consumer = srpm_of(
        consumer_spec("copr-lite-distro-1", "copr-lite-extra"), tmp_path, "copr-lite-demo"
    )

    first = api.ok("upload", "/api/coprs/alice/libs/new_build_upload/", header)["id"]
    assert wait_build(api, first)["status"] == "succeeded"
    second = api.ok("upload", "/api/coprs/alice/libs/new_build_upload/", consumer)["id"]
    detail = wait_build(api, second)
    log = _log(server, "alice/libs", second)
    assert detail["status"] == "succeeded", log
    assert "answer=42" in log.splitlines()
    assert "found /usr/share/copr-lite-distro-1/copr-lite-distro-1.txt" in log
    assert "found /usr/share/copr-lite-extra/copr-lite-extra.txt" in log
    results = server.data_dir / "results/alice/libs" / CHROOT
    assert f"repository copr-lite-project: {results} (read-only)" in log

    third = api.ok("upload", "/api/coprs/alice/empty/new_build_upload/", consumer)["id"]
    detail = wait_build(api, third)
    log = _log(server, "alice/empty", third)
    assert detail["status"] == "failed", log
    assert "No match for argument: copr-lite-demo-devel" in log
    reason = api.ok("get", f"/api/coprs/build/{third}/")
    assert "copr-lite-demo-devel" in str(reason), reason


def _log(server, project: str, build_id: int) -> str:  # type: ignore[no-untyped-def]
    """The chroot's log, compressed (as every ended chroot's is) or not yet."""
    (path,) = (server.data_dir / "results" / project / CHROOT).glob(
        f"{build_id:08d}-*/builder-live.log*"
    )
    return gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()


def test_a_remote_worker_fetches_the_project_repository_from_the_server(
    image: str, distro_repo: Path, tmp_path_factory, tmp_path: Path
):
    """A worker with the container builder gets the repositories in its job and reaches the
    project's repository over HTTP from the server (a first container with network)."""
    import signal

    from test_e2e import Server, serving

    work = tmp_path_factory.mktemp("deps-remote")
    port = free_port()
    config = work / "copr-lite.ini"
    config.write_text(
        f"[server]\nport = {port}\ndata_dir = {work / 'data'}\naccess_log = no\n"
        "[signing]\nkey_length = 2048\n"
        f"[chroots]\n{CHROOT} = remote\n"
        f"[repos]\n{CHROOT} = {distro_repo.as_uri()}\n"
    )
    server = Server(f"http://127.0.0.1:{port}", work, config, work / "data", [])
    worker_config = work / "worker.ini"
    worker_config.write_text(f"[server]\ndata_dir = {work / 'worker-data'}\n")
    with serving(server):
        api = server.make_user("alice")
        created = server.cli("worker-token", "create", "deps-1")
        token = next(line.split()[1] for line in created.splitlines() if line.startswith("token:"))
        api.ok("post", "/api/coprs/alice/new/", name="libs", chroots=CHROOT)
        log_path = work / "worker.log"
        command = [sys.executable, "-m", "copr_lite", "worker", "--server", server.url]
        command += ["--builder", "container", "--chroots", CHROOT, "--config", str(worker_config)]
        with running(
            command,
            log_path,
            work,
            env={"COPR_LITE_WORKER_TOKEN": token},
        ) as worker:
            try:
                header = srpm_of(HEADER_SPEC, tmp_path, "copr-lite-demo-devel")
                consumer = srpm_of(consumer_spec("copr-lite-distro-2"), tmp_path, "copr-lite-demo")
                first = api.ok("upload", "/api/coprs/alice/libs/new_build_upload/", header)["id"]
                assert wait_build(api, first)["status"] == "succeeded", log_path.read_text()
                second = api.ok("upload", "/api/coprs/alice/libs/new_build_upload/", consumer)
                detail = wait_build(api, second["id"])
                log = _log(server, "alice/libs", second["id"])
                assert detail["status"] == "succeeded", log + log_path.read_text()
            finally:
                worker.send_signal(signal.SIGTERM)
                assert worker.wait(timeout=60) == 0, log_path.read_text()
    own = f"{server.url}/results/alice/libs/{CHROOT}/"
    assert f"repository copr-lite-project: {own}" in log
    assert f"repository copr-lite-distro-1: {distro_repo} (read-only)" in log
    assert "answer=42" in log.splitlines()
    assert "found /usr/share/copr-lite-distro-2/copr-lite-distro-2.txt" in log


async def test_the_build_cannot_pass_for_the_dependency_phase(
    image: str, distro_repo: Path, tmp_path: Path
):
    """Only the first phase marker counts: a build printing one fails as a build."""
    builder = container.ContainerBuilder(image=image, cache_dir=tmp_path / "cache")
    script = f'echo "{container.DEPS_FAILED}"; exit 1'
    srpm = srpm_of(
        package_spec("copr-lite-spoof", requires=DISTRO_PACKAGES[:1], build=script), tmp_path, "s"
    )
    result, run = await build(
        builder, job(srpm, distro_repos=(distro_repo.as_uri(),)), tmp_path / "b"
    )
    assert result.status == Outcome.FAILED, run.text
    assert result.fail_reason.startswith("rpmbuild failed with exit code 1"), result.fail_reason


async def test_one_dnf_at_a_time_per_cache_even_across_processes(tmp_path: Path):
    """Two builders with locks of their own (as in two processes) still take turns."""
    import asyncio

    path = tmp_path / "turn.lock"
    first = await container._CacheTurn.take(asyncio.Lock(), path)
    second = asyncio.ensure_future(container._CacheTurn.take(asyncio.Lock(), path))
    await asyncio.sleep(0.3)
    assert not second.done()  # the flock held by the first
    first.release()
    first.release()  # a second release is harmless
    turn = await asyncio.wait_for(second, 5)
    turn.release()
    # Cancelled while waiting, the lock is given back.
    lock = asyncio.Lock()
    holder = await container._CacheTurn.take(asyncio.Lock(), path)
    waiting = asyncio.ensure_future(container._CacheTurn.take(lock, path))
    await asyncio.sleep(0.2)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    assert not lock.locked()
    holder.release()


def test_builder_image_command(image: str):
    """Quick when podman has the image: it prints the name; a missing podman is one line."""
    argv = [sys.executable, "-m", "copr_lite", "builder-image"]
    started = time.monotonic()
    done = subprocess.run([*argv, "--quiet"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{image}\n"
    assert time.monotonic() - started < 30
    missing = subprocess.run(
        [*argv, "--podman", "/nonexistent/podman"], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        "copr_lite: /nonexistent/podman is not installed (apt-get install podman runc)"
    )
