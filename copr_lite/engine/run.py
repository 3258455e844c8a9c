"""One chroot run, from the scheduler's choice to its terminal state: a script of steps.

The loop (loop.py) starts `ChrootRun.run()` as a task for each chroot the scheduler
(scheduler.py) chose. Its steps, in order:

1. claim: the chroot goes pending -> starting in the store;
2. load: the build, its builder; a chroot whose SRPM was already built here is skipped;
3. prepare: the result directory (leftovers of an interrupted attempt removed), the live
   log and the BuildJob (jobs.py);
4. mark running: starting -> running in the store; then the chroot_started hook;
5. build: the builder under the job's timeout; its slot is given back once it returns
   (publishing holds no build slot);
6. publish: the result is checked (verify.py) and signed (projects.py), its `success` or
   `fail` marker written and, for a success, the repository metadata updated (publisher.py);
7. finish: the state is stored, the results withdrawn when the store refuses it, the log
   compressed, and chroot_finished/build_finished fired (events.py).

Every outcome but success is an exception, caught in one place (`run`): ChrootSkipped,
ChrootFailed and ChrootCanceled carry the state to store; asyncio.CancelledError is a
user's cancel (canceled) or, during a shutdown, a retry (the chroot goes back to pending).
Each step that moves the chroot on is a conditional write that a cancel committed first
refuses, so a run the cancel did not reach stops at its next step.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import ClassVar

from .. import store
from ..builders import BuildContext, Builder, BuildJob, ChrootResult, Outcome
from ..models import Build
from ..processes import complete
from ..publisher import LiveLog, rpm_files
from ..signing import SigningError
from ..states import State
from ..verify import verify_result
from . import events
from .deps import EngineDeps
from .jobs import make_job
from .projects import sign_files

log = logging.getLogger(__name__)

# A test hook: awaited at each named step of a chroot run, (step, build id, chroot).
StepHook = Callable[[str, int, str], Awaitable[None]]


class RunEnded(Exception):
    """The run stops here and stores `state` with `reason`."""

    state: ClassVar[State]

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


class ChrootSkipped(RunEnded):
    """The same SRPM already succeeded in this chroot of the project."""

    state = State.SKIPPED


class ChrootFailed(RunEnded):
    """The chroot failed; `reason` is the one line users see."""

    state = State.FAILED


class ChrootCanceled(RunEnded):
    """The chroot moved on under its task (a cancel committed first): stop, publish nothing."""

    state = State.CANCELED


@dataclass(eq=False)
class ChrootRun:
    """Runs one claimed chroot. `release_slot()` gives its build slot back, `stopping()`
    says whether the server is shutting down, `step_hook` (tests) is awaited at each step."""

    deps: EngineDeps
    build_id: int
    chroot: str
    builder: Builder | None
    _: KW_ONLY
    release_slot: Callable[[], None]
    stopping: Callable[[], bool]
    step_hook: StepHook | None = None
    # What the steps leave for `finish`:
    result: ChrootResult | None = field(default=None, init=False)
    build_dir: Path | None = field(default=None, init=False)
    live: LiveLog | None = field(default=None, init=False)
    published: bool = field(default=False, init=False)  # the repository may list it

    async def run(self) -> None:
        """The script; always ends in a stored state once the chroot was claimed."""
        await self.step("claimed")
        if not await self.deps.db.write(
            store.set_chroot_state, self.build_id, self.chroot, State.STARTING
        ):
            return  # canceled before it started: nothing of it exists
        state: State = State.FAILED
        reason: str | None = "internal error in the dispatcher"
        try:
            await self.step("starting")
            build, builder = await self.load()
            job = await self.prepare(build)
            await self.step("prepared")
            await self.mark_running()
            await self.step("running")
            await self.announce_start(build, builder)
            self.result = await self.build(builder, job)
            self.release_slot()
            await self.step("built")
            self.published = True
            await self.publish(build, self.result)
            await self.step("published")
            state, reason = State.SUCCEEDED, None
        except RunEnded as end:
            state, reason = end.state, end.reason
            if isinstance(end, ChrootCanceled) and self.live is not None:
                await self.live.write("Build canceled")
        except asyncio.CancelledError:
            # A shutdown puts the chroot back in the queue; a user's cancel ends it.
            retry = self.stopping()
            state, reason = (State.PENDING if retry else State.CANCELED), None
            if self.live is not None:
                await complete(
                    self.live.write(
                        "Build interrupted by a server shutdown: it will run again"
                        if retry
                        else "Build canceled"
                    )
                )
            raise
        except Exception as exc:
            log.exception("build %d chroot %s failed in the dispatcher", self.build_id, self.chroot)
            reason = f"internal error: {exc}"
        finally:
            if self.live is not None:
                self.live.close()
            await complete(self.finish(state, reason))

    async def step(self, name: str) -> None:
        if self.step_hook is not None:
            await self.step_hook(name, self.build_id, self.chroot)

    # ------------------------------------------------------------ the steps

    async def load(self) -> tuple[Build, Builder]:
        """The build and its builder; ChrootSkipped when the same SRPM was built here."""
        build = await self.deps.db.read(store.get_build, self.build_id)
        if build is None or build.srpm_path is None or build.pkg_name is None:
            raise ChrootFailed("the build has no imported SRPM")
        if self.builder is None:
            name = self.deps.config.chroots.get(self.chroot)
            raise ChrootFailed(f"no builder named {name!r} for {self.chroot}")
        earlier = await self.deps.db.read(store.already_built, self.build_id, self.chroot)
        if earlier is not None:
            log.info(
                "skipped build=%d chroot=%s (same SRPM built by %d)",
                self.build_id,
                self.chroot,
                earlier,
            )
            raise ChrootSkipped
        return build, self.builder

    async def prepare(self, build: Build) -> BuildJob:
        """The job, an empty result directory and its live log."""
        job = await make_job(self.deps, build, self.chroot)
        assert build.pkg_name is not None  # load() saw to it
        self.build_dir = self.deps.publisher.build_dir(
            build.owner_name, build.project_name, self.chroot, build.id, build.pkg_name
        )
        # Leftovers of an interrupted earlier attempt must not be published.
        await self.deps.publisher.discard(self.build_dir)
        self.live = LiveLog(self.build_dir / "builder-live.log")
        attempt = next((c.attempts for c in build.chroots if c.chroot == self.chroot), 0)
        if attempt:
            await self.live.write(f"Attempt {attempt + 1}: the previous one was interrupted")
        return job

    async def mark_running(self) -> None:
        if not await self.deps.db.write(
            store.set_chroot_state, self.build_id, self.chroot, State.RUNNING
        ):
            raise ChrootCanceled

    async def announce_start(self, build: Build, builder: Builder) -> None:
        await events.chroot_started(self.deps, build, self.chroot)
        await self._log(f"Building {build.pkg_name} for {self.chroot} with {builder.name}")

    async def build(self, builder: Builder, job: BuildJob) -> ChrootResult:
        """The builder's result; a timeout is a failed result, not an exception."""
        assert self.build_dir is not None and self.live is not None
        # Scratch space lives outside the results tree, where createrepo_c never looks.
        work_dir = self.deps.config.data_dir / "work" / f"{job.build_id}-{job.chroot.name}"
        work_dir.mkdir(parents=True, exist_ok=True)
        ctx = BuildContext(result_dir=self.build_dir, work_dir=work_dir, log=self.live.write)
        try:
            async with asyncio.timeout(job.timeout):
                return await builder.build(job, ctx)
        except TimeoutError:
            await self.live.write(f"Build timed out after {job.timeout} s")
            return ChrootResult.failed(f"build timed out after {job.timeout} s")
        finally:
            await asyncio.to_thread(shutil.rmtree, work_dir, ignore_errors=True)

    async def publish(self, build: Build, result: ChrootResult) -> None:
        """Lay the result out with its marker; a success enters the repository, anything
        else raises ChrootFailed (after its `fail` marker is written)."""
        build_dir = self.build_dir
        assert build_dir is not None
        builder_name = self.deps.config.chroots.get(self.chroot, "?")
        result = await verify_result(result, build_dir, builder_name)
        succeeded = result.status is Outcome.SUCCEEDED
        if succeeded and not result.packages:
            succeeded, result = False, ChrootResult.failed("the builder produced no packages")
        if succeeded:
            # Signed before the success marker: only signed packages enter the repository.
            try:
                files = await asyncio.to_thread(rpm_files, build_dir)
                assert self.live is not None
                await sign_files(self.deps, build.owner_name, build.project_name, files, self.live)
            except SigningError as exc:
                succeeded, result = False, ChrootResult.failed(str(exc))
        reason = None if succeeded else (result.fail_reason or "build failed")
        await self.deps.publisher.finish_build_dir(
            build_dir,
            build_id=build.id,
            chroot=self.chroot,
            status="succeeded" if succeeded else "failed",
            packages=list(result.packages),
            files=list(result.files),
            fail_reason=reason,
        )
        if succeeded:
            await self._log("Updating the repository metadata (createrepo_c)")
            await self.deps.publisher.createrepo(build_dir.parent, add=[build_dir.name])
        await self._log(f"Finished: {'succeeded' if succeeded else 'failed: ' + str(reason)}")
        if not succeeded:
            raise ChrootFailed(reason)

    async def finish(self, state: State, reason: str | None) -> None:
        """Store the chroot's end. What the database says wins: when it refuses a success
        (canceled meanwhile), or the run itself ends canceled or re-queued, its results
        leave the results tree, and the repository when they had entered it."""
        result, build_dir = self.result, self.build_dir
        packages = [
            (p.name, p.epoch, p.version, p.release, p.arch)
            for p in (result.packages if result and state is State.SUCCEEDED else ())
        ]
        refused = done = False
        try:
            outcome = await self.deps.db.write(
                store.finish_chroot, self.build_id, self.chroot, state, reason, packages
            )
            refused, done = not outcome.stored, outcome.build_done
        except Exception:
            log.exception(
                "could not store the end of build %d chroot %s", self.build_id, self.chroot
            )
        if build_dir is not None and (state in (State.CANCELED, State.PENDING) or refused):
            await self._withdraw(build_dir, keep_log=state is not State.PENDING)
        if build_dir is not None and state is not State.PENDING:
            await self._seal(build_dir)
        if state.terminal:
            await events.chroot_ended(
                self.deps, self.build_id, (self.chroot, result), build_done=done
            )

    # ------------------------------------------------------------ helpers

    async def _log(self, line: str) -> None:
        assert self.live is not None
        await self.live.write(line)

    async def _seal(self, build_dir: Path) -> None:
        """Compress the ended chroot's log and record the bytes its directory holds."""
        try:
            size = await self.deps.publisher.seal_build_dir(build_dir)
            await self.deps.db.write(store.record_chroot_bytes, self.build_id, self.chroot, size)
        except Exception:
            log.exception("could not seal the results of %s", build_dir)

    async def _withdraw(self, build_dir: Path, *, keep_log: bool) -> None:
        """Remove the results (a canceled run keeps its log; a re-queued one starts
        afresh), and rebuild the repository metadata when they may have entered it."""
        try:
            await self.deps.publisher.discard(build_dir, keep_log=keep_log)
            if self.published:
                await self.deps.publisher.createrepo(build_dir.parent, remove=[build_dir.name])
                log.info("withdrew the results of %s from the repository", build_dir)
        except Exception:
            log.exception("could not withdraw the results of %s", build_dir)
