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
    metadata = header.pop("__metadata__", {}) or {}
    return metadata, header


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
