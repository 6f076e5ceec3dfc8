"""GGUF headers read and patched with the stdlib: metadata, tensor infos, and the `kolm.manifest`
key spliced in without re-encoding tensors (the data section is copied byte for byte)."""

from __future__ import annotations

import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kolm.atomic import atomic_file
from kolm.errors import ArtifactError

MANIFEST_KEY = "kolm.manifest"
GGML_MAX_DIMS = 4  # ggml.h: a tensor has at most 4 dimensions
VTYPES = (
    "UINT8",
    "INT8",
    "UINT16",
    "INT16",
    "UINT32",
    "INT32",
    "FLOAT32",
    "BOOL",
    "STRING",
    "ARRAY",
    "UINT64",
    "INT64",
    "FLOAT64",
)
_FMT = {
    "UINT8": "B",
    "INT8": "b",
    "UINT16": "H",
    "INT16": "h",
    "UINT32": "I",
    "INT32": "i",
    "FLOAT32": "f",
    "BOOL": "?",
    "UINT64": "Q",
    "INT64": "q",
    "FLOAT64": "d",
}
# ggml type ids -> names (ggml.h enum ggml_type), for the types a GGUF from this toolchain holds.
GGML_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    6: "Q5_0",
    7: "Q5_1",
    8: "Q8_0",
    9: "Q8_1",
    10: "Q2_K",
    11: "Q3_K",
    12: "Q4_K",
    13: "Q5_K",
    14: "Q6_K",
    15: "Q8_K",
    16: "IQ2_XXS",
    17: "IQ2_XS",
    18: "IQ3_XXS",
    19: "IQ1_S",
    20: "IQ4_NL",
    21: "IQ3_S",
    22: "IQ2_S",
    23: "IQ4_XS",
    24: "I8",
    25: "I16",
    26: "I32",
    27: "I64",
    28: "F64",
    29: "IQ1_M",
    30: "BF16",
    34: "TQ1_0",
    35: "TQ2_0",
    39: "MXFP4",
}


@dataclass
class Entry:
    """One metadata pair, with the byte span it occupies in the file."""

    key: str
    vtype: str  # element type for arrays
    value: Any
    start: int
    end: int


@dataclass(frozen=True)
class TensorInfo:
    """One tensor info of the header: where its data is and how it is encoded."""

    name: str | bytes  # bytes when not UTF-8
    shape: tuple[int, ...]  # GGUF (ggml) order, ne0 first
    type_id: int  # the raw ggml type id (enum ggml_type); may be one GGML_TYPES does not name
    offset: int  # of its data, relative to the data section (`Header.data_offset`)

    @property
    def kind(self) -> str:
        """The ggml type's name, "?" for an id GGML_TYPES does not know."""
        return GGML_TYPES.get(self.type_id, "?")


@dataclass
class Header:
    """A parsed GGUF header; tensor data starts at `data_offset` (absolute), each tensor's at
    `data_offset + TensorInfo.offset`."""

    version: int
    entries: list[Entry]
    tensor_infos: list[TensorInfo]
    tensor_info_span: tuple[int, int]
    data_offset: int

    @property
    def tensors(self) -> list[tuple[str | bytes, tuple[int, ...], str]]:
        """(name, GGUF-order shape, ggml type name) of each tensor, in file order."""
        return [(t.name, t.shape, t.kind) for t in self.tensor_infos]

    def get(self, key: str, default: Any = None) -> Any:
        return next((e.value for e in self.entries if e.key == key), default)


class _Reader:
    def __init__(self, f: BinaryIO, origin: str, size: int) -> None:
        self.f, self.origin, self.size = f, origin, size

    def read(self, fmt: str) -> Any:
        n = struct.calcsize("<" + fmt)
        raw = self.f.read(n)
        if len(raw) != n:
            raise ArtifactError(f"{self.origin}: truncated GGUF header")
        return struct.unpack("<" + fmt, raw)[0]

    def string(self) -> Any:
        n = self.read("Q")
        if n > self.size:
            raise ArtifactError(f"{self.origin}: corrupt GGUF header (string of {n} bytes)")
        raw = self.f.read(n)
        if len(raw) != n:
            raise ArtifactError(f"{self.origin}: truncated GGUF header")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw  # keep the exact bytes so sizes stay exact

    def vtype(self) -> str:
        code = self.read("I")
        if code >= len(VTYPES):
            raise ArtifactError(f"{self.origin}: corrupt GGUF header (value type {code})")
        return VTYPES[code]

    def value(self, vtype: str) -> Any:
        return self.string() if vtype == "STRING" else self.read(_FMT[vtype])


def read_header(path: Path) -> Header:
    """Parse a GGUF's header; a file that is not GGUF, or is truncated, raises `ArtifactError`."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ArtifactError(f"{path}: not a GGUF file")
        r = _Reader(f, str(path), size)
        version, n_tensors, n_kv = r.read("I"), r.read("Q"), r.read("Q")
        if n_tensors > size or n_kv > size:
            raise ArtifactError(f"{path}: corrupt GGUF header")
        entries = []
        for _ in range(n_kv):
            start = f.tell()
            key, vtype = r.string(), r.vtype()
            if vtype == "ARRAY":
                vtype, count = r.vtype(), r.read("Q")
                if vtype == "ARRAY":
                    raise ArtifactError(f"{path}: unsupported GGUF header (an array of arrays, {key!r})")
                if count > size:
                    raise ArtifactError(f"{path}: corrupt GGUF header (an array of {count} values)")
                if vtype == "STRING":
                    value: Any = [r.string() for _ in range(count)]
                else:
                    fmt = f"<{count}{_FMT[vtype]}"
                    nbytes = count * struct.calcsize(_FMT[vtype])
                    raw = f.read(nbytes) if nbytes <= size else b""
                    if len(raw) != nbytes:
                        raise ArtifactError(f"{path}: truncated GGUF header")
                    value = list(struct.unpack(fmt, raw))
            else:
                value = r.value(vtype)
            entries.append(Entry(key, vtype, value, start, f.tell()))
        info_start = f.tell()
        infos = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.read("I")
            if n_dims > GGML_MAX_DIMS:
                raise ArtifactError(f"{path}: corrupt GGUF header (a tensor of {n_dims} dimensions)")
            shape = tuple(r.read("Q") for _ in range(n_dims))
            infos.append(TensorInfo(name, shape, type_id=r.read("I"), offset=r.read("Q")))
        info_end = f.tell()
    alignment = next((e.value for e in entries if e.key == "general.alignment"), 32)
    # GGUF's spec (ggml docs/gguf.md): general.alignment "must be a multiple of 8"
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment <= 0 or alignment % 8:
        raise ArtifactError(f"{path}: corrupt GGUF header (general.alignment {alignment!r}, not a multiple of 8)")
    data_offset = -(-info_end // alignment) * alignment
    if data_offset > size:
        raise ArtifactError(f"{path}: truncated GGUF (no tensor data)")
    return Header(version, entries, infos, (info_start, info_end), data_offset)


def _string_entry(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", VTYPES.index("STRING")) + struct.pack("<Q", len(v)) + v


def set_string(path: Path, key: str, value: str) -> None:
    """Set metadata `key` to the string `value` (replacing any old one), atomically.

    Tensor infos keep their data-relative offsets, so the data section is copied unchanged.
    """
    path = Path(path)
    header = read_header(path)
    kept = [e for e in header.entries if e.key != key]
    alignment = header.get("general.alignment", 32)
    with atomic_file(path) as tmp, open(path, "rb") as src, open(tmp, "wb") as out:
        out.write(b"GGUF" + struct.pack("<IQQ", header.version, len(header.tensor_infos), len(kept) + 1))
        for e in kept:
            src.seek(e.start)
            out.write(src.read(e.end - e.start))
        out.write(_string_entry(key, value))
        src.seek(header.tensor_info_span[0])
        out.write(src.read(header.tensor_info_span[1] - header.tensor_info_span[0]))
        out.write(b"\0" * (-out.tell() % alignment))
        src.seek(header.data_offset)
        shutil.copyfileobj(src, out, 8 * 2**20)
