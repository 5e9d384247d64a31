"""Tests of `r2dn._files.atomic_write`: complete or absent, durable, permissions of a plain file."""

import errno
import os
import subprocess
import sys

import pytest

from r2dn import _files
from r2dn._files import atomic_write


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    dest = tmp_path / "m.bin"
    dest.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"), atomic_write(dest) as f:
        f.write(b"half of the new")
        raise OSError("disk full")
    assert dest.read_bytes() == b"old"
    assert names(tmp_path) == ["m.bin"]


def test_the_data_and_the_rename_reach_the_disk_in_order(tmp_path, monkeypatch):
    """fsync of the file before the rename, of the folder after it."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", None))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with atomic_write(tmp_path / "m.bin") as f:
        f.write(b"data")
    if sys.platform == "linux":
        assert events == [("fsync", False), ("replace", None), ("fsync", True)]
    else:
        assert [e for e, _ in events] == ["fsync", "replace", "fsync"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_permissions_follow_the_umask_and_those_of_a_replaced_file(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "new.bin") as f:
            f.write(b"x")
        assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o640
        kept = tmp_path / "kept.bin"
        kept.write_bytes(b"old")
        kept.chmod(0o604)
        with atomic_write(kept) as f:
            f.write(b"new")
        assert kept.stat().st_mode & 0o777 == 0o604
    finally:
        os.umask(old)


@pytest.mark.skipif(os.name != "posix", reason="stale files are found by POSIX process ids")
def test_temporary_files_of_ended_writers_are_removed(tmp_path):
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                           capture_output=True, text=True)  # fmt: skip
    host = _files._host()
    stale = tmp_path / f".m.bin.{ended.stdout.strip()}-0000@{host}.part"
    alive = tmp_path / f".m.bin.{os.getppid()}-0000@{host}.part"  # a writer still running
    elsewhere = tmp_path / f".m.bin.{ended.stdout.strip()}-0000@another-host.part"
    other_file = tmp_path / f".other.bin.{ended.stdout.strip()}-0000@{host}.part"
    for path in (stale, alive, elsewhere, other_file):
        path.write_bytes(b"partial")
    with atomic_write(tmp_path / "m.bin") as f:
        f.write(b"data")
    assert names(tmp_path) == sorted(["m.bin", alive.name, elsewhere.name, other_file.name])


def test_a_folder_as_destination_is_named_in_the_error(tmp_path):
    message = f"cannot write {tmp_path}: it is a folder"
    with pytest.raises(IsADirectoryError, match=message) as info, atomic_write(tmp_path):
        pass
    assert ".part" not in str(info.value)
    assert names(tmp_path) == []


def test_an_unwritable_destination_is_named_in_the_error(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    dest = tmp_path / "file" / "m.bin"  # its folder is a file
    message = f"cannot write {dest}: cannot create its folder"
    with pytest.raises(OSError, match=message) as info, atomic_write(dest):
        pass
    assert ".part" not in str(info.value)


def test_a_full_disk_is_reported_for_the_destination(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    dest = tmp_path / "m.bin"
    message = f"cannot write {dest}: No space left"
    with pytest.raises(OSError, match=message) as info, atomic_write(dest) as f:
        f.write(b"data")
    assert info.value.errno == errno.ENOSPC
    assert names(tmp_path) == []
