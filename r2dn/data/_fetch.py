"""Download a file, extract members of a zip archive, verify SHA-256 checksums.

Every file is written under a temporary name in its destination folder and renamed into place
only when complete, so an interrupted run never leaves a truncated file behind.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from r2dn._files import atomic_write


def download(url: str, dest: Path, *, timeout: float = 60.0) -> None:
    """Download `url` to `dest`. Raises OSError (e.g. `urllib.error.URLError`) on failure."""
    with atomic_write(dest) as f, urllib.request.urlopen(url, timeout=timeout) as response:
        shutil.copyfileobj(response, f)


def extract(archive: Path, names: Sequence[str], dest: Path) -> None:
    """Extract the members with the given base names, found at any depth, to `dest / name`."""
    with zipfile.ZipFile(archive) as zf:
        members = {PurePosixPath(info.filename).name: info for info in zf.infolist()}
        missing = sorted(set(names) - set(members))
        if missing:
            raise ValueError(f"archive {archive} does not contain {missing}")
        for name in names:
            with atomic_write(dest / name) as f, zf.open(members[name]) as member:
                shutil.copyfileobj(member, f)


def verify_sha256(path: Path, expected: str, *, hint: str = "") -> None:
    """Unless the SHA-256 of `path` is `expected`, delete it and raise a ValueError + `hint`."""
    with path.open("rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != expected:
        path.unlink()
        raise ValueError(
            f"{path} is corrupted (SHA-256 {digest}, expected {expected}) and has been deleted. "
            + hint
        )
