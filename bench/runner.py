"""How a benchmark script runs: in a scratch directory made fresh and removed at the end
unless the run was asked to keep it (--keep), ending with the exit status of its targets."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def scratch_dir(prefix: str, keep: bool) -> Iterator[Path]:
    """A new temporary directory for the block; kept (and said so) with `keep`."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


def exit_status(measure: Callable[[], bool], check: bool) -> int:
    """Run `measure` (True when every target was met): 130 when interrupted (Ctrl+C), 1 when
    `check` and a target was missed, else 0."""
    try:
        ok = measure()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        return 130
    return 1 if check and not ok else 0
