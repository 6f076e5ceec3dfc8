"""The safetensors header of an MLX payload: read it without loading weights, and rewrite its
`__metadata__` in place of the file (atomically) to carry the RS-1 manifest."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

from kolm.errors import ArtifactError

MANIFEST_KEY = "kolm.manifest"
MAX_HEADER_BYTES = 100_000_000  # safetensors' own bound


def read_header(path: Path) -> tuple[dict[str, str], dict[str, dict]]:
    """(`__metadata__`, {tensor name: {"dtype", "shape", "data_offsets"}}) of a safetensors file."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > MAX_HEADER_BYTES:
                raise ArtifactError(f"{path.name}: safetensors header of {length} bytes is beyond the sane bound")
            header = json.loads(f.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise ArtifactError(f"{path.name}: not a readable safetensors file ({exc})") from exc
    if not isinstance(header, dict):
        raise ArtifactError(f"{path.name}: the safetensors header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ArtifactError(f"{path.name}: the safetensors __metadata__ is not a map of strings")
    for name, info in header.items():
        if not _tensor_entry(info):
            raise ArtifactError(f"{path.name}: tensor {name[:60]!r} has no dtype, shape and data_offsets")
    return metadata, header


def _tensor_entry(info: object) -> bool:
    """Whether a header entry is {"dtype": str, "shape": [int...], "data_offsets": [int, int]}."""
    if not isinstance(info, dict):
        return False
    shape, offsets = info.get("shape"), info.get("data_offsets")
    return (
        isinstance(info.get("dtype"), str)
        and isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        and isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    )


def set_metadata(path: Path, key: str, value: str) -> None:
    """Add `key: value` to the file's `__metadata__`, keeping what is there (mlx-lm's
    {"format": "mlx"}); the new file replaces the old only once completely written."""
    metadata, tensors = read_header(path)
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
    encoded = json.dumps({"__metadata__": {**metadata, key: value}, **tensors}, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the data 8-byte aligned, as safetensors does
    partial = path.with_name(f".{path.name}.part")
    try:
        with open(path, "rb") as src, open(partial, "wb") as dst:
            dst.write(struct.pack("<Q", len(encoded)) + encoded)
            src.seek(8 + length)
            shutil.copyfileobj(src, dst, 16 << 20)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
