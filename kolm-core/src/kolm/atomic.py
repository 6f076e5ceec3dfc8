"""Atomic outputs: write under a temporary name beside the target, rename when complete.

A failure at any point (an exception, a full disk, Ctrl-C) removes the temporary file or folder,
so a user never finds a half-written artifact or export. A process killed outright (SIGKILL, power)
cannot clean up, so every write holds its target first (`claim`: an flock on `.NAME.lock` beside
it, which the kernel releases when the holder dies). Whoever holds a target next removes what dead
writers left beside it (`.NAME.*.part`, `.NAME.*.work`, `.NAME.old`); a second live writer of the
same target is refused in one line instead of racing the first.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from kolm.errors import OutputError

if TYPE_CHECKING:
    from pydantic import BaseModel


def _check_parent(target: Path) -> None:
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"output folder {parent} does not exist")


STALE_SUFFIXES = (".part", ".work", ".old")
"""What writers leave beside a target `.NAME...`: staged files and folders, scratch, a replaced output."""

_held: dict[Path, list[int]] = {}  # target -> [lock fd, depth]: a process may claim a target again


def _lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.lock")


def _acquire(target: Path) -> int:
    """An exclusive, non-blocking flock on the target's lock file, on the file the path names now
    (a holder that finished may have unlinked it between our open and our lock)."""
    path = _lock_path(target)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _output_error(exc, target) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(f"another kolm process is writing {target}; run again when it has finished") from None
        except OSError as exc:  # a filesystem without locks (some network mounts): write unguarded
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise _output_error(exc, target) from exc
            return fd
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            return fd
        os.close(fd)


def reap(target: Path) -> list[Path]:
    """Remove what writers of `target` that died left beside it, and put back a previous output one
    died while replacing; returns what was removed. Call it only while holding the target (`claim`):
    then no live writer owns any of it."""
    old = target.with_name(f".{target.name}.old")
    if old.is_dir() and not target.exists():  # a writer died between its two renames
        os.replace(old, target)  # the previous complete output comes back
    removed = []
    prefix = f".{target.name}."
    for entry in target.parent.iterdir():
        if entry.name.startswith(prefix) and entry.name.endswith(STALE_SUFFIXES):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextmanager
def claim(target: Path) -> Iterator[None]:
    """Hold `target` for this process while writing it: refuses (one line) when another live process
    holds it, reaps what dead writers left beside it, and lets go (removing the lock file) on exit.
    Re-entrant: nested claims of one target in one process share the lock."""
    target = Path(target).parent.resolve() / Path(target).name  # one key per file, however it is spelled
    if target in _held:
        _held[target][1] += 1
    else:
        fd = _acquire(target)
        _held[target] = [fd, 1]
        reap(target)
    try:
        yield
    finally:
        _held[target][1] -= 1
        if _held[target][1] == 0:
            fd = _held.pop(target)[0]
            _lock_path(target).unlink(missing_ok=True)  # while still locked: the next opener makes a new one
            os.close(fd)


@contextmanager
def scratch_dir(target: Path, kind: str = "work") -> Iterator[Path]:
    """A scratch folder beside `target` (`.NAME.XXXX.work`) while it is claimed; removed on exit,
    and reaped by the next writer when this process dies."""
    target = Path(target)
    _check_parent(target)
    with claim(target):
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-", suffix=".work", dir=target.parent))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `target`, on failure it is deleted."""
    target = Path(target)
    _check_parent(target)
    with claim(target):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # what a plain open() would give, not mkstemp's 0600
        try:
            yield Path(tmp)
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise _output_error(exc, target) from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_json_model(target: Path, model: BaseModel) -> Path:
    """`model` as indented JSON at `target` (its folder made if need be), written atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target) as part:
        part.write_text(model.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return target


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `target` (which must not be a file)."""
    target = Path(target)
    _check_parent(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target} exists and is not a folder")
    with claim(target):
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            yield tmp
            if target.exists():
                old = target.with_name(f".{target.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _output_error(exc, target) from exc
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _output_error(exc: OSError, target: Path) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError(f"no space left on device while writing {target}; nothing was written")
    return OutputError(f"cannot write {target}: {exc.strerror or exc}")
