"""The bubblewrap sandbox the host-side steps run in: the rpmbuild builder's builds and the
making of SRPMs from package sources (copr_lite.sources).

The host's /usr (and /bin, /lib... as the host has them) and /etc read-only, private /proc,
/dev, /tmp and /var/tmp, every namespace unshared (no network unless asked for), a clean
environment, and whatever the caller binds in. Standard library only, so every module and
plugin may use it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

PATH = "/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"


def root_links() -> list[str]:
    """bwrap arguments recreating /bin, /sbin, /lib... as on the host (symlinks into /usr
    on a merged-/usr system, read-only binds otherwise)."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_argv(
    bwrap: str, mounts: Sequence[str], *, home: str, cwd: str, share_net: bool = False
) -> list[str]:
    """bwrap's command line up to the command: the read-only host system, then `mounts`
    (bwrap arguments such as ``--bind SRC DEST``), a clean environment with HOME `home`, and
    `cwd` as the working directory."""
    # No --new-session: the sandbox must stay in the session processes.start gives bwrap,
    # so that stopping the session reaches it even when bwrap dies before
    # --die-with-parent is armed. That session has no controlling terminal (stdin is
    # /dev/null, output a pipe), so there is no terminal for TIOCSTI, which is what
    # --new-session guards.
    return [
        bwrap,
        "--unshare-all",
        *(["--share-net"] if share_net else []),
        "--die-with-parent",
        "--ro-bind", "/usr", "/usr",
        *root_links(),
        "--ro-bind", "/etc", "/etc",
        "--proc", "/proc",
        "--dev", "/dev",
        "--tmpfs", "/tmp",
        "--tmpfs", "/var/tmp",
        *mounts,
        "--clearenv",
        "--setenv", "HOME", home,
        "--setenv", "PATH", PATH,
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "TMPDIR", "/tmp",
        "--chdir", cwd,
    ]  # fmt: skip
