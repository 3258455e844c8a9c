"""The build loop: one background task that owns every task of the engine.

services.submit_builds stores a build and calls `Dispatcher.submitted()`; the loop wakes
(at once for a lone submission, once a burst pauses otherwise, and every POLL_SECONDS in
any case) and each round:
1. fires build_submitted for the new builds (events.py);
2. starts imports (importer.py) of builds still `importing`;
3. asks the scheduler (scheduler.py) which pending chroots start, and starts a chroot run
   (run.py) task for each; the run publishes and stores the chroot's end.
On start-up, chroots a crash left starting/running are re-queued once, then failed; on
shutdown, every task is cancelled and running chroots go back to pending.

A chroot run's task is tracked from the moment it exists (before its first await), so a
cancel that finds it cancels it; a run a cancel did not find stops at its next step, which
the store refuses (see run.py). Side tasks prepare a new project's repositories and key
(projects.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Iterable

import pluggy

from .. import store
from ..builders import BuilderRegistry
from ..config import Config
from ..db import Database
from ..publisher import Publisher
from . import events, projects
from .deps import EngineDeps
from .importer import Importer
from .run import ChrootRun, StepHook
from .scheduler import BuilderLimit, Candidate, GlobalLimit, Scheduler

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
CANDIDATES_PER_OWNER = 4
# During a burst of submissions (one less than SUBMIT_LULL after another) the dispatcher
# runs at most one round per SUBMIT_LULL and starts imports only once the burst pauses, or
# at least every IMPORT_MAX_DEFER seconds: the HTTP requests come first. A lone submission
# is handled at once.
SUBMIT_LULL = 0.1
IMPORT_MAX_DEFER = 1.0


class Dispatcher:
    """Owns every running import, chroot run and side task of one app."""

    def __init__(
        self,
        config: Config,
        db: Database,
        pm: pluggy.PluginManager,
        builders: BuilderRegistry,
        publisher: Publisher,
    ) -> None:
        self.deps = EngineDeps(config, db, pm, builders, publisher)
        self.scheduler = Scheduler(
            [GlobalLimit(config.concurrency), BuilderLimit(builders.concurrency)]
        )
        self.importer = Importer(self.deps, self.wake)
        self.step_hook: StepHook | None = None
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._running: dict[tuple[int, str], tuple[Candidate, asyncio.Task[None]]] = {}
        self._publishing: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._submitted: list[int] = []
        self._last_submit = float("-inf")
        self._last_import = float("-inf")
        self._in_burst = False
        self._deferred_wake = False

    # ------------------------------------------------------------ control

    async def start(self) -> None:
        requeued, failed = await self.deps.db.write(store.recover_interrupted)
        for build_id, chroot in requeued:
            log.warning("re-queued build=%d chroot=%s after an interrupted run", build_id, chroot)
        for build_id, chroot in failed:
            log.error("failed build=%d chroot=%s: interrupted twice", build_id, chroot)
        self._loop_task = asyncio.create_task(self._loop(), name="copr-lite-dispatcher")
        if self.deps.publisher.signer is not None:
            # Projects published before signing existed (or was turned on) get a key and
            # their packages signed, one project after another, while the server serves.
            self._spawn(projects.sign_existing(self.deps), "sign-existing-projects")

    async def stop(self) -> None:
        """Stop the loop and every task; their chroots go back to pending."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = [task for _, task in self._running.values()]
        tasks += [*self._publishing.values(), *self.importer.tasks, *self._side_tasks]
        for task in tasks:
            task.cancel(msg="shutdown")
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        """The build loop runs (started, and has not ended)."""
        return self._loop_task is not None and not self._loop_task.done()

    @property
    def running(self) -> list[tuple[int, str]]:
        """The chroots holding a build slot, as (build id, chroot)."""
        return sorted(self._running)

    @property
    def publishing(self) -> list[tuple[int, str]]:
        """The chroots whose builder is done and whose results are being published."""
        return sorted(self._publishing)

    def submitted(self, build_ids: Iterable[int]) -> None:
        """New builds were stored: announce them and start their imports."""
        self._submitted.extend(build_ids)
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._in_burst = now - self._last_submit < SUBMIT_LULL
        self._last_submit = now
        if not self._in_burst:
            self.wake()
        else:
            self._wake_after_lull()

    async def cancel_build(self, build_id: int, wait: float = 15.0) -> None:
        """Stop the running chroots of a build (its state is already `canceled`)."""
        tasks = [task for key, (_, task) in self._running.items() if key[0] == build_id]
        tasks += [task for key, task in self._publishing.items() if key[0] == build_id]
        if (importing := self.importer.task_of(build_id)) is not None:
            tasks.append(importing)
        for task in tasks:
            task.cancel(msg="canceled")
        if tasks:
            await asyncio.wait(tasks, timeout=wait)
        self.wake()
        await events.build_canceled(self.deps, build_id)

    def prepare_repos(
        self, owner: str, project: str, chroots: Iterable[str], *, created: bool = False
    ) -> None:
        """Create empty repositories for a project's new chroots (in the background), so
        its yum_repos URLs answer before the first build; with signing on, make sure the
        project has a key (`created`: the project is new, so nothing of it is unsigned)."""
        publisher = self.deps.publisher
        dirs = [publisher.chroot_dir(owner, project, chroot) for chroot in chroots]
        self._spawn(projects.create_repos(self.deps, dirs), f"repos-{owner}-{project}")
        if publisher.signer is not None:
            self._spawn(
                projects.ensure_signed(self.deps, owner, project, sign_earlier=not created),
                f"key-{owner}-{project}",
            )

    # ------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        while True:
            try:
                await self._round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatcher round failed; retrying")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()
            self._wake.clear()

    async def _round(self) -> None:
        if self._submitted:
            ids, self._submitted = self._submitted, []
            await events.builds_submitted(self.deps, ids)
        if self.importer.free > 0:
            if self._may_import():
                self._last_import = asyncio.get_running_loop().time()
                await self.importer.start_waiting()
            else:
                self._wake_after_lull()
        await self._claim()

    async def _claim(self) -> None:
        """Start a chroot run for each pending chroot the scheduler chooses."""
        running = [candidate for candidate, _ in self._running.values()]
        if not self.scheduler.has_room(running):
            return
        chroots = self.deps.config.chroots
        candidates = [
            Candidate(c.owner_id, c.build_id, c.chroot, chroots.get(c.chroot, ""))
            for c in await self.deps.db.read(store.pending_candidates, CANDIDATES_PER_OWNER)
        ]
        for chosen in self.scheduler.choose(candidates, running):
            self._start_run(chosen)

    def _start_run(self, chosen: Candidate) -> None:
        key = chosen.key
        run = ChrootRun(
            self.deps,
            chosen.build_id,
            chosen.chroot,
            self.deps.builders.get(chosen.builder),
            release_slot=functools.partial(self._release_slot, key),
            stopping=lambda: self._stopping,
            step_hook=self.step_hook,
        )
        # Tracked before its first step runs: a cancel from now on finds this task.
        task = asyncio.create_task(run.run(), name=f"build-{chosen.build_id}-{chosen.chroot}")
        self._running[key] = (chosen, task)
        task.add_done_callback(functools.partial(self._forget, key))

    # ------------------------------------------------------------ bookkeeping

    def _may_import(self) -> bool:
        now = asyncio.get_running_loop().time()
        return (
            not self._in_burst
            or now - self._last_submit >= SUBMIT_LULL
            or now - self._last_import >= IMPORT_MAX_DEFER
        )

    def _wake_after_lull(self) -> None:
        """Wake the loop SUBMIT_LULL from now (once, however often asked meanwhile)."""
        if not self._deferred_wake:
            self._deferred_wake = True
            asyncio.get_running_loop().call_later(SUBMIT_LULL, self._lull_ended)

    def _lull_ended(self) -> None:
        self._deferred_wake = False
        self.wake()

    def _release_slot(self, key: tuple[int, str]) -> None:
        """A run's builder is done: its slot goes to the next chroot while it publishes."""
        entry = self._running.pop(key, None)
        if entry is not None:
            self._publishing[key] = entry[1]
            self.wake()

    def _forget(self, key: tuple[int, str], task: asyncio.Task[None]) -> None:
        """A chroot run's task ended (also one cancelled before its first step ran)."""
        entry = self._running.get(key)
        if entry is not None and entry[1] is task:
            del self._running[key]
        if self._publishing.get(key) is task:
            del self._publishing[key]
        self.wake()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)
