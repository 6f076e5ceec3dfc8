"""The `.kolmb` file that `kolm bundle` writes: a plain tar whose every byte a site checks before it
writes any (docs/air-gapped.md).

Members, in this order: `kolm-bundle.json` (the lock: what the bundle is for, and every other
file's path, size and SHA-256), `kolm-bundle.sig` (an OpenSSF model-signing signature over the lock,
in the one spelling `kolm.signing.canonical_signature` accepts), then the locked files in the
lock's order. Every header is a POSIX tar header with fixed fields (mode 0644, or 0755 for
install.sh; owner 0; mtime 0), so the whole file follows from the lock and the files' bytes:
`check_bundle` rebuilds each header from the lock and compares it byte for byte, hashes each file,
and requires zero padding and tar's own end-of-archive blocks to the last byte. Any tar lists and
unpacks it; kolm refuses it if a single byte differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Literal

from pydantic import Field, ValidationError, field_validator

from kolm.atomic import atomic_dir, atomic_file
from kolm.datamodel import KolmModel
from kolm.errors import ArtifactError, one_line

LOCK = "kolm-bundle.json"
SIGNATURE = "kolm-bundle.sig"
FORMAT = "kolm-bundle/1"
MAX_LOCK = 16 << 20
MAX_SIGNATURE = 1 << 20
BLOCK = tarfile.BLOCKSIZE  # 512: a header, and the unit data is padded to
RECORD = tarfile.RECORDSIZE  # 10240: tar pads the archive to a multiple of this
CHUNK = 1 << 20
ROOTS = ("export/", "artifact/", "reference/", "wheels/")
TOP = ("install.sh", "README.md")
EXECUTABLE = ("install.sh",)

Progress = Callable[[int, int], None]


class LockedFile(KolmModel):
    """One file of a bundle: its path inside the bundle, size and SHA-256."""

    path: str
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class SourceBuild(KolmModel):
    """A runtime that ships only as source: its sdist in the bundle, built by pip on the target."""

    name: str
    sdist: str
    needs: str = Field(description="What the target must have to build it, in words.")


class BundleLock(KolmModel):
    """`kolm-bundle.json`: what the bundle is for and every file in it."""

    format: Literal["kolm-bundle/1"] = FORMAT
    platform: str = Field(description="The target platform, e.g. linux-aarch64.")
    python: str = Field(pattern=r"^3\.\d+$", description="The target's Python (major.minor) the wheels are for.")
    backend: str
    install: list[str] = Field(description="What pip installs from wheels/ into the site's venv.")
    plugins: list[str] = Field(description="The kolm plugins (distributions) the export needs: KOLM_LOAD_PLUGINS.")
    export: str = Field("export", pattern=r"^export$")
    artifact: str = Field(pattern=r"^artifact/[^/]+\.kolm$")
    reference: str | None = Field(
        None, pattern=r"^reference/[a-z0-9_-]+/[0-9a-f]+$", description="The fp16 reference export, if any."
    )
    source_builds: list[SourceBuild] = []
    made_with: str
    files: list[LockedFile]

    @field_validator("files")
    @classmethod
    def _safe_paths(cls, files: list[LockedFile]) -> list[LockedFile]:
        paths = [f.path for f in files]
        if paths != sorted(set(paths)):
            raise ValueError("paths must be unique and sorted")
        for path in paths:
            parts = PurePosixPath(path).parts
            unsafe = path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in path.split("/"))
            if unsafe or not (path in TOP or (path.startswith(ROOTS) and len(parts) > 1)):
                raise ValueError(f"unsafe or unexpected path {path!r}")
            if any(ord(c) < 32 for c in path):
                raise ValueError(f"control character in path {path!r}")
        return files


def header(path: str, size: int) -> bytes:
    """The one header kolm writes for a file of `size` bytes at `path`: a POSIX (pax) tar header,
    one 512-byte block, or more where the path is long or the file is 8 GiB or more."""
    info = tarfile.TarInfo(path)
    info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = size, 0, 0, 0, "", ""
    info.mode = 0o755 if path in EXECUTABLE else 0o644
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "strict")


def _member_size(path: str, size: int) -> int:
    return len(header(path, size)) + size + _padding(size)


def _padding(size: int) -> int:
    return -size % BLOCK


def _trailer(offset: int) -> int:
    """Bytes tar writes at the end of an archive whose members end at `offset`."""
    return 2 * BLOCK + -(offset + 2 * BLOCK) % RECORD


def bundle_size(lock: bytes, signature: bytes, files: list[LockedFile]) -> int:
    offset = _member_size(LOCK, len(lock)) + _member_size(SIGNATURE, len(signature))
    offset += sum(_member_size(f.path, f.size) for f in files)
    return offset + _trailer(offset)


def write_bundle(out: Path, lock: BundleLock, signature: bytes, folder: Path, progress: Progress | None = None) -> None:
    """The bundle at `out` (atomically): the lock, its signature, then each locked file from
    `folder`, hashed again as it is copied (a file that changed since it was locked is refused)."""
    raw = lock_bytes(lock)
    tick = _ticker(sum(e.size for e in lock.files), progress)
    with atomic_file(out) as part, open(part, "wb") as f:
        for name, data in ((LOCK, raw), (SIGNATURE, signature)):
            f.write(header(name, len(data)) + data + b"\0" * _padding(len(data)))
        for entry in lock.files:
            f.write(header(entry.path, entry.size))
            source = folder / entry.path
            with open(source, "rb") as src:
                changed = source.stat().st_size != entry.size or _hashed(src, entry.size, f, tick) != entry.sha256
            if changed:
                raise ArtifactError(f"{source} changed while the bundle was written; run again")
            f.write(b"\0" * _padding(entry.size))
        f.write(b"\0" * _trailer(f.tell()))


def lock_bytes(lock: BundleLock) -> bytes:
    return (json.dumps(lock.model_dump(mode="json"), indent=2, sort_keys=True) + "\n").encode()


class CheckedBundle(KolmModel):
    """A bundle whose every byte `check_bundle` checked: its lock, and where each file's bytes start."""

    path: Path
    lock: BundleLock
    lock_raw: bytes
    signature: bytes
    offsets: dict[str, int]


def check_bundle(path: Path, trust: Path, progress: Progress | None = None) -> CheckedBundle:
    """Check a bundle before anything is written: the signature over the lock verifies with `trust`
    (kolm.signing), then every header, file hash, padding byte and the trailer match the lock.
    Raises ArtifactError (one line) on the first byte that does not."""
    from kolm.signing import canonical_signature, verify_files

    if not path.is_file():
        raise ArtifactError(f"{path}: no such bundle")
    with open(path, "rb") as f:
        raw = _small_member(f, path, LOCK, MAX_LOCK)
        signature = _small_member(f, path, SIGNATURE, MAX_SIGNATURE)
        try:
            canonical = canonical_signature(signature) == signature
        except ArtifactError as exc:
            raise ArtifactError(f"{path}: {SIGNATURE} is {exc}") from exc
        if not canonical:
            raise ArtifactError(f"{path}: {SIGNATURE} is not in its canonical form; damaged or tampered")
        with tempfile.TemporaryDirectory(prefix="kolm-unbundle-") as tmp:
            (Path(tmp) / "lock").mkdir()
            (Path(tmp) / "lock" / LOCK).write_bytes(raw)
            (Path(tmp) / SIGNATURE).write_bytes(signature)
            problem = verify_files(Path(tmp) / "lock", [LOCK], Path(tmp) / SIGNATURE, trust)
        if problem is not None:
            raise ArtifactError(f"{path}: the bundle's signature does not hold: {problem}")
        try:
            lock = BundleLock.model_validate_json(raw)
        except ValidationError as exc:
            raise ArtifactError(f"{path}: {LOCK} is not a valid lock ({one_line(exc)})") from exc
        expected = bundle_size(raw, signature, lock.files)
        if (actual := os.fstat(f.fileno()).st_size) != expected:
            raise ArtifactError(f"{path}: {actual:,} bytes where the lock makes {expected:,}: truncated or appended to")
        offsets, tick = {}, _ticker(sum(e.size for e in lock.files), progress)
        for entry in lock.files:
            expected = header(entry.path, entry.size)
            if f.read(len(expected)) != expected:
                raise ArtifactError(f"{path}: the header of {entry.path} differs from the lock's")
            offsets[entry.path] = f.tell()
            if _hashed(f, entry.size, None, tick) != entry.sha256:
                raise ArtifactError(f"{path}: {entry.path} differs from the lock (SHA-256); damaged or tampered")
            _zeros(f, _padding(entry.size), path, f"the padding after {entry.path}")
        _zeros(f, _trailer(f.tell()), path, "the end-of-archive blocks")
    return CheckedBundle(path=path, lock=lock, lock_raw=raw, signature=signature, offsets=offsets)


def unpack_bundle(checked: CheckedBundle, target: Path, progress: Progress | None = None) -> None:
    """The checked bundle's files under `target` (written atomically: all of them, or none), each
    hashed again as it is written, in case the bundle changed since it was checked."""
    tick = _ticker(sum(e.size for e in checked.lock.files), progress)
    with atomic_dir(target) as staging, open(checked.path, "rb") as f:
        for entry in checked.lock.files:
            out = staging / entry.path
            out.parent.mkdir(parents=True, exist_ok=True)
            f.seek(checked.offsets[entry.path])
            with open(out, "wb") as dest:
                digest = _hashed(f, entry.size, dest, tick)
            if digest != entry.sha256:
                raise ArtifactError(f"{checked.path}: {entry.path} changed since it was checked; nothing written")
            if entry.path in EXECUTABLE:
                out.chmod(0o755)
        (staging / LOCK).write_bytes(checked.lock_raw)  # a site can check the unpacked files again
        (staging / SIGNATURE).write_bytes(checked.signature)


def _small_member(f: BinaryIO, path: Path, name: str, limit: int) -> bytes:
    """A member that must come next, named `name`, of at most `limit` bytes (the lock, the signature:
    short names, so one header block)."""
    block = f.read(BLOCK)
    try:
        info = tarfile.TarInfo.frombuf(block, "utf-8", "strict")
    except (tarfile.HeaderError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ArtifactError(f"{path}: not a kolm bundle ({one_line(exc)})") from exc
    if info.name != name or not 0 <= info.size <= limit or block != header(name, info.size):
        raise ArtifactError(f"{path}: not a kolm bundle (expected {name} here, up to {limit:,} bytes)")
    data = f.read(info.size)
    if len(data) != info.size:
        raise ArtifactError(f"{path}: truncated inside {name}")
    _zeros(f, _padding(info.size), path, f"the padding after {name}")
    return data


def _ticker(total: int, progress: Progress | None) -> Callable[[int], None]:
    """A callback counting bytes done and reporting (done, total) to `progress`."""
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    return tick


def _hashed(f: BinaryIO, size: int, sink: BinaryIO | None, tick: Callable[[int], None]) -> str:
    """SHA-256 of the next `size` bytes of `f`, copied to `sink` if given."""
    digest = hashlib.sha256()
    for chunk in _chunks(f, size):
        digest.update(chunk)
        if sink is not None:
            sink.write(chunk)
        tick(len(chunk))
    return digest.hexdigest()


def _chunks(f: BinaryIO, size: int):
    left = size
    while left:
        chunk = f.read(min(CHUNK, left))
        if not chunk:
            raise ArtifactError(f"{f.name}: truncated")
        left -= len(chunk)
        yield chunk


def _zeros(f: BinaryIO, size: int, path: Path, what: str) -> None:
    if f.read(size) != b"\0" * size:
        raise ArtifactError(f"{path}: {what} is not zeros; damaged or tampered")
