"""Fetch benchmark files into a cache folder with pooch: download, checksum, unzip.

`fetch(remote, folder)` returns the paths of the files `remote` names, taken from `folder`
when already there and otherwise downloaded (once) from the official source. Every file is
checked against its SHA-256 where the checksum is known; pooch downloads to a temporary file
and moves it into place only when complete and verified, so an interrupted or corrupted
download never leaves a file that looks valid.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pooch
import requests


class DownloadError(RuntimeError):
    """A benchmark file could not be downloaded or failed its checksum.

    The message says what failed and how to supply the files by hand.
    """


@dataclass(frozen=True)
class Remote:
    """Where a benchmark's files come from.

    Attributes:
        url: the official download address.
        fname: the name the download is stored under; a name ending in ``.zip`` is an archive
            from which `members` are extracted, any other name is the file itself.
        sha256: the SHA-256 of the download, or None where it could not be verified.
        members: base file name → SHA-256 of that file (None where unknown); for an archive,
            the values of `paths` say where each member lies inside it.
        paths: base file name → its path inside the archive (default: the base name).
    """

    url: str
    fname: str
    sha256: str | None
    members: Mapping[str, str | None]
    paths: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_archive(self) -> bool:
        return self.fname.endswith(".zip")


def default_cache(name: str) -> Path:
    """The cache folder of benchmark `name`: ``$R2DN_CACHE/name`` or ``~/.cache/r2dn/name``."""
    return Path(os.environ.get("R2DN_CACHE") or Path.home() / ".cache" / "r2dn") / name


def fetch(remote: Remote, folder: Path, *, download: bool = True) -> dict[str, Path]:
    """The files of `remote` (base name → path in `folder`), downloading what is missing.

    Files already in `folder` are verified too; a file with the wrong checksum is deleted
    (so that the next call downloads a fresh copy) and a ValueError says so.
    """
    folder = Path(folder).expanduser()
    missing = [name for name in remote.members if not (folder / name).is_file()]
    if missing:
        if not download:
            raise FileNotFoundError(
                f"{missing} are not in the cache {folder} and download=False. "
                + _by_hand(remote, folder)
            )
        _download(remote, folder, missing)
    for name, sha256 in remote.members.items():
        _verify(folder / name, sha256, remote, folder)
    return {name: folder / name for name in remote.members}


def _download(remote: Remote, folder: Path, names: list[str]) -> None:
    """Download `remote` with pooch and move the files `names` to `folder / name`."""
    inner = {name: remote.paths.get(name, name) for name in names}
    processor = pooch.Unzip(members=list(inner.values())) if remote.is_archive else None
    try:
        pooch.retrieve(
            remote.url,
            known_hash=None if remote.sha256 is None else f"sha256:{remote.sha256}",
            fname=remote.fname,
            path=folder,
            processor=processor,
            progressbar=False,
        )
    except (requests.RequestException, OSError) as error:
        raise DownloadError(
            f"Downloading {remote.fname} from {remote.url} failed: {error}. "
            + _by_hand(remote, folder)
        ) from error
    except ValueError as error:  # pooch: the download's SHA-256 is not the known one
        raise DownloadError(
            f"The download of {remote.fname} from {remote.url} has the wrong checksum ({error}); "
            f"it was not kept. " + _by_hand(remote, folder)
        ) from error
    except zipfile.BadZipFile as error:
        shutil.rmtree(folder / f"{remote.fname}.unzip", ignore_errors=True)
        (folder / remote.fname).unlink(missing_ok=True)
        raise DownloadError(
            f"The download from {remote.url} is not the zip archive {remote.fname} ({error}); "
            f"it has been deleted. " + _by_hand(remote, folder)
        ) from error
    if not remote.is_archive:
        return
    extracted = folder / f"{remote.fname}.unzip"
    try:
        absent = [inner[n] for n in names if not (extracted / inner[n]).is_file()]
        if absent:
            raise DownloadError(
                f"The archive {remote.fname} from {remote.url} does not contain {absent}. "
                + _by_hand(remote, folder)
            )
        for name in names:
            os.replace(extracted / inner[name], folder / name)
    finally:  # keep only the files wanted, not the archive or the rest of its contents
        shutil.rmtree(extracted, ignore_errors=True)
        (folder / remote.fname).unlink(missing_ok=True)


def _verify(path: Path, sha256: str | None, remote: Remote, folder: Path) -> None:
    if sha256 is None:  # no checksum that could be verified (see the benchmark's Remote)
        return
    digest = pooch.file_hash(str(path), alg="sha256")
    if digest != sha256:
        path.unlink()
        raise ValueError(
            f"{path} is corrupted (SHA-256 {digest}, expected {sha256}) and has been deleted. "
            f"Run again to download a fresh copy, or pass root= a folder holding intact "
            f"copies. " + _by_hand(remote, folder)
        )


def _by_hand(remote: Remote, folder: Path) -> str:
    inside = (
        f" (the archive holds them as {sorted(remote.paths.get(n, n) for n in remote.members)})"
        if remote.is_archive
        else ""
    )
    return (
        f"To supply the files by hand: download {remote.url}{inside}, then pass root= the "
        f"folder holding {sorted(remote.members)}, or place them in {folder}."
    )
