"""The JSON header of a safetensors file, read without loading a weight: its `__metadata__` and each
tensor's dtype, shape and data offsets, every field checked (the bytes may come from anyone)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import BinaryIO

from kolm.errors import ArtifactError

# safetensors' own bound on the header (MAX_HEADER_SIZE = 100_000_000 in safetensors/src/tensor.rs)
MAX_HEADER_BYTES = 100_000_000


def read_header(path: Path) -> tuple[dict[str, str], dict[str, dict]]:
    """(`__metadata__`, {tensor name: {"dtype", "shape", "data_offsets"}}) of the file `path`."""
    try:
        with open(path, "rb") as f:
            return read_stream_header(f, path.name)
    except OSError as exc:
        raise ArtifactError(f"{path.name}: not a readable safetensors file ({exc})") from exc


def read_stream_header(stream: BinaryIO, origin: str) -> tuple[dict[str, str], dict[str, dict]]:
    """As read_header, from a binary stream at the file's start; errors name `origin`."""
    try:
        (length,) = struct.unpack("<Q", stream.read(8))
        if length > MAX_HEADER_BYTES:
            raise ArtifactError(f"{origin}: safetensors header of {length} bytes is beyond safetensors' bound")
        header = json.loads(stream.read(length))
    except (struct.error, ValueError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ArtifactError(f"{origin}: not a readable safetensors file ({exc})") from exc
    if not isinstance(header, dict):
        raise ArtifactError(f"{origin}: the safetensors header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ArtifactError(f"{origin}: the safetensors __metadata__ is not a map of strings")
    for name, info in header.items():
        if not _tensor_entry(info):
            raise ArtifactError(f"{origin}: tensor {name[:60]!r} has no dtype, shape and data_offsets")
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
