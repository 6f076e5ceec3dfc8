"""The safetensors header of an MLX payload: its `__metadata__` rewritten in place of the file
(atomically) to carry the RS-1 manifest. kolm.safetensors_header reads it."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from kolm.atomic import atomic_file
from kolm.safetensors_header import read_header

MANIFEST_KEY = "kolm.manifest"


def set_metadata(path: Path, key: str, value: str) -> None:
    """Add `key: value` to the file's `__metadata__`, keeping what is there (mlx-lm's
    {"format": "mlx"}); the new file replaces the old only once completely written."""
    metadata, tensors = read_header(path)
    encoded = json.dumps({"__metadata__": {**metadata, key: value}, **tensors}, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep the data 8-byte aligned, as safetensors does
    with atomic_file(path) as partial, open(path, "rb") as src, open(partial, "wb") as dst:
        dst.write(struct.pack("<Q", len(encoded)) + encoded)
        (length,) = struct.unpack("<Q", src.read(8))  # the old header's, which read_header checked
        src.seek(8 + length)
        shutil.copyfileobj(src, dst, 16 << 20)
