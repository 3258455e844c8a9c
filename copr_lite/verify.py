"""What a builder returns is checked before anything is published.

A builder's word is not taken, whether it ran here or on a worker machine: for a success,
every file it reports must exist inside its result directory and be an RPM whose header the
server reads itself, and the binary packages it lists must be exactly those headers.
The dispatcher checks every result with `verify_result()`, the remote plugin checks
uploads with `read_result_files()`, and the conformance kit checks builders with
`check_result()`: one set of rules for all three.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from .builders import ChrootResult, Outcome, PackageInfo, is_rpm_file, read_rpm_headers


class ResultError(ValueError):
    """A builder's result does not hold (one line saying what is wrong)."""


def _resolve(path: Path, result_dir: Path | None) -> Path:
    """A reported file as an absolute path, checked to exist inside `result_dir`."""
    full = path if path.is_absolute() or result_dir is None else result_dir / path
    if not full.is_file():
        raise ResultError(f"{path.name} does not exist")
    if result_dir is not None and not full.resolve().is_relative_to(result_dir.resolve()):
        raise ResultError(f"{path} is not inside the result directory")
    if not full.name.endswith(".rpm") or not is_rpm_file(full):
        raise ResultError(f"{path.name} is not an RPM file")
    return full


async def read_result_files(
    paths: Sequence[Path], result_dir: Path | None = None
) -> list[PackageInfo]:
    """The headers of result files, in order ("src" arch for source packages).

    Raises ResultError when a file does not exist, lies outside `result_dir` (when given),
    is not an RPM, or has a header that cannot be read.
    """
    files = await asyncio.to_thread(lambda: [_resolve(Path(p), result_dir) for p in paths])
    try:
        return await read_rpm_headers(files)
    except ValueError as exc:
        raise ResultError(f"an RPM header cannot be read: {exc}") from None


def _nevras(packages: Sequence[PackageInfo] | set[PackageInfo]) -> str:
    return ", ".join(sorted(p.nevra for p in packages))


async def check_result(result: ChrootResult, result_dir: Path) -> None:
    """Raise ResultError unless a successful `result` holds (a failure publishes nothing).

    Every reported file is an RPM inside `result_dir`; at least one binary package is
    listed, no source package, and exactly the binary packages of the reported RPMs (each
    package has its file, each binary RPM its package).
    """
    if result.status is not Outcome.SUCCEEDED:
        return
    headers = await read_result_files(result.files, result_dir)
    reported = list(result.packages)
    if not reported:
        raise ResultError("it succeeded without packages")
    if any(p.arch == "src" for p in reported):
        raise ResultError("it lists the source package among the built packages")
    if len(set(reported)) != len(reported):
        raise ResultError(f"it lists a package twice: {_nevras(reported)}")
    built = {p for p in headers if p.arch != "src"}
    if missing := set(reported) - built:
        raise ResultError(f"no RPM among its files holds {_nevras(missing)}")
    if unlisted := built - set(reported):
        raise ResultError(f"it did not list the packages of its RPMs {_nevras(unlisted)}")


async def verify_result(result: ChrootResult, result_dir: Path, builder: str) -> ChrootResult:
    """`result` when it holds, else a failed result whose reason names `builder`."""
    try:
        await check_result(result, result_dir)
    except ResultError as exc:
        return ChrootResult(
            Outcome.FAILED,
            files=result.files,
            fail_reason=f"builder {builder} returned a result that does not hold: {exc}",
        )
    return result
