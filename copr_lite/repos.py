"""The repositories a build installs its BuildRequires from, and the dnf configuration for them.

A build's dependency sources are, in this order (as in Copr):

1. the chroot's distribution repositories: `[repos] <chroot>` in the config, else the
   public Fedora / EPEL layout (`default_distribution_repos`);
2. the project's own published repository for that chroot (dependent builds);
3. the project's additional repositories;
4. the chroot's buildroot packages, installed with the BuildRequires.

An entry is a baseurl (`https://...`, `http://...`, `file:///...`) or `metalink=<url>`, and
may use dnf's `$releasever` and `$basearch`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .builders import Chroot

METALINK = "metalink="
_FEDORA_METALINK = "https://mirrors.fedoraproject.org/metalink?repo={repo}&arch=$basearch"
_CENTOS_METALINK = "https://mirrors.centos.org/metalink?repo={repo}&arch=$basearch"
_URL_SCHEMES = ("http://", "https://", "ftp://", "file:///")
_REPO_ID = re.compile(r"[^A-Za-z0-9_.:-]+")


def default_distribution_repos(chroot: Chroot) -> tuple[str, ...]:
    """The public mirrors of a chroot's distribution, as Fedora's mock configs name them
    (epel-N: CentOS Stream N BaseOS, AppStream and CRB, plus EPEL N); () for another os."""
    version = chroot.version
    if chroot.os == "fedora" and version == "rawhide":
        return (METALINK + _FEDORA_METALINK.format(repo="rawhide"),)
    if chroot.os == "fedora":
        return (
            METALINK + _FEDORA_METALINK.format(repo="fedora-$releasever"),
            METALINK + _FEDORA_METALINK.format(repo="updates-released-f$releasever"),
        )
    if chroot.os == "epel" and version.isdigit():
        return (
            *(
                METALINK + _CENTOS_METALINK.format(repo=f"centos-{part}-{version}-stream")
                for part in ("baseos", "appstream", "crb")
            ),
            METALINK + _FEDORA_METALINK.format(repo=f"epel-{version}"),
        )
    return ()


def check_entry(entry: str) -> str:
    """The entry itself when it is a baseurl or `metalink=<url>`; else ValueError."""
    url = entry.removeprefix(METALINK)
    if not url.startswith(_URL_SCHEMES) or len(url) <= len("file:///"):
        raise ValueError(
            f"{entry!r} is not a repository: use an http(s)://, ftp:// or file:/// baseurl, "
            "or metalink=<url>"
        )
    if entry.startswith(METALINK) and url.startswith("file:"):
        raise ValueError(f"{entry!r}: a metalink is fetched over the network, not from a file")
    return entry


def releasever(chroot: Chroot) -> str:
    """dnf's $releasever for the chroot: 40, 9, or rawhide."""
    return chroot.version


def expand(url: str, chroot: Chroot) -> str:
    """The URL with dnf's $releasever and $basearch filled in for the chroot."""
    for name, value in (("releasever", releasever(chroot)), ("basearch", chroot.arch)):
        url = url.replace("${" + name + "}", value).replace("$" + name, value)
    return url


@dataclass(frozen=True)
class DnfRepo:
    """One repository as dnf inside the build root sees it.

    Attributes:
        repo_id: dnf's id for it (`copr-lite-distro-1`, `copr-lite-project`, ...).
        url: the baseurl or metalink dnf reads (inside the build root).
        metalink: whether `url` is a metalink.
        source: the host directory mounted read-only at `url`'s path, or None when dnf
            fetches the repository over the network.
    """

    repo_id: str
    url: str
    metalink: bool
    source: Path | None

    @property
    def needs_network(self) -> bool:
        return self.source is None


def dependency_repos(
    chroot: Chroot,
    distro_repos: Sequence[str],
    repos: Sequence[str],
    local_repos: Mapping[str, Path],
    mount_root: str = "/repos",
) -> list[DnfRepo]:
    """The repositories of a build, in order, as dnf inside a container sees them: local
    directories (file:/// distribution repositories, and URLs the server holds on disk,
    such as the project's own repository) are mounted under `mount_root`; everything else
    is fetched. The first of `repos` is the project's own. A file:/// URL among `repos`
    (which come from users) is never mounted."""
    result: list[DnfRepo] = []
    entries = [("distro", e) for e in distro_repos] + [("repo", e) for e in repos]
    for index, (kind, entry) in enumerate(entries, start=1):
        metalink = entry.startswith(METALINK)
        url = expand(entry.removeprefix(METALINK), chroot)
        own = kind == "repo" and index == len(distro_repos) + 1
        repo_id = "copr-lite-project" if own else f"copr-lite-{kind}-{index}"
        source = local_repos.get(url)
        # Only the operator's own settings may name a directory of this machine.
        if source is None and kind == "distro" and url.startswith("file:///") and not metalink:
            source = Path(unquote(urlsplit(url).path))
        if source is not None:
            mounted = f"file://{mount_root}/{index}"
            result.append(DnfRepo(repo_id, mounted, False, source))
        else:
            result.append(DnfRepo(repo_id, url, metalink, None))
    return result


def dnf_config(repos: Sequence[DnfRepo], cachedir: str) -> str:
    """A dnf.conf naming only these repositories (the image's own repo files are ignored),
    keeping downloaded packages in `cachedir` for the next build."""
    lines = [
        "[main]",
        "reposdir=",
        f"cachedir={cachedir}",
        "keepcache=1",
        "install_weak_deps=0",
        "best=1",
        "gpgcheck=0",
        "logdir=/tmp",
        "persistdir=/tmp/dnf",
        "plugins=0",
        "",
    ]
    for repo in repos:
        lines += [
            f"[{_REPO_ID.sub('-', repo.repo_id)}]",
            f"name={repo.repo_id}",
            f"{'metalink' if repo.metalink else 'baseurl'}={repo.url}",
            # A local repository (the project's own) changes with every build.
            f"metadata_expire={0 if repo.source is not None else 3600}",
            # An unreachable repository (an offline host's default mirrors) is skipped and
            # named in the log; what only it has then fails as "No match for argument".
            "skip_if_unavailable=1",
            "",
        ]
    return "\n".join(lines)
