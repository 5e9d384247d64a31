"""Files that appear complete or not at all: `atomic_write`.

The data go to a temporary file beside the destination, which is flushed to disk and renamed
into place only when the ``with`` block completes, so that a crash, a full disk or a kill never
leaves a truncated file at the destination, and never replaces a good one. Temporary names are
unique per writer (``.NAME.PID-TOKEN@HOST.part``): two processes writing the same file do not
collide, and a temporary file left behind by a killed process (its PID no longer running on
this host) is deleted by the next write of the same file.

The new file gets the permissions a plain ``open(path, "w")`` would give it: those of the file
it replaces, or ``0o666`` less the umask for a new file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_SUFFIX = ".part"


@contextlib.contextmanager
def atomic_write(dest: str | Path) -> Iterator[BinaryIO]:
    """A binary file that appears at ``dest`` only if the ``with`` block completes.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_write(folder / "a.txt") as f:
    ...     _ = f.write(b"complete")
    >>> (folder / "a.txt").read_bytes(), sorted(p.name for p in folder.iterdir())
    (b'complete', ['a.txt'])

    Raises IsADirectoryError if ``dest`` is a folder, and OSError naming ``dest`` if it cannot
    be written (the temporary file is removed).
    """
    dest = Path(dest)
    if dest.is_dir():
        raise IsADirectoryError(
            f"cannot write {dest}: it is a folder; give a file name, e.g. {dest / 'model.r2dn'}"
        )
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _naming(dest, error, f"cannot create its folder {dest.parent}") from error
    _remove_stale(dest)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}-{secrets.token_hex(4)}@{_host()}{_SUFFIX}")
    try:
        # O_EXCL: never follow or reuse a file of that name; 0o666 is narrowed by the umask.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as error:
        raise _naming(dest, error) from error
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                if os.chmod in os.supports_fd:  # keep the permissions of the file replaced
                    with contextlib.suppress(FileNotFoundError):
                        os.chmod(f.fileno(), dest.stat().st_mode & 0o7777)
                os.fsync(f.fileno())
            os.replace(tmp, dest)
        except OSError as error:
            if error.filename not in (None, os.fspath(tmp)):
                raise  # about another file than ours
            raise _naming(dest, error) from error
        _sync_folder(dest.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _naming(dest: Path, error: OSError, what: str = "") -> OSError:
    """``error`` reworded to name the destination rather than a temporary file."""
    reason = f"{what} ({error.strerror or error})" if what else error.strerror or error
    message = f"cannot write {dest}: {reason}"
    return type(error)(message) if error.errno is None else type(error)(error.errno, message)


def _host() -> str:
    return socket.gethostname().replace("@", "_").replace(os.sep, "_") or "localhost"


def _remove_stale(dest: Path) -> None:
    """Delete temporary files of ``dest`` whose writer (a process on this host) has ended."""
    prefix, host = f".{dest.name}.", _host()
    for tmp in dest.parent.glob(f".{_glob_escape(dest.name)}.*{_SUFFIX}"):
        writer, _, tmp_host = tmp.name[len(prefix) : -len(_SUFFIX)].partition("@")
        pid = writer.partition("-")[0]
        if tmp_host == host and pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(OSError):
                tmp.unlink()


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _running(pid: int) -> bool:
    if os.name != "posix" or pid == os.getpid():  # (on Windows, signal 0 is CTRL_C_EVENT)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: it exists
        return True
    return True


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: fsync the directory)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # file systems that cannot sync a folder: the file itself is on disk
        pass
    finally:
        os.close(fd)
