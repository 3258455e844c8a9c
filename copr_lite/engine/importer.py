"""SRPM imports: a build's first step, from `importing` to `pending` (or failed).

services.submit_builds stores the build with its chroots `importing` and tells the loop
(loop.py), which asks `Importer.start_waiting()` to start imports while fewer than
IMPORT_CONCURRENCY run. An import fetches the SRPM (or takes the uploaded one), reads its
header, signs it with the project's key when signing is on (projects.py), and stores it:
the build's chroots become `pending`, where the scheduler (scheduler.py) finds them.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import forms, sources, store
from ..builders import PackageInfo
from ..models import Build
from ..processes import complete
from ..publisher import LiveLog
from ..signing import SigningError
from ..srpm import SrpmError, import_srpm, public_url
from ..states import State
from . import events
from .deps import EngineDeps
from .projects import sign_files

log = logging.getLogger(__name__)

IMPORT_CONCURRENCY = 2
IMPORT_TIME_LIMIT = 600.0


class ImportFailed(Exception):
    """The SRPM cannot be imported; the message says why (it goes to the build's log)."""


class Importer:
    """Owns the running import tasks; `done` is called when one ends."""

    def __init__(self, deps: EngineDeps, done: Callable[[], None]) -> None:
        self.deps = deps
        self._done = done
        self._tasks: dict[int, asyncio.Task[None]] = {}

    @property
    def free(self) -> int:
        """How many more imports may start now."""
        return IMPORT_CONCURRENCY - len(self._tasks)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks.values())

    def task_of(self, build_id: int) -> asyncio.Task[None] | None:
        return self._tasks.get(build_id)

    async def start_waiting(self) -> None:
        """Start imports of the oldest builds waiting for one, as many as are free."""
        free = self.free
        for build_id in await self.deps.db.read(store.importing_builds, free + 16):
            if build_id in self._tasks or free <= 0:
                continue
            free -= 1
            self._tasks[build_id] = asyncio.create_task(
                self._run(build_id), name=f"import-{build_id}"
            )

    async def _run(self, build_id: int) -> None:
        try:
            await import_build(self.deps, build_id)
        finally:
            self._tasks.pop(build_id, None)
            self._done()


async def import_build(deps: EngineDeps, build_id: int) -> None:
    """Fetch (or take the uploaded) SRPM, read its header; chroots -> pending or failed."""
    live: LiveLog | None = None
    import_dir: Path | None = None
    try:
        build = await deps.db.read(store.get_build, build_id)
        if build is None or not any(c.status is State.IMPORTING for c in build.chroots):
            # Canceled (or deleted) after the loop read it as waiting, before this task was
            # there for the cancel to find: nothing is fetched, read or written.
            return
        import_dir = deps.publisher.import_dir(build.owner_name, build.project_name, build.id)
        live = LiveLog(import_dir / "builder-live.log")
        await live.write(f"Importing build {build.id}: {public_url(build.source_url)}")
        try:
            path, sha256, package = await _fetch(deps, build, import_dir, live)
            await _sign(deps, build.owner_name, build.project_name, path, live)
        except ImportFailed as exc:
            await live.write(f"Import failed: {exc}")
            done = await deps.db.write(store.import_failed, build_id, f"import failed: {exc}")
            await events.chroot_ended(deps, build_id, None, build_done=done)
            return
        await live.write(f"Imported {package.nevra}")
        await deps.db.write(
            store.import_succeeded,
            build_id,
            str(path),
            sha256,
            package,
        )
        upload = Path(build.srpm_path) if build.srpm_path else None
        if upload is not None and upload.parent.parent == deps.config.upload_dir:
            # The imported copy is the build's SRPM from now on (a rebuild copies that one).
            await asyncio.to_thread(forms.remove_upload, upload)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("import of build %d failed", build_id)
        await deps.db.write(store.import_failed, build_id, f"import failed: {exc}")
    finally:
        if live is not None:
            live.close()
        if import_dir is not None:
            await complete(_record_size(deps, build_id, import_dir))


async def _fetch(
    deps: EngineDeps, build: Build, import_dir: Path, live: LiveLog
) -> tuple[Path, str, PackageInfo]:
    """The build's SRPM in `import_dir`: (path, sha256, header); ImportFailed says why not.
    A build from a package source (scm, custom) first makes its SRPM in the sandbox."""
    config = deps.config
    work_dir: Path | None = None
    try:
        srpm_path = Path(build.srpm_path) if build.srpm_path else None
        if srpm_path is None and build.source_type in sources.SOURCE_TYPES:
            work_dir = Path(await asyncio.to_thread(_scratch_dir, config.data_dir))
            srpm_path = await sources.make_srpm(
                build.source_type,
                build.source_dict,
                work_dir / "work",
                work_dir / "out",
                allowed_networks=config.srpm_allowed_networks,
                size_limit=config.upload_size_limit,
                time_limit=IMPORT_TIME_LIMIT,
                log=live.write,
            )
        return await import_srpm(
            build.source_url,
            srpm_path,
            import_dir,
            allowed_networks=config.srpm_allowed_networks,
            size_limit=config.upload_size_limit,
            time_limit=IMPORT_TIME_LIMIT,
            log=live.write,
        )
    except SrpmError as exc:
        raise ImportFailed(str(exc)) from None
    finally:
        if work_dir is not None:
            await complete(asyncio.to_thread(shutil.rmtree, work_dir, True))


def _scratch_dir(data_dir: Path) -> str:
    """A new directory where an SRPM is made (on the data disk: clones can be big)."""
    parent = data_dir / "srpm-work"
    parent.mkdir(exist_ok=True)
    return tempfile.mkdtemp(prefix="build-", dir=parent)


async def _sign(deps: EngineDeps, owner: str, project: str, path: Path, live: LiveLog) -> None:
    try:
        await sign_files(deps, owner, project, [path], live)
    except SigningError as exc:
        # An unsigned SRPM is not published: only its log stays.
        await asyncio.to_thread(path.unlink, True)
        raise ImportFailed(str(exc)) from None


async def _record_size(deps: EngineDeps, build_id: int, import_dir: Path) -> None:
    try:
        size = await deps.publisher.tree_size(import_dir)
        await deps.db.write(store.record_import_bytes, build_id, size)
    except Exception:
        log.exception("could not record the size of %s", import_dir)
