"""Atomic outputs: write under a temporary name beside the target, rename when complete.

A failure at any point (an exception, a full disk, Ctrl-C) removes the temporary file or folder,
so a user never finds a half-written artifact or export.
"""

from __future__ import annotations

import errno
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


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path; on success it replaces `target`, on failure it is deleted."""
    target = Path(target)
    _check_parent(target)
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
