"""The fp16 export of an artifact's weights through one backend: what `kolm pack` scores the fp16 K
on and what fidelity compares each quantized export with. It is made once and kept in
`$KOLM_HOME/cache/reference/<backend>/` (the artifacts used last per backend, `kolm.cache`, keyed by
the artifact's payload hashes and the backend's version), so packing, exporting every tier and
verifying convert the fp16 weights once."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kolm.api import BackendPlugin, ExportRequest, Manifest, kolm_home, silent
from kolm.cache import make_room, used

PAYLOAD = "payload.json"
T = TypeVar("T")


def _root() -> Path:
    return kolm_home() / "cache" / "reference"


def reference_key(owner: BackendPlugin, manifest: Manifest) -> str:
    """Where the fp16 export of `manifest`'s weights by `owner` is cached: BACKEND/HASH under
    $KOLM_HOME/cache/reference (the hash of the weights and of the backend's distribution and version)."""
    hashes = "".join(sorted(p.sha256 for p in manifest.payload))
    key = hashlib.sha256(f"{hashes}|{owner.distribution} {owner.version}".encode()).hexdigest()[:32]
    return f"{owner.name}/{key}"


def _folder(owner: BackendPlugin, manifest: Manifest) -> Path:
    return _root() / reference_key(owner, manifest)


def cached_reference(owner: BackendPlugin, manifest: Manifest) -> tuple[Path, list[str]] | None:
    """(folder, payload) of the cached fp16 export of `manifest`'s weights by `owner`, if there is one."""
    folder = _folder(owner, manifest)
    if not (folder / PAYLOAD).is_file():
        return None
    return used(folder), json.loads((folder / PAYLOAD).read_text(encoding="utf-8"))


def fp16_reference(owner: BackendPlugin, request: ExportRequest) -> tuple[Path, list[str]]:
    """(folder, payload) of the fp16 export of `request`'s weights by `owner`: the cached one, or a
    new export (staged, then renamed into the cache, replacing the backend's previous one)."""
    if found := cached_reference(owner, request.manifest):
        return found
    folder = _folder(owner, request.manifest)

    def fill(staging: Path) -> list[str]:
        scratch = request.work_dir / f"fp16-reference-{owner.name}"
        scratch.mkdir()
        made = owner.export(
            request.model_copy(
                update={
                    "tier": "fp16",
                    "recipe": owner.recipe("fp16"),
                    "device": None,
                    "out_dir": staging,
                    "work_dir": scratch,
                    "steps": request.steps if request.tier == "fp16" else silent,
                }
            )
        )
        (staging / PAYLOAD).write_text(json.dumps(made.payload), encoding="utf-8")
        return made.payload

    return folder, _replace(folder, fill)


def install_reference(source: Path, key: str) -> Path:
    """Cache an fp16 reference made elsewhere (a bundle's folder holding payload.json) under `key`
    (`reference_key`), replacing the backend's previous one; returns the cached folder."""
    folder = _root() / key
    if (folder / PAYLOAD).is_file():
        return folder
    _replace(folder, lambda staging: shutil.copytree(source, staging, dirs_exist_ok=True))
    return folder


def _replace(folder: Path, fill: Callable[[Path], T]) -> T:
    """Make `folder` with `fill(staging)` in a staging folder beside it, then rename it into place,
    first removing the backend's least recently used references beyond what the cache keeps."""
    make_room(folder.parent.glob("*") if folder.parent.is_dir() else ())
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=folder.parent))
    try:
        made = fill(staging)
        os.replace(staging, folder)
        return made
    finally:
        shutil.rmtree(staging, ignore_errors=True)
