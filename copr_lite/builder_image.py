"""The container builder's default image, made offline on a Debian host.

`ensure_image()` returns the image name, at once when podman already has it, else after
building it (about a minute or two): `debootstrap --variant=minbase` of Debian bookworm with
rpm, dnf and a C toolchain, from the mirror the host's apt sources name, then
`tar | podman import`. In the tree, before the import:

- `%_dbpath /var/lib/rpm` (Debian's rpm keeps its database in ~/.rpmdb), and an empty rpm
  database there, which dnf installs BuildRequires into;
- `copr-lite-debian-buildroot`, an rpm database entry (no files) that provides what the
  Debian packages of the image are: bash, /bin/sh, gcc, make, glibc-devel, python3... at
  their Debian versions, so `BuildRequires: gcc` is satisfied by the image, as a Fedora
  buildroot would satisfy it, and dnf does not look for it in the repositories.

The packages built in it are real RPMs, built with Debian's toolchain, not Fedora builds.
For production use a Fedora image (see the README).
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

IMAGE = "localhost/copr-lite-builder:bookworm-dnf"
SUITE = "bookworm"
DEB_PACKAGES = (
    "rpm",
    "file",
    "dnf",
    "gcc",
    "make",
    "libc6-dev",
    "patch",
    "xz-utils",
    "bzip2",
)
# rpm name -> Debian package whose version it gets, and files it stands for.
PROVIDES: dict[str, tuple[str, tuple[str, ...]]] = {
    "bash": ("bash", ("/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash")),
    "coreutils": ("coreutils", ("/usr/bin/env",)),
    "gcc": ("gcc", ("/usr/bin/gcc", "/usr/bin/cc")),
    "cpp": ("cpp", ("/usr/bin/cpp",)),
    "binutils": ("binutils", ()),
    "make": ("make", ("/usr/bin/make",)),
    "glibc": ("libc6", ()),
    "glibc-devel": ("libc6-dev", ()),
    "glibc-headers": ("libc6-dev", ()),
    "python3": ("python3", ("/usr/bin/python3",)),
    "findutils": ("findutils", ()),
    "grep": ("grep", ()),
    "sed": ("sed", ()),
    "mawk": ("mawk", ("/usr/bin/awk",)),
    "tar": ("tar", ()),
    "gzip": ("gzip", ()),
    "xz": ("xz-utils", ()),
    "bzip2": ("bzip2", ()),
    "patch": ("patch", ()),
    "diffutils": ("diffutils", ()),
    "file": ("file", ()),
    "rpm": ("rpm", ()),
    "rpm-build": ("rpm", ("/usr/bin/rpmbuild",)),
}
FALLBACK_MIRROR = "http://deb.debian.org/debian"
LOCK = Path(tempfile.gettempdir()) / "copr-lite-builder-image.lock"


class ImageError(Exception):
    """The image cannot be made here; the message says why and what to do."""


def debian_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror of this machine's apt sources (deb822 `.sources` or one-line
    `.list`), the one serving the main archive (not -security); deb.debian.org otherwise."""
    candidates: list[str] = []
    files = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file() or not path.name.endswith((".list", ".sources")):
            continue
        text = path.read_text(errors="replace")
        if path.name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(
                    (m.group(1).lower(), m.group(2).strip())
                    for m in re.finditer(r"^([A-Za-z-]+):(.*)$", stanza, re.M)
                )
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" not in fields.get("types", "").split():
                    continue
                if SUITE not in fields.get("suites", "").split():
                    continue
                candidates += fields.get("uris", "").split()
        else:
            for line in text.splitlines():
                parts = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(parts) >= 3 and parts[0] == "deb" and parts[2] == SUITE:
                    candidates.append(parts[1])
    for uri in candidates:
        if "security" not in uri and uri.startswith(("http://", "https://")):
            return uri.rstrip("/")
    return FALLBACK_MIRROR


def image_exists(podman: str = "podman", image: str = IMAGE) -> bool:
    return subprocess.run([podman, "image", "exists", image], check=False).returncode == 0


def ensure_image(podman: str = "podman", image: str = IMAGE) -> tuple[str, float | None]:
    """(image, seconds it took to build, or None when it already existed). Builds of the
    same machine wait for each other."""
    if shutil.which(podman) is None:
        raise ImageError(f"{podman} is not installed (apt-get install podman runc)")
    LOCK.touch(exist_ok=True)
    with LOCK.open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_exists(podman, image):
            return image, None
        started = time.monotonic()
        build_image(podman, image)
        return image, time.monotonic() - started


def build_image(podman: str = "podman", image: str = IMAGE) -> None:
    for tool in ("debootstrap", "rpmbuild"):
        if shutil.which(tool) is None:
            raise ImageError(
                f"cannot build {image}: {tool} is not installed (apt-get install debootstrap "
                "rpm); on a host without Debian packages build the Fedora image (README)"
            )
    with tempfile.TemporaryDirectory(prefix="copr-lite-image-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        mirror = debian_mirror()
        include = f"--include={','.join(DEB_PACKAGES)}"
        _run(["debootstrap", "--variant=minbase", include, SUITE, str(root), mirror], 1200)
        # Downloaded .debs and apt lists are not needed in the image.
        for cache in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
            for path in cache.glob("*"):
                if path.is_file():
                    path.unlink()
        _rpm_database(root, Path(tmp))
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            imported = subprocess.run(
                [podman, "import", "-", image],
                stdin=tar.stdout,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise ImageError(f"podman import of {root} failed: {imported.stderr.strip()}")


def _rpm_database(root: Path, work: Path) -> None:
    """The rpm database at /var/lib/rpm in `root`, holding the provides entry."""
    (root / "etc/rpm").mkdir(parents=True, exist_ok=True)
    (root / "etc/rpm/macros.dbpath").write_text("%_dbpath /var/lib/rpm\n")
    versions = _debian_versions(root)
    spec = work / "copr-lite-debian-buildroot.spec"
    spec.write_text(provides_spec(versions))
    defines = ["--define", f"_topdir {work / 'top'}", "--define", f"_dbpath {work / 'db'}"]
    _run(["rpmbuild", "-bb", *defines, str(spec)])
    (rpm,) = (work / "top/RPMS/noarch").glob("*.rpm")
    dbpath = ["--root", str(root), "--define", "_dbpath /var/lib/rpm"]
    _run(["rpm", *dbpath, "--initdb"])
    _run(["rpm", *dbpath, "-i", "--justdb", "--nodeps", "--nosignature", str(rpm)])


def _debian_versions(root: Path) -> dict[str, str]:
    """Upstream version of each Debian package named in PROVIDES that the tree has."""
    names = sorted({deb for deb, _ in PROVIDES.values()})
    proc = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={root / 'var/lib/dpkg'}",
            "-W",
            "-f",
            "${Package} ${Version}\n",
            *names,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    versions = {}
    for line in proc.stdout.splitlines():
        package, _, version = line.partition(" ")
        if version:
            # "4:12.2.0-3" -> "12.2.0": no epoch, no Debian revision, only what rpm compares.
            upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
            versions[package] = re.sub(r"[^A-Za-z0-9._]", ".", upstream.split("+")[0])
    return versions


def provides_spec(versions: dict[str, str]) -> str:
    """The spec of `copr-lite-debian-buildroot`: one Provides per Debian package present."""
    provides = []
    for name, (deb, files) in PROVIDES.items():
        if deb in versions:
            provides.append(f"Provides: {name} = {versions[deb]}")
            provides += [f"Provides: {path}" for path in files]
    return "\n".join(
        [
            "Name: copr-lite-debian-buildroot",
            "Version: 1",
            "Release: 1",
            "Summary: What the Debian packages of the copr_lite builder image provide",
            "License: MIT",
            "BuildArch: noarch",
            *provides,
            "%description",
            "Stands in the rpm database for the image's Debian toolchain (no files).",
            "%files",
            "",
        ]
    )


def _run(argv: list[str], timeout: float = 300) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise ImageError(f"{' '.join(argv[:3])} ... failed ({proc.returncode}):\n{tail}")
