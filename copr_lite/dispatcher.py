"""The build loop: imports SRPMs, hands pending chroots to builders, writes the outcome.

One background task (started in the app's cleanup context) wakes whenever something
changes (a submit, a cancel, a finished chroot) or every POLL_SECONDS. Each round it:
1. starts imports for builds still `importing` (at most IMPORT_CONCURRENCY at once);
2. claims pending chroots while the global and per-builder limits allow, choosing the
   owner with the fewest running chroots first, so one owner's queue cannot starve others;
3. runs each claimed chroot as its own task: `_run_chroot` is the script of named steps.
A chroot always ends in a terminal state, written in `finally`; on start-up, chroots a
crash left starting/running are re-queued once, then failed.

Starting and canceling are ordered by the database, not by timing. A claimed chroot's task
is tracked from the moment it exists (before its first await), so a cancel that finds it
cancels it; and every step that moves the chroot on (pending -> starting -> running, and the
final state) is a conditional write that a cancel committed first refuses, so a task that a
cancel did not find stops at its next step. A chroot canceled after its packages entered
the repository is taken out again (results removed, repository metadata rebuilt).

With signing on, an imported SRPM is signed with its project's key before its chroots go
pending, and a chroot's packages before its `success` marker is written (the publisher signs
repomd.xml after each createrepo_c run); a build that gets there before its project's key
exists waits for it, at most `[signing] key_wait` seconds. Keys are made in side tasks: one
when a project is created, and one at start-up that signs, project after project, what was
published before its project had a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import shutil
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pluggy

from . import forms, store
from .builders import (
    BuildContext,
    Builder,
    BuilderRegistry,
    BuildJob,
    Chroot,
    ChrootResult,
    Outcome,
    PackageInfo,
)
from .config import Config
from .db import Database
from .models import Build
from .plugins import fire
from .processes import complete
from .publisher import LiveLog, Publisher, rpm_files
from .signing import SigningError
from .srpm import SrpmError, import_srpm, public_url
from .states import State
from .verify import verify_result

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
IMPORT_CONCURRENCY = 2
IMPORT_TIME_LIMIT = 600.0
CANDIDATES_PER_OWNER = 4
# During a burst of submissions (one less than SUBMIT_LULL after another) the dispatcher
# runs at most one round per SUBMIT_LULL and starts imports only once the burst pauses, or
# at least every IMPORT_MAX_DEFER seconds: the HTTP requests come first. A lone submission
# is handled at once.
SUBMIT_LULL = 0.1
ANNOUNCE_CHUNK = 20
IMPORT_MAX_DEFER = 1.0


# A test hook: awaited at each named step of a chroot run, (step, build id, chroot).
StepHook = Callable[[str, int, str], Awaitable[None]]


class ChrootCanceled(Exception):
    """The chroot moved on under its task (a cancel committed first): stop, publish nothing."""


@dataclass
class _Running:
    task: asyncio.Task[None]
    owner_id: int
    builder: str


class Dispatcher:
    """Owns every running import and build task of one app."""

    def __init__(
        self,
        config: Config,
        db: Database,
        pm: pluggy.PluginManager,
        builders: BuilderRegistry,
        publisher: Publisher,
    ) -> None:
        self.config = config
        self.db = db
        self.pm = pm
        self.builders = builders
        self.publisher = publisher
        self._wake = asyncio.Event()
        self._running: dict[tuple[int, str], _Running] = {}
        self._imports: dict[int, asyncio.Task[None]] = {}
        self._submitted: list[int] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_submit = float("-inf")
        self._last_import = float("-inf")
        self._in_burst = False
        self._deferred_wake = False
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._publishing: dict[tuple[int, str], asyncio.Task[None]] = {}
        self._served: dict[int, int] = {}  # owner id -> when (a counter) it last got a slot
        self._serve_count = 0
        self.step_hook: StepHook | None = None

    # ------------------------------------------------------------ control

    async def start(self) -> None:
        requeued, failed = await self.db.write(store.recover_interrupted)
        for build_id, chroot in requeued:
            log.warning("re-queued build=%d chroot=%s after an interrupted run", build_id, chroot)
        for build_id, chroot in failed:
            log.error("failed build=%d chroot=%s: interrupted twice", build_id, chroot)
        self._loop_task = asyncio.create_task(self._loop(), name="copr-lite-dispatcher")
        if self.publisher.signer is not None:
            # Projects published before signing existed (or was turned on) get a key and
            # their packages signed, one project after another, while the server serves.
            self._spawn(self._sign_existing(), "sign-existing-projects")

    async def stop(self) -> None:
        """Stop the loop and every task; their chroots go back to pending."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = [r.task for r in self._running.values()]
        tasks += [*self._publishing.values(), *self._imports.values(), *self._side_tasks]
        for task in tasks:
            task.cancel(msg="shutdown")
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    @property
    def alive(self) -> bool:
        """The build loop runs (started, and has not ended)."""
        return self._loop_task is not None and not self._loop_task.done()

    def submitted(self, build_ids: Iterable[int]) -> None:
        """New builds were stored: announce them and start their imports."""
        self._submitted.extend(build_ids)
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._in_burst = now - self._last_submit < SUBMIT_LULL
        self._last_submit = now
        if not self._in_burst:
            self.wake()
        elif not self._deferred_wake:
            self._deferred_wake = True
            loop.call_later(SUBMIT_LULL, self._wake_after_lull)

    def _wake_after_lull(self) -> None:
        self._deferred_wake = False
        self.wake()

    def _may_import(self) -> bool:
        now = asyncio.get_running_loop().time()
        return (
            not self._in_burst
            or now - self._last_submit >= SUBMIT_LULL
            or now - self._last_import >= IMPORT_MAX_DEFER
        )

    async def cancel_build(self, build_id: int, wait: float = 15.0) -> None:
        """Stop the running chroots of a build (its state is already `canceled`)."""
        tasks = [r.task for key, r in self._running.items() if key[0] == build_id]
        tasks += [task for key, task in self._publishing.items() if key[0] == build_id]
        if build_id in self._imports:
            tasks.append(self._imports[build_id])
        for task in tasks:
            task.cancel(msg="canceled")
        if tasks:
            await asyncio.wait(tasks, timeout=wait)
        self.wake()
        # The cancel's own transaction finished the build, so no chroot task announces it.
        build = await self.db.read(store.get_build, build_id)
        if build is not None and all(State.from_code(c.status).terminal for c in build.chroots):
            await fire(self.pm, "build_finished", build=build)

    def prepare_repos(self, owner: str, project: str, chroots: Iterable[str]) -> None:
        """Create empty repositories for a new project's chroots (in the background), so
        its yum_repos URLs answer before the first build."""
        dirs = [self.publisher.chroot_dir(owner, project, chroot) for chroot in chroots]
        self._spawn(self._create_repos(dirs), f"repos-{owner}-{project}")
        if self.publisher.signer is not None:
            self._spawn(self._ensure_signed(owner, project), f"key-{owner}-{project}")

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _ensure_signed(self, owner: str, project: str) -> None:
        """Give the project a key (made now when it has none), publish its public key, and
        sign what it published before it had one. Failures are logged; a build waiting for
        the key fails on its own after `key_wait`."""
        signer = self.publisher.signer
        if signer is None:
            return
        try:
            key = await signer.key(owner, project)
            await self.publisher.publish_keys(owner, project, key)
            if not key.adopted:
                count = await self.publisher.sign_project(owner, project, key)
                await signer.mark_adopted(owner, project, key)
                if count:
                    log.info("signed %d published packages of %s/%s", count, owner, project)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not sign project %s/%s", owner, project)

    async def _sign_existing(self) -> None:
        signer = self.publisher.signer
        assert signer is not None
        for owner, project in await self.db.read(store.all_project_names):
            key = await asyncio.to_thread(signer.current, owner, project)
            if key is None or not key.adopted:
                await self._ensure_signed(owner, project)

    async def _create_repos(self, dirs: list[Path]) -> None:
        for chroot_dir in dirs:
            try:
                await self.publisher.createrepo(chroot_dir)
            except Exception:
                log.exception("could not create the empty repository %s", chroot_dir)

    def _forget(self, key: tuple[int, str], task: asyncio.Task[None]) -> None:
        """A chroot task ended (also one cancelled before its first step ran)."""
        entry = self._running.get(key)
        if entry is not None and entry.task is task:
            del self._running[key]
        if self._publishing.get(key) is task:
            del self._publishing[key]
        self.wake()

    def _release_slot(self, build_id: int, chroot: str) -> None:
        entry = self._running.pop((build_id, chroot), None)
        if entry is not None:
            self._publishing[(build_id, chroot)] = entry.task
            self.wake()

    @property
    def running(self) -> list[tuple[int, str]]:
        return sorted(self._running)

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
            # In chunks, letting requests in between: a burst can leave hundreds here.
            for start in range(0, len(ids), ANNOUNCE_CHUNK):
                for build in await self.db.read(
                    store.get_builds, ids[start : start + ANNOUNCE_CHUNK]
                ):
                    await fire(self.pm, "build_submitted", build=build)
                await asyncio.sleep(0)
        free_imports = IMPORT_CONCURRENCY - len(self._imports)
        if free_imports > 0 and not self._may_import():
            if not self._deferred_wake:
                self._deferred_wake = True
                asyncio.get_running_loop().call_later(SUBMIT_LULL, self._wake_after_lull)
        elif free_imports > 0:
            self._last_import = asyncio.get_running_loop().time()
            for build_id in await self.db.read(store.importing_builds, free_imports + 16):
                if build_id in self._imports or free_imports <= 0:
                    continue
                free_imports -= 1
                self._imports[build_id] = asyncio.create_task(
                    self._import(build_id), name=f"import-{build_id}"
                )
        await self._claim()

    async def _claim(self) -> None:
        free = self.config.concurrency - len(self._running)
        if free <= 0:
            return
        candidates = await self.db.read(store.pending_candidates, CANDIDATES_PER_OWNER)
        per_owner = Counter(r.owner_id for r in self._running.values())
        per_builder = Counter(r.builder for r in self._running.values())
        queues: dict[int, list[tuple[int, str]]] = {}
        for candidate in candidates:
            key = (candidate.build_id, candidate.chroot)
            if key not in self._running:
                queues.setdefault(candidate.owner_id, []).append(key)
        while free > 0 and queues:
            # The owner with the fewest running chroots goes first, then the one served
            # longest ago, then the oldest build: owners take turns whatever their queues.
            owner_id = min(
                queues, key=lambda o: (per_owner[o], self._served.get(o, -1), queues[o][0][0])
            )
            build_id, chroot = queues[owner_id].pop(0)
            if not queues[owner_id]:
                del queues[owner_id]
            builder_name = self.config.chroots.get(chroot, "")
            builder = self.builders.get(builder_name)
            limit = getattr(builder, "concurrency", None)
            if builder is not None and limit is not None and per_builder[builder_name] >= limit:
                continue
            # Tracked before its first step runs: a cancel from now on finds this task.
            task = asyncio.create_task(
                self._run_chroot(build_id, chroot, builder), name=f"build-{build_id}-{chroot}"
            )
            key = (build_id, chroot)
            self._running[key] = _Running(task, owner_id, builder_name)
            task.add_done_callback(functools.partial(self._forget, key))
            self._serve_count += 1
            self._served[owner_id] = self._serve_count
            per_owner[owner_id] += 1
            per_builder[builder_name] += 1
            free -= 1

    # ------------------------------------------------------------ import

    async def _import(self, build_id: int) -> None:
        """Fetch (or take the uploaded) SRPM, read its header; chroots -> pending or failed."""
        live: LiveLog | None = None
        import_dir: Path | None = None
        try:
            build = await self.db.read(store.get_build, build_id)
            if build is None:
                return
            import_dir = self.publisher.import_dir(build.owner_name, build.project_name, build.id)
            live = LiveLog(import_dir / "builder-live.log")
            await live.write(f"Importing build {build.id}: {public_url(build.source_url)}")
            try:
                path, sha256, package = await import_srpm(
                    build.source_url,
                    Path(build.srpm_path) if build.srpm_path else None,
                    import_dir,
                    allowed_networks=self.config.srpm_allowed_networks,
                    size_limit=self.config.upload_size_limit,
                    time_limit=IMPORT_TIME_LIMIT,
                    log=live.write,
                )
            except SrpmError as exc:
                await live.write(f"Import failed: {exc}")
                done = await self.db.write(store.import_failed, build_id, f"import failed: {exc}")
                await self._after_chroots(build_id, None, build_done=done)
                return
            try:
                await self._sign(build.owner_name, build.project_name, [path], live)
            except SigningError as exc:
                # An unsigned SRPM is not published: only its log stays.
                await asyncio.to_thread(path.unlink, True)
                await live.write(f"Import failed: {exc}")
                done = await self.db.write(store.import_failed, build_id, f"import failed: {exc}")
                await self._after_chroots(build_id, None, build_done=done)
                return
            await live.write(f"Imported {package.nevra}")
            await self.db.write(
                store.import_succeeded,
                build_id,
                str(path),
                sha256,
                package.name,
                package.epoch,
                package.version,
                package.release,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("import of build %d failed", build_id)
            await self.db.write(store.import_failed, build_id, f"import failed: {exc}")
        finally:
            if live is not None:
                live.close()
            if import_dir is not None:
                await complete(self._record_import(build_id, import_dir))
            self._imports.pop(build_id, None)
            self.wake()

    async def _record_import(self, build_id: int, import_dir: Path) -> None:
        try:
            size = await self.publisher.tree_size(import_dir)
            await self.db.write(store.record_import_bytes, build_id, size)
        except Exception:
            log.exception("could not record the size of %s", import_dir)

    # ------------------------------------------------------------ one chroot

    async def _step(self, name: str, build_id: int, chroot: str) -> None:
        if self.step_hook is not None:
            await self.step_hook(name, build_id, chroot)

    async def _run_chroot(self, build_id: int, chroot: str, builder: Builder | None) -> None:
        """Build one claimed chroot: claim it in the database, prepare, mark it running, run
        the builder under the timeout, publish, and always write a terminal state. A step
        that the database refuses (the chroot was canceled) ends the run."""
        await self._step("claimed", build_id, chroot)
        if not await self.db.write(store.set_chroot_state, build_id, chroot, State.STARTING):
            return  # canceled before it started: nothing of it exists
        state: State = State.FAILED
        reason: str | None = "internal error in the dispatcher"
        result: ChrootResult | None = None
        build_dir: Path | None = None
        live: LiveLog | None = None
        published = False
        try:
            await self._step("starting", build_id, chroot)
            build = await self.db.read(store.get_build, build_id)
            if build is None or build.srpm_path is None or build.pkg_name is None:
                reason = "the build has no imported SRPM"
                return
            if builder is None:
                reason = f"no builder named {self.config.chroots.get(chroot)!r} for {chroot}"
                return
            earlier = await self.db.read(store.already_built, build_id, chroot)
            if earlier is not None:
                state, reason = State.SKIPPED, None
                log.info(
                    "skipped build=%d chroot=%s (same SRPM built by %d)", build_id, chroot, earlier
                )
                return
            job = await self._job(build, chroot)
            build_dir = self.publisher.build_dir(
                build.owner_name, build.project_name, chroot, build.id, build.pkg_name
            )
            # Leftovers of an interrupted earlier attempt must not be published.
            await self.publisher.discard(build_dir)
            live = LiveLog(build_dir / "builder-live.log")
            attempt = next((c.attempts for c in build.chroots if c.chroot == chroot), 0)
            if attempt:
                await live.write(f"Attempt {attempt + 1}: the previous one was interrupted")
            await self._step("prepared", build_id, chroot)
            if not await self.db.write(store.set_chroot_state, build_id, chroot, State.RUNNING):
                raise ChrootCanceled
            await self._step("running", build_id, chroot)
            await fire(self.pm, "chroot_started", build=build, chroot=chroot)
            await live.write(f"Building {build.pkg_name} for {chroot} with {builder.name}")
            result = await self._build(builder, job, build_dir, live)
            # Publishing (createrepo_c) does not hold a build slot: the next chroot starts
            # now, and updates that pile up meanwhile are served by one createrepo_c run.
            self._release_slot(build_id, chroot)
            await self._step("built", build_id, chroot)
            published = True  # from here on the repository may list its packages
            state, reason = await self._publish(build, chroot, build_dir, result, live)
            await self._step("published", build_id, chroot)
        except ChrootCanceled:
            state, reason = State.CANCELED, None
            if live is not None:
                await live.write("Build canceled")
        except asyncio.CancelledError:
            # A shutdown puts the chroot back in the queue; a user's cancel ends it.
            state, reason = (State.PENDING if self._stopping else State.CANCELED), None
            if live is not None:
                await complete(
                    live.write(
                        "Build interrupted by a server shutdown: it will run again"
                        if self._stopping
                        else "Build canceled"
                    )
                )
            raise
        except Exception as exc:
            log.exception("build %d chroot %s failed in the dispatcher", build_id, chroot)
            reason = f"internal error: {exc}"
        finally:
            if live is not None:
                live.close()
            await complete(
                self._finish(build_id, chroot, state, reason, result, build_dir, published)
            )

    async def _build(
        self, builder: Builder, job: BuildJob, build_dir: Path, live: LiveLog
    ) -> ChrootResult:
        # Scratch space lives outside the results tree, where createrepo_c never looks.
        work_dir = self.config.data_dir / "work" / f"{job.build_id}-{job.chroot.name}"
        work_dir.mkdir(parents=True, exist_ok=True)
        ctx = BuildContext(result_dir=build_dir, work_dir=work_dir, log=live.write)
        try:
            async with asyncio.timeout(job.timeout):
                return await builder.build(job, ctx)
        except TimeoutError:
            await live.write(f"Build timed out after {job.timeout} s")
            return ChrootResult.failed(f"build timed out after {job.timeout} s")
        finally:
            await asyncio.to_thread(_remove_tree, work_dir)

    async def _publish(
        self, build: Build, chroot: str, build_dir: Path, result: ChrootResult, live: LiveLog
    ) -> tuple[State, str | None]:
        result = await verify_result(result, build_dir, self.config.chroots.get(chroot, "?"))
        succeeded = result.status is Outcome.SUCCEEDED
        if succeeded and not result.packages:
            succeeded, result = False, ChrootResult.failed("the builder produced no packages")
        if succeeded:
            # Signed before the success marker: only signed packages enter the repository.
            try:
                files = await asyncio.to_thread(rpm_files, build_dir)
                await self._sign(build.owner_name, build.project_name, files, live)
            except SigningError as exc:
                succeeded, result = False, ChrootResult.failed(str(exc))
        reason = None if succeeded else (result.fail_reason or "build failed")
        await self.publisher.finish_build_dir(
            build_dir,
            build_id=build.id,
            chroot=chroot,
            status="succeeded" if succeeded else "failed",
            packages=list(result.packages),
            files=list(result.files),
            fail_reason=reason,
        )
        if succeeded:
            await live.write("Updating the repository metadata (createrepo_c)")
            await self.publisher.createrepo(build_dir.parent, add=[build_dir.name])
        await live.write(f"Finished: {'succeeded' if succeeded else 'failed: ' + str(reason)}")
        return (State.SUCCEEDED if succeeded else State.FAILED), reason

    async def _sign(self, owner: str, project: str, files: list[Path], live: LiveLog) -> None:
        """Sign `files` with the project's key, waiting for the key (at most `key_wait`)
        when it is still being made. SigningError says why it could not."""
        signer = self.publisher.signer
        if signer is None or not files:
            return
        key = await signer.key(owner, project, wait=self.config.key_wait)
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            await signer.sign_rpms(key, files)
        except SigningError as exc:
            raise SigningError(f"could not sign the packages: {exc}") from None
        await live.write(
            f"Signed {len(files)} package(s) with key {key.key_id} in {loop.time() - started:.2f} s"
        )

    async def _finish(
        self,
        build_id: int,
        chroot: str,
        state: State,
        reason: str | None,
        result: ChrootResult | None,
        build_dir: Path | None,
        published: bool,
    ) -> None:
        """Store the chroot's end. What the database says wins: when it refuses a success
        (canceled meanwhile), or the run itself ends canceled or re-queued, its results
        leave the results tree, and the repository when they had entered it."""
        packages = [
            (p.name, p.epoch, p.version, p.release, p.arch)
            for p in (result.packages if result and state is State.SUCCEEDED else ())
        ]
        refused = done = False
        try:
            outcome = await self.db.write(
                store.finish_chroot, build_id, chroot, state, reason, packages
            )
            refused, done = not outcome.stored, outcome.build_done
        except Exception:
            log.exception("could not store the end of build %d chroot %s", build_id, chroot)
        if build_dir is not None and (state in (State.CANCELED, State.PENDING) or refused):
            await self._withdraw(
                build_dir, republish=published, keep_log=state is not State.PENDING
            )
        if build_dir is not None and state is not State.PENDING:
            await self._seal(build_id, chroot, build_dir)
        if state.terminal:
            await self._after_chroots(build_id, (chroot, result), build_done=done)

    async def _seal(self, build_id: int, chroot: str, build_dir: Path) -> None:
        """Compress the ended chroot's log and record the bytes its directory holds."""
        try:
            size = await self.publisher.seal_build_dir(build_dir)
            await self.db.write(store.record_chroot_bytes, build_id, chroot, size)
        except Exception:
            log.exception("could not seal the results of %s", build_dir)

    async def _withdraw(self, build_dir: Path, *, republish: bool, keep_log: bool) -> None:
        """Remove a build's results (a canceled one keeps its log; a re-queued one starts
        afresh), and rebuild the repository metadata when they may have entered it."""
        try:
            await self.publisher.discard(build_dir, keep_log=keep_log)
            if republish:
                await self.publisher.createrepo(build_dir.parent, remove=[build_dir.name])
                log.info("withdrew the results of %s from the repository", build_dir)
        except Exception:
            log.exception("could not withdraw the results of %s", build_dir)

    async def _after_chroots(
        self,
        build_id: int,
        finished: tuple[str, ChrootResult | None] | None,
        *,
        build_done: bool,
    ) -> None:
        """Fire chroot_finished for `finished`, and build_finished when `build_done` (the
        store said this change finished the build, so it fires exactly once)."""
        build = await self.db.read(store.get_build, build_id)
        if build is None:
            return
        if finished is not None:
            chroot, result = finished
            state = next(
                (State.from_code(c.status) for c in build.chroots if c.chroot == chroot),
                State.FAILED,
            )
            await fire(
                self.pm,
                "chroot_finished",
                build=build,
                chroot=chroot,
                result=result,
                state=state,
            )
        if build_done:
            await fire(self.pm, "build_finished", build=build)

    async def _job(self, build: Build, chroot: str) -> BuildJob:
        settings = await self.db.read(store.get_chroot_settings, build.project_id, chroot)
        packages, chroot_repos = settings or ("", "")
        own_repo = self._results_repo(build.owner_name, build.project_name, chroot)
        repos = [own_repo]
        # The build's additional repositories, then the chroot's own extra ones.
        for url in (*build.repos.split(), *chroot_repos.split()):
            # copr://owner/project names another project of this server, as in Copr.
            other = re.match(r"^copr://([^/]+)/([^/]+)/?$", url)
            repos.append(self._results_repo(other[1], other[2], chroot) if other else url)
        # The server's own repositories are read from disk by local builders.
        local_repos: dict[str, Path] = {}
        for url in repos:
            parts = url.removeprefix(self.config.public_results_url + "/").rstrip("/").split("/")
            if url.startswith(self.config.public_results_url + "/") and len(parts) == 3:
                with contextlib.suppress(ValueError):
                    local_repos[url] = self.publisher.chroot_dir(*parts)
        return BuildJob(
            build_id=build.id,
            owner=build.owner_name,
            project=build.project_name,
            chroot=Chroot.parse(chroot),
            srpm=Path(build.srpm_path or ""),
            package=PackageInfo(
                build.pkg_name or "",
                build.pkg_epoch,
                build.pkg_version or "",
                build.pkg_release or "",
                "src",
            ),
            buildroot_pkgs=tuple(forms.split_packages(packages)),
            repos=tuple(dict.fromkeys(repos)),
            distro_repos=self.config.distribution_repos(chroot),
            local_repos=local_repos,
            enable_net=build.enable_net,
            memory_reqs=build.memory_reqs,
            timeout=build.timeout or self.config.default_timeout,
        )

    def _results_repo(self, owner: str, project: str, chroot: str) -> str:
        return f"{self.config.public_results_url}/{owner}/{project}/{chroot}/"


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
