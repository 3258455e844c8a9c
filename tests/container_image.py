"""The local podman image the container builder's tests build in, made offline from Debian.

`ensure_builder_image()` returns the image `python -m copr_lite builder-image` makes
(copr_lite.builder_image), reusing it when podman already has it (podman's storage persists
on the machine, so it is built once), else building it: about two minutes.

`builder_image_or_skip()` is that image, or a skip when podman cannot run containers here.

`podman_unusable()` says why podman cannot run a container at all here (None when it can): a
trivial `podman --runtime runc run --rm --rootfs <tree> true`, no image needed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from copr_lite.builder_image import IMAGE, ensure_image

ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")


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


def ensure_builder_image(podman: str = "podman", image: str = IMAGE) -> tuple[str, float | None]:
    """(image, seconds it took to build, or None when it already existed)."""
    return ensure_image(podman, image)


def builder_image_or_skip(tests: str) -> str:
    """The builder image (built now if need be, saying how long it took); skips the calling
    test, naming `tests`, when podman cannot run a container here."""
    import pytest

    reason = podman_unusable()
    if reason:
        pytest.skip(f"{tests} need a working podman: {reason}")
    image, seconds = ensure_builder_image()
    if seconds is not None:
        print(f"\nbuilt {image} in {seconds:.1f} s", file=sys.stderr)
    return image
