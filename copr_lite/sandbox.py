"""The bubblewrap sandbox the host-side steps run in: the rpmbuild builder's builds and the
making of SRPMs from package sources (copr_lite.sources).

The host's /usr (and /bin, /lib... as the host has them) and /etc read-only, private /proc,
/dev, /tmp and /var/tmp, every namespace unshared (no network unless asked for), a clean
environment, and whatever the caller binds in. Standard library only, so every module and
plugin may use it.

A server running as root runs the sandboxed command as the unprivileged SANDBOX_UID
(nobody) with no capabilities: root, even in the sandbox, could read the host's secrets in
/etc (/etc/shadow, host keys) and write into whatever is bound in. bwrap itself still
starts as root, so it can bind directories of a private data directory, and unshares every
namespace but the user namespace (in one of root's own, only root is mapped, and the host
user could not be taken). Callers hand the directories the command writes to that user
first (`hand_over`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

PATH = "/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"
SANDBOX_UID = 65534  # nobody / nogroup on Debian and Fedora


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
    as_root = os.geteuid() == 0
    unshare = ["--unshare-all", *(["--share-net"] if share_net else [])]
    if as_root:
        unshare = [arg for arg in _UNSHARE_BUT_USER if not (share_net and arg == "--unshare-net")]
    return [
        bwrap,
        *unshare,
        "--die-with-parent",
        "--ro-bind", "/usr", "/usr",
        *root_links(),
        "--ro-bind", "/etc", "/etc",
        "--proc", "/proc",
        "--dev", "/dev",
        "--perms", "1777", "--tmpfs", "/tmp",
        "--perms", "1777", "--tmpfs", "/var/tmp",
        *mounts,
        "--clearenv",
        "--setenv", "HOME", home,
        "--setenv", "PATH", PATH,
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "TMPDIR", "/tmp",
        "--chdir", cwd,
        *(_drop_root() if as_root else []),
    ]  # fmt: skip


# --unshare-all without --unshare-user-try (see the module docstring).
_UNSHARE_BUT_USER = [
    "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
]  # fmt: skip


def _drop_root() -> list[str]:
    """The command prefix that becomes SANDBOX_UID with no capabilities and no way back."""
    return [
        shutil.which("setpriv") or "/usr/bin/setpriv",
        f"--reuid={SANDBOX_UID}",
        f"--regid={SANDBOX_UID}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]


def let_read(path: Path) -> None:
    """Make the file `path` readable by SANDBOX_UID when the server runs as root: a
    sandbox reads its input (an SRPM, published anyway) through a read-only bind. Blocks."""
    if os.geteuid() != 0:
        return
    mode = os.stat(path).st_mode
    if mode & 0o004 == 0:
        os.chmod(path, mode | 0o444)


def hand_over(top: Path) -> None:
    """Give `top` and everything under it to SANDBOX_UID when the server runs as root
    (else nothing to do), so the sandboxed command can write there. Links are changed
    themselves, never what they point to. Blocks: run it in a thread."""
    if os.geteuid() != 0:
        return
    os.chown(top, SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)
    for root, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)
