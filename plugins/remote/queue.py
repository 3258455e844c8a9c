"""The server's queue of remote jobs: jobs waiting for a worker, and leases of running ones.

A lease is one attempt of a job by one worker; its id is the job id that worker sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field

from copr_lite import BuildContext, BuildJob, ChrootResult

from .accounts import Worker


@dataclass(eq=False)
class RemoteJob:
    """One chroot build waiting for, or running on, a worker."""

    job: BuildJob
    ctx: BuildContext
    srpm_sha256: str
    srpm_size: int
    failures: list[str] = field(default_factory=list)
    lease: Lease | None = None
    # The outcome of the current attempt: a ChrootResult, or why the attempt failed.
    verdict: asyncio.Future[ChrootResult | str] | None = None

    @property
    def attempt(self) -> int:
        return len(self.failures) + 1


@dataclass(eq=False)
class Lease:
    """One attempt of a job by one worker; its id is the job id the worker sees."""

    id: str
    rjob: RemoteJob
    worker: Worker
    claimed_on: float  # unix time
    last_contact: float  # loop time of the worker's last request on this job
    last_contact_wall: float
    canceled: bool = False
    uploading: bool = False

    def touch(self) -> None:
        self.last_contact = asyncio.get_running_loop().time()
        self.last_contact_wall = time.time()


def serves(patterns: list[str], chroot: str) -> bool:
    return any(fnmatch.fnmatchcase(chroot, pattern) for pattern in patterns)


class JobQueue:
    """Jobs waiting for a worker (oldest first) and the leases of jobs being built."""

    def __init__(self) -> None:
        self._queued: list[RemoteJob] = []
        self.leases: dict[str, Lease] = {}
        self.polling: defaultdict[int, int] = defaultdict(int)  # worker id -> open claims
        self._changed = asyncio.Event()
        self.closed = False

    @property
    def queued(self) -> list[RemoteJob]:
        return list(self._queued)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def put(self, rjob: RemoteJob, *, front: bool = False) -> None:
        rjob.lease = None
        self._queued.insert(0 if front else len(self._queued), rjob)
        self._notify()

    def remove(self, rjob: RemoteJob) -> None:
        with contextlib.suppress(ValueError):
            self._queued.remove(rjob)

    def _take(self, patterns: list[str]) -> RemoteJob | None:
        for index, rjob in enumerate(self._queued):
            if serves(patterns, rjob.job.chroot.name):
                return self._queued.pop(index)
        return None

    async def claim(self, worker: Worker, patterns: list[str], wait: float) -> Lease | None:
        """The oldest job for one of `patterns`, waiting up to `wait` seconds for one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        self.polling[worker.id] += 1
        try:
            while not self.closed:
                rjob = self._take(patterns)
                if rjob is not None:
                    now = loop.time()
                    lease = Lease(secrets.token_urlsafe(12), rjob, worker, time.time(), now, 0)
                    lease.last_contact_wall = lease.claimed_on
                    rjob.lease = lease
                    self.leases[lease.id] = lease
                    return lease
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                changed = self._changed
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await changed.wait()
            return None
        finally:
            self.polling[worker.id] -= 1
            if not self.polling[worker.id]:
                del self.polling[worker.id]

    def end_lease(self, lease: Lease) -> None:
        self.leases.pop(lease.id, None)
        if lease.rjob.lease is lease:
            lease.rjob.lease = None

    def unclaim(self, lease: Lease) -> None:
        """The claimer went away before it heard of the job: first in line again."""
        self.end_lease(lease)
        self.put(lease.rjob, front=True)

    def cancel(self, rjob: RemoteJob, linger: float) -> None:
        """The build was canceled (or timed out): never hand it out again, and let its
        worker's next heartbeat hear so for `linger` seconds."""
        self.remove(rjob)
        lease = rjob.lease
        if lease is not None:
            lease.canceled = True
            asyncio.get_running_loop().call_later(linger, self.leases.pop, lease.id, None)

    def close(self) -> None:
        """Server shutdown: open long polls answer at once."""
        self.closed = True
        self._notify()
