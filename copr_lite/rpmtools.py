"""The rpm helpers the builders share: what an SRPM asks of the host, rpmbuild's command
line, reading a failure out of a build's output, and the files a build leaves.

Every builder plugin (rpmbuild, container, mock, remote) and the remote worker import these
from here; a plugin never loads another plugin. This module imports only the standard
library and `copr_lite.processes`.
"""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from . import processes

if TYPE_CHECKING:
    from .builders import BuildJob

_BAD_EXIT = re.compile(r"Bad exit status from \S+ \((%\w+)\)")
_RPM_ERROR = re.compile(r"^error:\s*(.*)$")
_HASH_CHUNK = 1024 * 1024


def host_arch() -> str:
    """The arch this host builds natively (`uname -m`)."""
    return platform.machine()


def dep_name(requirement: str) -> str:
    """The name part of a dependency: "foo >= 1.0" -> "foo"."""
    return requirement.split()[0] if requirement.split() else ""


class SrpmFacts(NamedTuple):
    """What a builder checks before building: BuildRequires (rpmlib() features left
    out), BuildArch, ExclusiveArch and ExcludeArch."""

    requires: list[str]
    build_arches: list[str]
    exclusive: list[str]
    exclude: list[str]


async def srpm_facts(srpm: Path) -> SrpmFacts:
    """Read the `SrpmFacts` of an SRPM with one rpm call; ValueError when rpm cannot."""
    fmt = (
        "B:[%{BUILDARCHS} ]\\nI:[%{EXCLUSIVEARCH} ]\\nX:[%{EXCLUDEARCH} ]\\n[R:%{REQUIRENEVRS}\\n]"
    )
    query = ["-qp", "--nosignature", "--nodigest", "--qf", fmt, str(srpm)]
    with tempfile.TemporaryDirectory(prefix="copr-lite-rpmdb-") as dbpath:
        code, raw_out, raw_err = await processes.run_captured(
            ["rpm", "--define", f"_dbpath {dbpath}", *query]
        )
    out, err = raw_out.decode("utf-8", "replace"), raw_err.decode("utf-8", "replace")
    if code != 0:
        raise ValueError(err.strip().splitlines()[-1] if err.strip() else "rpm -qp failed")
    fields: dict[str, list[str]] = {}
    requires = []
    for line in out.splitlines():
        kind, value = line[:1], line[2:]
        if line[1:2] != ":":
            continue
        if kind == "R":
            if value.strip() and not value.startswith("rpmlib("):
                requires.append(value.strip())
        else:
            fields[kind] = value.split()
    return SrpmFacts(requires, fields.get("B", []), fields.get("I", []), fields.get("X", []))


def arch_refusal(
    build_arches: list[str], exclusive: list[str], exclude: list[str], target: str, host: str
) -> str | None:
    """Why a package cannot be built for `target` on this `host`, or None."""
    if exclusive and target not in exclusive and "noarch" not in exclusive:
        return f"architecture {target} is not in the package's ExclusiveArch: {' '.join(exclusive)}"
    if target in exclude:
        return f"architecture {target} is in the package's ExcludeArch"
    if build_arches and all(arch == "noarch" for arch in build_arches):
        return None
    if target != host:
        return (
            f"cannot build an arch-specific package for {target} on this {host} host "
            "(no cross compiler or emulation; only noarch packages build for other arches)"
        )
    return None


def chroot_summary(job: BuildJob) -> str:
    """The build log's line about the chroot: its macros and whether there is network."""
    macros = " ".join(f"%{k}={v}" for k, v in job.chroot.macros.items()) or "no dist macros"
    return (
        f"chroot {job.chroot.name}: {macros}; network {'enabled' if job.enable_net else 'disabled'}"
    )


def rpmbuild_args(
    rpmbuild: str, job: BuildJob, *, nodeps: bool, target: str | None, private_rpmdb: bool = True
) -> list[str]:
    """rpmbuild's command line for a job built under /build (`_topdir` /build/top,
    `_tmppath` /build/tmp), with the chroot's macros; `private_rpmdb=False` keeps the build
    root's own rpm database (where installed BuildRequires are recorded)."""
    args = [
        rpmbuild,
        "--define", "_topdir /build/top",
        "--define", "_tmppath /build/tmp",
    ]  # fmt: skip
    if private_rpmdb:
        args += ["--define", "_dbpath /build/rpmdb"]
    for macro, value in job.chroot.macros.items():
        args += ["--define", f"{macro} {value}"]
    if nodeps:
        args.append("--nodeps")
    if target:
        args += ["--target", target]
    return args


def short(text: str, limit: int = 300) -> str:
    """`text` on one line, cut to `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def last_line(lines: Sequence[str]) -> str:
    """The last non-empty line, made short, or "no output"."""
    for line in reversed(lines):
        if line.strip():
            return short(line.strip())
    return "no output"


def error_line(lines: Sequence[str], error: re.Pattern[str] = _RPM_ERROR) -> str | None:
    """The last line matching `error` (its first group is the message), made short, or None.

    A "Bad exit status from ... (%check)" names the failed scriptlet; the spec's own last
    words before it say more, so they are given with it."""
    for index in range(len(lines) - 1, -1, -1):
        match = error.match(lines[index].strip())
        if not match:
            continue
        message = match.group(1)
        bad_exit = _BAD_EXIT.search(message)
        if bad_exit:
            for before in reversed(lines[:index]):
                text = before.strip()
                if text and not text.startswith("+ ") and text != "+":
                    return short(f"{bad_exit.group(1)} failed: {text}")
            return short(f"{bad_exit.group(1)} failed")
        return short(message)
    return None


def failure_line(lines: Sequence[str]) -> str:
    """The last meaningful error line of rpmbuild's output, made one short line."""
    return error_line(lines) or last_line(lines)


def prepare_build_dir(build_dir: Path, result_dir: Path) -> None:
    """Create rpmbuild's directories under `build_dir` (top, tmp, rpmdb) and the result dir."""
    for sub in ("top", "tmp", "rpmdb"):
        (build_dir / sub).mkdir(parents=True, exist_ok=True)
    result_dir.mkdir(parents=True, exist_ok=True)


def built_rpms(top: Path) -> list[Path]:
    """The RPMs rpmbuild left under its `_topdir`: binary ones, then source ones."""
    return [*sorted(top.glob("RPMS/*/*.rpm")), *sorted(top.glob("SRPMS/*.rpm"))]


def move_results(paths: Sequence[Path], result_dir: Path) -> list[Path]:
    """Move built RPMs and SRPMs into `result_dir` (created if needed), replacing files of
    the same name; their new paths, in order (blocking: call it in a thread)."""
    result_dir.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in paths:
        destination = result_dir / path.name
        shutil.move(path, destination)
        moved.append(destination)
    return moved


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file, read in chunks (blocking: call it in a thread)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
