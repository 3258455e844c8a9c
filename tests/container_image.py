"""The local podman image the container builder's tests build in, made offline from Debian.

`ensure_builder_image()` returns `localhost/copr-lite-builder:bookworm`, reusing it when podman
already has it (podman's storage persists on the machine, so it is built once), else building
it: `debootstrap --variant=minbase --include=rpm,file bookworm` from the Debian mirror the
machine's apt sources name, then `tar -C rootfs -c . | podman import -`. That takes well under
a minute or two (debootstrap about 30-45 s, the import about 10 s).

`podman_unusable()` says why podman cannot run a container at all here (None when it can): a
trivial `podman --runtime runc run --rm --rootfs <tree> true`, no image needed.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

IMAGE = "localhost/copr-lite-builder:bookworm"
SUITE = "bookworm"
PACKAGES = ("rpm", "file")
FALLBACK_MIRROR = "http://deb.debian.org/debian"
ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
LOCK = Path(tempfile.gettempdir()) / "copr-lite-builder-image.lock"


def podman_unusable(podman: str = "podman", runtime: str = "runc") -> str | None:
    """Why podman cannot run a container on this machine, or None when it can."""
    if shutil.which(podman) is None:
        return f"{podman} is not installed (apt-get install podman runc)"
    if runtime and shutil.which(runtime) is None:
        return f"the OCI runtime {runtime} is not installed (apt-get install {runtime})"
    with tempfile.TemporaryDirectory(prefix="copr-lite-podman-probe-") as tmp:
        root = Path(tmp)
        for sub in ("usr", "etc", "tmp", "proc", "dev", "sys"):
            (root / sub).mkdir()
        for link in ("bin", "sbin", "lib", "lib64"):
            (root / link).symlink_to(f"usr/{link}")
        argv = [
            podman,
            *(["--runtime", runtime] if runtime else []),
            "run", "--rm", "--network=none", *ULIMITS,
            "-v", "/usr:/usr:ro", "-v", "/etc:/etc:ro",
            "--rootfs", str(root), "true",
        ]  # fmt: skip
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(argv[:4])} ... true` did not finish within 120 s"
    if proc.returncode != 0:
        error = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        return (
            f"podman cannot run a container here: `{' '.join(argv[:4])} ... true` exited with "
            f"{proc.returncode}: {error[-1] if error else 'no output'}"
        )
    return None


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


def ensure_builder_image(podman: str = "podman", image: str = IMAGE) -> tuple[str, float | None]:
    """(image, seconds it took to build, or None when it already existed)."""
    LOCK.touch(exist_ok=True)
    with LOCK.open() as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if image_exists(podman, image):
            return image, None
        started = time.monotonic()
        build_image(podman, image)
        return image, time.monotonic() - started


def build_image(podman: str = "podman", image: str = IMAGE) -> None:
    if shutil.which("debootstrap") is None:
        raise RuntimeError(f"cannot build {image}: debootstrap is not installed")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="copr-lite-image-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        argv = [
            "debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
            SUITE, str(root), mirror,
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}")
        # Downloaded .debs and apt lists are not needed in the image.
        for cache in (root / "var/cache/apt/archives", root / "var/lib/apt/lists"):
            for path in cache.glob("*"):
                if path.is_file():
                    path.unlink()
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
            raise RuntimeError(f"podman import of {root} failed: {imported.stderr.strip()}")
