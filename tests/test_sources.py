"""Making SRPMs from package sources (copr_lite.sources): real git repositories served over
HTTP on loopback (liveserver.git_http_server), real rpmspec, rpmbuild, make and bubblewrap."""

from __future__ import annotations

import asyncio
import http.server
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from copr_lite import processes, sources
from copr_lite.builders import read_rpm_headers
from copr_lite.errors import BadRequest
from copr_lite.forms import ValidationError
from copr_lite.liveserver import (
    commit_files,
    free_port,
    git_daemon,
    git_http_server,
    http_server,
    serving_directory,
)
from copr_lite.srpm import SrpmError
from copr_lite.testing import LogLines as Log
from copr_lite.testing import wait_until

LOOPBACK = ("127.0.0.0/8",)
MIB = 1024 * 1024


def spec_text(name: str = "hello-src", version: str = "1.0", source: str = "hello.sh") -> str:
    return f"""Name: {name}
Version: {version}
Release: 1
Summary: A package made from a source
License: MIT
Source0: {source}
BuildArch: noarch

%description
Made by copr_lite.sources tests.

%install
install -D -m 0755 %{{SOURCE0}} %{{buildroot}}/usr/bin/{name}

%files
/usr/bin/{name}
"""


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    path = tmp_path / "repos"
    path.mkdir()
    return path


@pytest.fixture
def git_base(repos: Path):
    with git_http_server(repos) as base:
        yield base


async def make(
    tmp_path: Path,
    source_type: str,
    values: dict[str, object],
    *,
    allowed: tuple[str, ...] = LOOPBACK,
    size_limit: int = 10 * MIB,
    time_limit: float = 60,
    log: Log | None = None,
) -> Path:
    source = sources.parse_source(source_type, values)
    work = tmp_path / "work"
    shutil.rmtree(work, ignore_errors=True)
    return await sources.make_srpm(
        source_type,
        source,
        work,
        tmp_path / "out",
        allowed_networks=allowed,
        size_limit=size_limit,
        time_limit=time_limit,
        log=log or Log(),
    )


async def header(path: Path) -> tuple[str, str]:
    (info,) = await read_rpm_headers([path])
    assert info.arch == "src"
    return info.name, info.version


# ---------------------------------------------------------------- rpkg


async def test_rpkg_builds_the_srpm_of_the_default_branch(tmp_path, repos, git_base):
    commit_files(repos / "hello", {"hello-src.spec": spec_text(), "hello.sh": "echo hi\n"})
    log = Log()
    srpm = await make(tmp_path, "scm", {"clone_url": f"{git_base}/hello"}, log=log)
    assert srpm.parent == tmp_path / "out"
    assert srpm.name == "hello-src-1.0-1.src.rpm"
    assert await header(srpm) == ("hello-src", "1.0")
    assert "Cloning" in log.text and "rpmbuild -bs" in log.text
    assert list((tmp_path / "out").iterdir()) == [srpm]


async def test_committish_tag_branch_and_commit_are_honoured(tmp_path, repos, git_base):
    repo = repos / "hello"
    first = commit_files(repo, {"hello-src.spec": spec_text(version="1.0"), "hello.sh": "1\n"})
    commit_files(repo, {"hello-src.spec": spec_text(version="2.0")}, tag="v2")
    commit_files(repo, {"hello-src.spec": spec_text(version="3.0")}, branch="next")
    commit_files(repo, {"hello-src.spec": spec_text(version="4.0")}, branch="main")
    url = f"{git_base}/hello"
    for committish, version in (("", "4.0"), ("v2", "2.0"), ("next", "3.0"), (first, "1.0")):
        srpm = await make(tmp_path, "scm", {"clone_url": url, "committish": committish})
        assert (await header(srpm))[1] == version, committish
        srpm.unlink()


async def test_subdirectory_and_explicit_spec(tmp_path, repos, git_base):
    commit_files(
        repos / "multi",
        {
            "pkg/a.spec": spec_text(name="alpha"),
            "pkg/b.spec": spec_text(name="beta"),
            "pkg/hello.sh": "echo\n",
            "top.spec": spec_text(name="top"),
        },
    )
    url = f"{git_base}/multi"
    values = {"clone_url": url, "subdirectory": "pkg/", "spec": "b.spec"}
    srpm = await make(tmp_path, "scm", values)
    assert (await header(srpm))[0] == "beta"
    with pytest.raises(SrpmError, match=r"several spec files in pkg \(a.spec, b.spec\)"):
        await make(tmp_path, "scm", {"clone_url": url, "subdirectory": "pkg"})
    with pytest.raises(SrpmError, match="subdirectory 'nothere' is not in the repository"):
        await make(tmp_path, "scm", {"clone_url": url, "subdirectory": "nothere"})
    (repos / "multi" / "outside").symlink_to(tmp_path)
    commit_files(repos / "multi", {})
    with pytest.raises(SrpmError, match="'outside' is not a directory in the work tree"):
        await make(tmp_path, "scm", {"clone_url": url, "subdirectory": "outside"})


async def test_a_missing_url_source_is_downloaded_when_allowed(tmp_path, repos, git_base):
    files = tmp_path / "files"
    files.mkdir()
    (files / "hello.sh").write_text("echo downloaded\n")
    with serving_directory(files) as files_base:
        spec = spec_text(source=f"{files_base}/hello.sh")
        commit_files(repos / "dl", {"hello-src.spec": spec})
        log = Log()
        srpm = await make(tmp_path, "scm", {"clone_url": f"{git_base}/dl"}, log=log)
    assert f"Downloading {files_base}/hello.sh" in log.text
    listed = await asyncio.to_thread(
        subprocess.run, ["rpm", "-qpl", str(srpm)], capture_output=True, text=True, check=True
    )
    listing = listed.stdout.split()
    assert listing == ["hello-src.spec", "hello.sh"]


async def test_a_url_source_on_a_refused_network_is_not_downloaded(tmp_path, repos, git_base):
    files = tmp_path / "files"
    files.mkdir()
    (files / "hello.sh").write_text("echo downloaded\n")
    # The repository's host (127.0.0.1) is allowed, the sources' host (127.0.0.2) is not.
    with serving_directory(files, host="127.0.0.2") as files_base:
        spec = spec_text(source=f"{files_base}/hello.sh")
        commit_files(repos / "dl", {"hello-src.spec": spec})
        values = {"clone_url": f"{git_base}/dl"}
        with pytest.raises(SrpmError, match=r"refused: 127\.0\.0\.2 is a loopback or private"):
            await make(tmp_path, "scm", values, allowed=("127.0.0.1/32",))
        srpm = await make(tmp_path, "scm", values, allowed=("127.0.0.0/8",))
        assert (await header(srpm))[0] == "hello-src"
        srpm.unlink()
        # A URL source whose file is in the repository is not downloaded at all.
        commit_files(repos / "dl", {"hello.sh": "echo committed\n"})
        log = Log()
        srpm = await make(tmp_path, "scm", values, allowed=("127.0.0.1/32",), log=log)
    assert "Source hello.sh is there already: not downloaded" in log.text
    assert "Downloading" not in log.text


# ---------------------------------------------------------------- make_srpm


MAKEFILE = """srpm:
\tmkdir -p $(outdir)
\trpmbuild -bs --define "_topdir /tmp/top" --define "_sourcedir $(CURDIR)" \\
\t  --define "_srcrpmdir $(outdir)" $(spec)
"""


async def test_make_srpm_with_copr_makefile(tmp_path, repos, git_base):
    commit_files(
        repos / "mk",
        {
            ".copr/Makefile": MAKEFILE,
            "sub/made.spec": spec_text(name="made-by-make"),
            "sub/hello.sh": "echo\n",
        },
    )
    values = {
        "clone_url": f"{git_base}/mk",
        "subdirectory": "sub",
        "spec": "made.spec",
        "source_build_method": "make_srpm",
    }
    log = Log()
    srpm = await make(tmp_path, "scm", values, log=log)
    assert (await header(srpm))[0] == "made-by-make"
    assert "Running make srpm" in log.text
    commit_files(repos / "nomk", {"sub/made.spec": spec_text()})
    values["clone_url"] = f"{git_base}/nomk"
    with pytest.raises(SrpmError, match=r"make_srpm needs the file \.copr/Makefile"):
        await make(tmp_path, "scm", values)


# ---------------------------------------------------------------- custom


async def test_custom_script_writing_a_spec(tmp_path):
    script = f"""#!/bin/sh
set -e
mkdir out
cat > out/from-script.spec <<'EOF'
{spec_text(name="from-script")}
EOF
echo 'echo hi' > out/hello.sh
"""
    log = Log()
    srpm = await make(tmp_path, "custom", {"script": script, "resultdir": "out"}, log=log)
    assert (await header(srpm))[0] == "from-script"
    assert "Running the custom script" in log.text


async def test_custom_script_producing_an_srpm(tmp_path):
    script = f"""cat > s.spec <<'EOF'
{spec_text(name="script-srpm", version="7")}
EOF
echo 'echo hi' > hello.sh
rpmbuild -bs --define "_topdir $PWD/top" --define "_sourcedir $PWD" \\
  --define "_srcrpmdir $PWD" s.spec
rm s.spec
"""
    srpm = await make(tmp_path, "custom", {"script": script})
    assert await header(srpm) == ("script-srpm", "7")


async def test_custom_script_failures(tmp_path):
    with pytest.raises(SrpmError, match="the custom script failed with exit code 3: bad luck"):
        await make(tmp_path, "custom", {"script": "echo bad luck\nexit 3\n"})
    with pytest.raises(SrpmError, match="left no SRPM and no spec file in the script's"):
        await make(tmp_path, "custom", {"script": "echo nothing\n"})
    with pytest.raises(SrpmError, match="the script did not make the result directory 'res'"):
        await make(tmp_path, "custom", {"script": "true\n", "resultdir": "res"})
    # Links must not lead the server out of the work tree.
    script = "ln -s / res\n"
    with pytest.raises(SrpmError, match="not a directory in the work tree"):
        await make(tmp_path, "custom", {"script": script, "resultdir": "res"})
    with pytest.raises(SrpmError, match=r"x\.src\.rpm is not a regular file"):
        await make(tmp_path, "custom", {"script": "ln -s /etc/hostname x.src.rpm\n"})


@pytest.mark.skipif(os.geteuid() != 0, reason="the server drops root only when it has it")
async def test_a_custom_script_of_a_root_server_runs_as_nobody(tmp_path):
    """Root, even in the sandbox, could read the host's secrets under /etc."""
    script = "id -u\nhead -c 1 /etc/shadow\n"
    log = Log()
    failed = r"custom script failed with exit code 1: .*Permission denied"
    with pytest.raises(SrpmError, match=failed):
        await make(tmp_path, "custom", {"script": script}, log=log)
    assert "65534" in log.text.splitlines()


def sleeping(marker: str) -> list[int]:
    """Processes running `sleep <marker>`."""
    wanted = f"sleep\0{marker}\0".encode()
    return [pid for pid, cmdline in processes.proc_files("cmdline") if cmdline == wanted]


async def test_time_limit_stops_the_step(tmp_path):
    started = time.monotonic()
    with pytest.raises(SrpmError, match="the custom script stopped: over the time limit of 1 s"):
        await make(tmp_path, "custom", {"script": "sleep 61\n"}, time_limit=1)
    assert time.monotonic() - started < 10
    assert sleeping("61") == []


async def test_cancelling_stops_the_step(tmp_path):
    making = asyncio.ensure_future(make(tmp_path, "custom", {"script": "sleep 62\n"}))
    await wait_until(lambda: asyncio.sleep(0, bool(sleeping("62"))))
    making.cancel()
    with pytest.raises(asyncio.CancelledError):
        await making
    assert sleeping("62") == []


async def test_size_limit_of_the_work_tree(tmp_path):
    script = "head -c 5000000 /dev/zero > big\nsleep 30\n"
    started = time.monotonic()
    with pytest.raises(SrpmError, match=r"the work tree grew over 4\.0 MiB"):
        await make(tmp_path, "custom", {"script": script}, size_limit=MIB)
    assert time.monotonic() - started < 10


async def test_no_network_inside_the_sandbox(tmp_path, repos, git_base):
    hits: list[str] = []

    class Count(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with http_server(Count) as base:
        port = base.rsplit(":", 1)[1]
        probe = (
            f"exec 3<>/dev/tcp/127.0.0.1/{port} && "
            "printf 'GET /probe HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3"
        )
        # The probe does reach the server from outside the sandbox.
        await asyncio.to_thread(subprocess.run, ["bash", "-c", probe], check=True)
        assert hits == ["/probe"]
        with pytest.raises(SrpmError, match="the custom script failed"):
            await make(tmp_path, "custom", {"script": f"#!/bin/bash\n{probe}\n"})
        commit_files(
            repos / "net",
            {".copr/Makefile": f"srpm:\n\tbash -c '{probe}'\n", "x.spec": spec_text()},
        )
        values = {"clone_url": f"{git_base}/net", "source_build_method": "make_srpm"}
        with pytest.raises(SrpmError, match="make srpm failed"):
            await make(tmp_path, "scm", values)
        assert hits == ["/probe"]


# ---------------------------------------------------------------- clone failures


async def test_clone_failures(tmp_path, repos, git_base):
    commit_files(repos / "hello", {"hello-src.spec": spec_text(), "hello.sh": "x\n"})
    with pytest.raises(SrpmError, match="'nope' is not a branch, tag or commit of"):
        await make(tmp_path, "scm", {"clone_url": f"{git_base}/hello", "committish": "nope"})
    with pytest.raises(SrpmError, match="git clone failed with exit code 128"):
        await make(tmp_path, "scm", {"clone_url": f"{git_base}/missing"})
    with pytest.raises(SrpmError, match="git clone failed"):
        await make(tmp_path, "scm", {"clone_url": f"http://127.0.0.1:{free_port()}/hello"})
    with pytest.raises(SrpmError, match=r"refused: 127\.0\.0\.1 is a loopback or private address"):
        await make(tmp_path, "scm", {"clone_url": f"{git_base}/hello"}, allowed=())
    commit_files(repos / "empty", {"README": "no spec here\n"})
    with pytest.raises(SrpmError, match="no spec file in the top of the repository"):
        await make(tmp_path, "scm", {"clone_url": f"{git_base}/empty"})
    with pytest.raises(SrpmError, match=r"no spec file other\.spec in"):
        await make(tmp_path, "scm", {"clone_url": f"{git_base}/empty", "spec": "other.spec"})


async def test_credentials_in_the_clone_url_stay_out_of_the_log(tmp_path, repos, git_base):
    commit_files(repos / "hello", {"hello-src.spec": spec_text(), "hello.sh": "x\n"})
    url = git_base.replace("http://", "http://someone:s3cret-word@") + "/hello"
    log = Log()
    srpm = await make(tmp_path, "scm", {"clone_url": url}, log=log)
    assert srpm.exists()
    log2 = Log()
    with pytest.raises(SrpmError) as failed:
        await make(tmp_path, "scm", {"clone_url": url + "-missing"}, log=log2)
    for text in (log.text, log2.text, str(failed.value)):
        assert "s3cret-word" not in text
    # A token given as the user name (as forges take one) stays out too.
    url = git_base.replace("http://", "http://tok3n-abcdefgh@") + "/hello-missing"
    log3 = Log()
    with pytest.raises(SrpmError) as failed:
        await make(tmp_path, "scm", {"clone_url": url}, log=log3)
    assert "tok3n-abcdefgh" not in log3.text + str(failed.value)
    assert "Cloning http://127.0.0.1" in log.text


async def test_a_host_name_is_resolved_once_and_git_connects_there(tmp_path, repos, git_base):
    commit_files(repos / "hello", {"hello-src.spec": spec_text(), "hello.sh": "x\n"})
    port = git_base.rsplit(":", 1)[1]
    log = Log()
    srpm = await make(tmp_path, "scm", {"clone_url": f"http://localhost:{port}/hello"}, log=log)
    assert (await header(srpm))[0] == "hello-src"
    assert f"Connecting to localhost port {port} (127.0.0.1)" in log.text
    with pytest.raises(SrpmError, match=r"refused: 127\.0\.0\.1 is a loopback .* \(localhost"):
        await make(tmp_path, "scm", {"clone_url": f"http://localhost:{port}/hello"}, allowed=())


async def test_git_connects_to_the_checked_address_only(tmp_path, repos, git_base, monkeypatch):
    """The name is looked up once, by the server: git connects to the address checked then.
    "pinned.invalid" resolves only through the server's look-up (the system's resolver knows
    no such name), so the clone works only if git uses the pinned address."""
    commit_files(repos / "hello", {"hello-src.spec": spec_text(), "hello.sh": "x\n"})
    port = int(git_base.rsplit(":", 1)[1])
    loop = asyncio.get_running_loop()
    looked_up = []

    async def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    url = f"http://pinned.invalid:{port}/hello"
    srpm = await make(tmp_path, "scm", {"clone_url": url})
    assert (await header(srpm))[0] == "hello-src"
    assert looked_up == ["pinned.invalid"]


async def test_clone_over_the_git_protocol(tmp_path, repos):
    commit_files(repos / "hello", {"hello-src.spec": spec_text(), "hello.sh": "x\n"})
    with git_daemon(repos) as base:
        port = base.rsplit(":", 1)[1]
        log = Log()
        srpm = await make(tmp_path, "scm", {"clone_url": f"git://localhost:{port}/hello"}, log=log)
        assert (await header(srpm))[0] == "hello-src"
        assert f"Connecting to localhost port {port} (127.0.0.1)" in log.text
        with pytest.raises(SrpmError, match="refused"):
            await make(tmp_path, "scm", {"clone_url": f"{base}/hello"}, allowed=())


# ---------------------------------------------------------------- parse_source


def test_parse_scm_fills_defaults():
    source = sources.parse_source("scm", {"clone_url": " https://example.com/x.git "})
    assert source == {
        "clone_url": "https://example.com/x.git",
        "committish": "",
        "subdirectory": "",
        "spec": "",
        "scm_type": "git",
        "source_build_method": "rpkg",
    }
    source = sources.parse_source(
        "scm",
        {
            "clone_url": "git://example.com/x",
            "committish": "v1.0",
            "subdirectory": "a/./b/",
            "spec": "x.spec",
            "scm_type": "git",
            "source_build_method": "make_srpm",
        },
    )
    assert source["subdirectory"] == "a/b"
    assert source["source_build_method"] == "make_srpm"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({}, "clone_url", "required"),
        ({"clone_url": "file:///srv/git/x"}, "clone_url", "ssh, file and local paths"),
        ({"clone_url": "ssh://git@example.com/x"}, "clone_url", "Only http, https and git"),
        ({"clone_url": "git@example.com:x.git"}, "clone_url", "Only http, https and git"),
        ({"clone_url": "/srv/git/x"}, "clone_url", "Only http, https and git"),
        ({"clone_url": "http://"}, "clone_url", "not a valid URL"),
        ({"clone_url": "http://h/x", "committish": "--upload-pack=x"}, "committish", "Not a"),
        ({"clone_url": "http://h/x", "subdirectory": "../x"}, "subdirectory", "'..'"),
        ({"clone_url": "http://h/x", "subdirectory": "/etc"}, "subdirectory", "relative"),
        ({"clone_url": "http://h/x", "spec": "x.txt"}, "spec", "must end with .spec"),
        ({"clone_url": "http://h/x", "scm_type": "svn"}, "scm_type", "SVN"),
        ({"clone_url": "http://h/x", "source_build_method": "tito"}, "source_build_method",
         "tito is not supported"),
        ({"clone_url": "http://h/x", "source_build_method": "x"}, "source_build_method",
         "rpkg or make_srpm"),
        ({"clone_url": 5}, "clone_url", "Must be text"),
    ],
)  # fmt: skip
def test_parse_scm_refusals(values, field, message):
    with pytest.raises(ValidationError) as refused:
        sources.parse_source("scm", values)
    assert refused.value.field == field
    assert message in refused.value.text


def test_parse_custom():
    source = sources.parse_source(
        "custom", {"script": "echo hi\r\n", "builddeps": " make  gcc ", "resultdir": "out/"}
    )
    assert source == {
        "script": "echo hi\n",
        "chroot": "fedora-latest-x86_64",
        "builddeps": "make gcc",
        "resultdir": "out",
        "repos": "",
    }
    source = sources.parse_source(
        "custom",
        {"script": "x", "builddeps": ["make", "gcc"], "repos": ["https://r.example/a"],
         "chroot": None, "resultdir": "."},
    )  # fmt: skip
    assert (source["builddeps"], source["repos"]) == ("make gcc", "https://r.example/a")
    assert (source["chroot"], source["resultdir"]) == ("fedora-latest-x86_64", "")
    for values, field in (
        ({}, "script"),
        ({"script": "x", "builddeps": ["make", 1]}, "builddeps"),
        ({"script": "x" * (64 * 1024 + 1)}, "script"),
        ({"script": "x", "resultdir": "../up"}, "resultdir"),
        ({"script": "x", "repos": "not a url"}, "repos"),
    ):
        with pytest.raises(ValidationError) as refused:
            sources.parse_source("custom", values)
        assert refused.value.field == field
    with pytest.raises(BadRequest, match="Unknown source type 'pypi'"):
        sources.parse_source("pypi", {})
