"""The direct header reader agrees with rpm itself, and refuses what is not an RPM."""

from __future__ import annotations

import subprocess
import tempfile

import pytest

from copr_lite.rpmheader import read_nevra


def rpm_says(path) -> tuple:
    with tempfile.TemporaryDirectory() as db:
        out = subprocess.run(
            [
                "rpm",
                "-qp",
                "--nosignature",
                "--nodigest",
                "--define",
                f"_dbpath {db}",
                "--qf",
                "%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCEPACKAGE}",
                "--",
                str(path),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    name, epoch, version, release, arch, source = out.split("\t")
    epoch_number = int(epoch) if epoch.isdigit() and int(epoch) else None
    return name, epoch_number, version, release, "src" if source == "1" else arch


@pytest.mark.parametrize("name", ["hello-copr-lite", "hello-copr-lite-c", "copr-lite-breq"])
def test_source_packages_match_rpm(fixture_srpm, name):
    srpm = fixture_srpm(name)
    assert read_nevra(srpm) == rpm_says(srpm)
    assert read_nevra(srpm)[4] == "src"


def test_binary_packages_match_rpm(fixture_srpm, tmp_path):
    srpm = fixture_srpm("hello-copr-lite")
    subprocess.run(
        [
            "rpmbuild",
            "--rebuild",
            "--define",
            f"_topdir {tmp_path}/top",
            "--define",
            f"_tmppath {tmp_path}/tmp",
            "--define",
            f"_dbpath {tmp_path}/db",
            "--define",
            "dist .fc40",
            str(srpm),
        ],
        check=True,
        capture_output=True,
    )
    (rpm,) = (tmp_path / "top" / "RPMS").rglob("*.rpm")
    assert read_nevra(rpm) == rpm_says(rpm) == ("hello-copr-lite", None, "1.0", "1.fc40", "noarch")


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xed\xab\xee\xdb" + b"\0" * 10,
        b"not an rpm at all" * 20,
        b"\xed\xab\xee\xdb"
        + b"\0" * 92
        + b"\x8e\xad\xe8\x01"
        + b"\0" * 4
        + b"\xff\xff\xff\xff" * 2,
    ],
)
def test_broken_files_raise_value_error(tmp_path, content):
    path = tmp_path / "broken.rpm"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"RPM|truncated"):
        read_nevra(path)
