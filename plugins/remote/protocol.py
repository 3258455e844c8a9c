"""The worker protocol: every path under `/worker/v1/` and every message on it.

Both sides use these classes: the server reads what workers send with `from_json` (a
`ProtocolError` carries the text of the 400 answer) and writes its answers with `to_json`;
the worker does the reverse. No other module spells a path or a message key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from copr_lite import BuildJob, Chroot, Outcome, PackageInfo

PREFIX = "/worker"  # every path of the worker API is under it (JSON errors)
API = f"{PREFIX}/v1"
CLAIM = f"{API}/claim"
# What a worker does on one job: each has its path, `{API}/jobs/<job id>/<action>`.
JobAction = Literal["srpm", "log", "heartbeat", "result", "release"]
WORKERS_LIST = "/api/workers/"

MAX_CHROOTS = 100  # patterns in one claim
MAX_LINES = 5000  # per log batch
MAX_LINE = 16 * 1024  # characters kept of one log line
MAX_FILES = 1000  # in one result manifest
CHROOT_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]{1,100}$")
RPM_FILE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+~^-]{0,250}\.rpm$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class ProtocolError(ValueError):
    """A message does not hold; the text says why, for the other side."""


def job_path(job_id: str, action: JobAction) -> str:
    """The path of one job's `action`."""
    return f"{API}/jobs/{job_id}/{action}"


def job_route(action: JobAction) -> str:
    """The route of `action` for every job (the job id as `{job}`)."""
    return job_path("{job}", action)


def _object(data: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ProtocolError(f"{what} must be a JSON object.")
    return data


# ---------------------------------------------------------------- claim


@dataclass(frozen=True)
class Claim:
    """A worker asks for a job (`POST CLAIM`, a long poll of up to `wait` seconds)."""

    chroots: list[str]  # names or fnmatch patterns, e.g. "epel-*-x86_64"
    builder: str = ""
    host: str = ""
    wait: float | None = None  # None: the server's claim_wait

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"chroots": self.chroots, "builder": self.builder, "host": self.host}
        if self.wait is not None:
            body["wait"] = self.wait
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Claim:
        patterns = data.get("chroots")
        if (
            not isinstance(patterns, list)
            or not 1 <= len(patterns) <= MAX_CHROOTS
            or not all(isinstance(p, str) and CHROOT_PATTERN.match(p) for p in patterns)
        ):
            raise ProtocolError(
                f"`chroots` must list 1 to {MAX_CHROOTS} chroot names or patterns, e.g. "
                '["fedora-41-x86_64", "epel-*-x86_64"].'
            )
        wait = data.get("wait", 0)  # absent: the server's claim_wait
        if not isinstance(wait, int | float) or isinstance(wait, bool) or wait < 0:
            raise ProtocolError("`wait` must be a number of seconds.")
        builder = str(data.get("builder", ""))[:100]
        host = str(data.get("host", ""))[:255]
        return cls(patterns, builder, host, float(wait) if "wait" in data else None)


# ---------------------------------------------------------------- the job


@dataclass(frozen=True)
class SrpmRef:
    """The job's SRPM: where to download it and what must arrive."""

    name: str
    size: int
    sha256: str
    url: str  # a path on the server

    def local_name(self) -> str:
        """A safe file name to store it under on the worker."""
        return self.name if RPM_FILE.match(self.name) else "package.src.rpm"


@dataclass(frozen=True)
class Job:
    """One attempt of one chroot build, as the claim answer hands it to a worker."""

    id: str
    build_id: int
    owner: str
    project: str
    chroot: str
    package: PackageInfo | None
    buildroot_pkgs: tuple[str, ...]
    repos: tuple[str, ...]
    distro_repos: tuple[str, ...]
    enable_net: bool
    memory_reqs: int
    timeout: int
    attempt: int
    max_attempts: int
    srpm: SrpmRef
    heartbeat_interval: float
    heartbeat_timeout: float

    @classmethod
    def of(
        cls,
        job_id: str,
        job: BuildJob,
        srpm: SrpmRef,
        *,
        attempt: int,
        max_attempts: int,
        heartbeat_interval: float,
        heartbeat_timeout: float,
    ) -> Job:
        """The message for the server's `job`, handed out as attempt `attempt`."""
        return cls(
            job_id,
            job.build_id,
            job.owner,
            job.project,
            job.chroot.name,
            job.package,
            tuple(job.buildroot_pkgs),
            tuple(job.repos),
            tuple(job.distro_repos),
            job.enable_net,
            job.memory_reqs,
            job.timeout,
            attempt,
            max_attempts,
            srpm,
            heartbeat_interval,
            heartbeat_timeout,
        )

    def build_job(self, srpm: Path) -> BuildJob:
        """The job for the worker's local builder, with the SRPM downloaded to `srpm`."""
        return BuildJob(
            build_id=self.build_id,
            owner=self.owner,
            project=self.project,
            chroot=Chroot.parse(self.chroot),
            srpm=srpm,
            package=self.package,
            buildroot_pkgs=self.buildroot_pkgs,
            repos=self.repos,
            distro_repos=self.distro_repos,
            enable_net=self.enable_net,
            memory_reqs=self.memory_reqs,
            timeout=self.timeout,
        )

    def describe(self) -> str:
        """The job in log lines: `job=... build=... chroot=...`."""
        return f"job={self.id} build={self.build_id} chroot={self.chroot}"

    def to_json(self) -> dict[str, Any]:
        package = self.package
        return {
            "id": self.id,
            "build_id": self.build_id,
            "owner": self.owner,
            "project": self.project,
            "chroot": self.chroot,
            "package": None
            if package is None
            else {
                "name": package.name,
                "epoch": package.epoch,
                "version": package.version,
                "release": package.release,
            },
            "buildroot_pkgs": list(self.buildroot_pkgs),
            "repos": list(self.repos),
            "distro_repos": list(self.distro_repos),
            "enable_net": self.enable_net,
            "memory_reqs": self.memory_reqs,
            "timeout": self.timeout,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "srpm": {
                "name": self.srpm.name,
                "size": self.srpm.size,
                "sha256": self.srpm.sha256,
                "url": self.srpm.url,
            },
            "heartbeat_interval": self.heartbeat_interval,
            "heartbeat_timeout": self.heartbeat_timeout,
        }

    @classmethod
    def from_json(cls, data: Any) -> Job:
        job = _object(data, "The job")
        try:
            srpm = _object(job["srpm"], "The job's srpm")
            package = job["package"]
            return cls(
                id=str(job["id"]),
                build_id=int(job["build_id"]),
                owner=str(job["owner"]),
                project=str(job["project"]),
                chroot=str(job["chroot"]),
                package=None
                if not package
                else PackageInfo(
                    package["name"], package["epoch"], package["version"], package["release"], "src"
                ),
                buildroot_pkgs=tuple(job["buildroot_pkgs"]),
                repos=tuple(job["repos"]),
                distro_repos=tuple(job["distro_repos"]),
                enable_net=bool(job["enable_net"]),
                memory_reqs=int(job["memory_reqs"]),
                timeout=int(job["timeout"]),
                attempt=int(job["attempt"]),
                max_attempts=int(job["max_attempts"]),
                srpm=SrpmRef(
                    str(srpm["name"]), int(srpm["size"]), str(srpm["sha256"]), str(srpm["url"])
                ),
                heartbeat_interval=float(job["heartbeat_interval"]),
                heartbeat_timeout=float(job["heartbeat_timeout"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProtocolError(f"The job does not hold: {exc!r}.") from None


@dataclass(frozen=True)
class ClaimAnswer:
    """The server's answer to a claim: a job, or None when none came in time."""

    job: Job | None

    def to_json(self) -> dict[str, Any]:
        return {"output": "ok", "job": None if self.job is None else self.job.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ClaimAnswer:
        job = data.get("job")
        return cls(Job.from_json(job) if job else None)


# ---------------------------------------------------------------- while it builds


@dataclass(frozen=True)
class LogChunk:
    """Log lines of a job (`POST log`), appended to its builder-live.log."""

    lines: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"lines": self.lines}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogChunk:
        lines = data.get("lines")
        if not isinstance(lines, list) or len(lines) > MAX_LINES:
            raise ProtocolError(f"`lines` must be a list of at most {MAX_LINES} strings.")
        return cls([str(line)[:MAX_LINE] for line in lines])


@dataclass(frozen=True)
class JobState:
    """The server's answer to a heartbeat or a log chunk: was the build canceled?"""

    canceled: bool

    def to_json(self) -> dict[str, Any]:
        return {"output": "ok", "canceled": self.canceled}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobState:
        return cls(bool(data.get("canceled")))


# ---------------------------------------------------------------- the result


@dataclass(frozen=True)
class Manifest:
    """The first part of a result upload (`POST result`): the outcome and each RPM's sha256.
    One `file` part per RPM follows it."""

    outcome: Outcome
    fail_reason: str | None
    files: dict[str, str]  # file name -> sha256 (hex)

    def to_json(self) -> dict[str, Any]:
        return {"outcome": str(self.outcome), "fail_reason": self.fail_reason, "files": self.files}

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        if not isinstance(data, dict):
            raise ProtocolError("The manifest must be a JSON object.")
        try:
            outcome = Outcome(str(data.get("outcome")))
        except ValueError:
            raise ProtocolError("The manifest's `outcome` must be succeeded or failed.") from None
        reason = data.get("fail_reason")
        if reason is not None and not isinstance(reason, str):
            raise ProtocolError("The manifest's `fail_reason` must be a string or null.")
        files = data.get("files", {})
        if not isinstance(files, dict) or len(files) > MAX_FILES:
            raise ProtocolError(
                f"The manifest's `files` must map at most {MAX_FILES} names to sha256."
            )
        for name, digest in files.items():
            if not RPM_FILE.match(name):
                raise ProtocolError(
                    f"{name!r}: only RPM files (`*.rpm`, plain names) are accepted."
                )
            if not isinstance(digest, str) or not SHA256.match(digest):
                raise ProtocolError(f"{name}: the sha256 must be 64 lowercase hex digits.")
        if reason is not None:
            reason = " ".join(reason.split())[:500] or None
        return cls(outcome, reason, dict(files))


@dataclass(frozen=True)
class ResultAnswer:
    """The server accepted a result: the names of the files it kept."""

    files: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"output": "ok", "files": self.files}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResultAnswer:
        return cls([str(name) for name in data.get("files", [])])
