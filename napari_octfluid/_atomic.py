"""Writing a file so that a crash, a kill or a full disk never leaves a half-written file under its name.

The temporary file lies beside its target as ``.<name>.<pid>.<token>.octfluid.tmp``: hidden, recognisably
octfluid's, and naming the process that writes it, so that the next write of the same target removes those left
by processes that no longer run (a SIGKILL gives no chance to clean up). The ``.tmp`` ending is kept so that any
tool that skips temporary files skips these.
"""

from __future__ import annotations

import os
import re
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TEMPORARY_SUFFIX = ".octfluid.tmp"


def temporary_name(target: Path, pid: int | None = None) -> str:
    """The name of a temporary file for ``target``: the pid says who writes it, the token keeps two writers of one
    process (threads) apart."""
    return f".{target.name}.{os.getpid() if pid is None else pid}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"


def _writer_pid(target: Path, candidate: str) -> int | None:
    match = re.fullmatch(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]+{re.escape(TEMPORARY_SUFFIX)}", candidate)
    return int(match.group(1)) if match else None


def process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill there terminates the process instead of asking: keep every file
        return True
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    except OSError:  # no way to tell (e.g. a platform without signals): assume alive, keep its file
        return True
    return True


def remove_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``target`` left by processes that have ended; returns what was removed.
    Those of a running process (another writer at work) are left alone."""
    target = Path(target)
    removed = []
    try:
        names = os.listdir(target.parent)
    except OSError:  # a folder that cannot be listed: the write itself will say what is wrong
        return removed
    for name in names:
        pid = _writer_pid(target, name)
        if pid is None or pid == os.getpid() or process_alive(pid):
            continue
        try:
            os.unlink(target.parent / name)
            removed.append(target.parent / name)
        except FileNotFoundError:  # another writer of the same target cleaned it first
            pass
        except OSError:  # not ours to insist on: the file is only clutter
            pass
    return removed


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); where folders cannot be opened this is skipped."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without error, the file written there is
    flushed to disk and renamed over ``path`` (atomic on POSIX), else it is removed and ``path`` is untouched.

    An ``OSError`` about the temporary file (a full disk, a read-only folder) is raised naming ``path``, the file
    the user asked for, not the hidden temporary one."""
    path = Path(path)
    remove_stale_temporaries(path)
    temporary = path.parent / temporary_name(path)
    try:
        # 0o666 less the umask, like any file the user saves; O_EXCL: never reuse someone else's file
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        yield temporary
        with open(temporary, "rb+") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
        _sync_folder(path.parent)
    except OSError as error:
        if error.errno is None or (error.filename is not None and Path(error.filename) != temporary):
            raise
        # OSError(errno, ...) builds the matching subclass (PermissionError, ...), so handlers still match
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)
