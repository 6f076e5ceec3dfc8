"""The browser bundle: the GGUF that the `gguf` backend writes (asked through the hook, never
imported), split into parts small enough for a browser, beside the page and wllama's runtime."""

from __future__ import annotations

import os
import shutil
from importlib.metadata import version
from importlib.resources import as_file, files
from pathlib import Path

from kolm.api import BackendPlugin, ExportRequest, ExportResult
from kolm.errors import BackendError

# wllama reads each file into one ArrayBuffer (2 GB at most); parts stay well below that.
PART_BYTES = 512 * 2**20  # KOLM_WASM_PART_BYTES overrides it (tests force small parts)
HEADROOM = 2**20  # the manifest is spliced into the first part after K is measured
WLLAMA_VERSION = "3.13.0"
PAGE = ("index.html", "kolm.js", "runtime.js", "verify.js", "wllama/index.js", "wllama/wllama.wasm", "wllama/LICENSE")


def export_bundle(request: ExportRequest, gguf_backend: BackendPlugin) -> ExportResult:
    """Export a GGUF through the gguf backend, split it if needed, and add the page around it."""
    made = gguf_backend.export(request)
    gguf = request.out_dir / made.payload[0]
    parts, limit = [gguf.name], int(os.environ.get("KOLM_WASM_PART_BYTES", PART_BYTES))
    if gguf.stat().st_size > limit:
        with request.steps(f"splitting {gguf.name} into parts of at most {limit / 2**20:g} MiB"):
            parts = [p.name for p in split_gguf(gguf, limit)]
    copy_page(request.out_dir)
    return ExportResult(
        payload=parts,
        toolchain={**made.toolchain, "kolm-wasm": version("kolm-wasm"), "wllama": WLLAMA_VERSION},
        flags={**made.flags, "part_bytes": limit},
    )


def copy_page(out_dir: Path) -> None:
    """index.html, the page's modules and wllama's ESM + .wasm, from this wheel (no network)."""
    static = files(__package__).joinpath("static")
    for name in PAGE:
        target = out_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with as_file(static.joinpath(name)) as source:
            shutil.copyfile(source, target)


def split_gguf(path: Path, limit: int) -> list[Path]:
    """Split a GGUF into `NAME-0000i-of-0000N.gguf` parts of at most `limit` bytes (gguf-split's
    layout: metadata in the first part, `split.*` keys in each), which llama.cpp and wllama both
    load given the first part."""
    import gguf

    reader = gguf.GGUFReader(path)
    max_tensor_bytes = limit - reader.data_offset - HEADROOM  # every part may hold the whole header
    arch = reader.fields[gguf.Keys.General.ARCHITECTURE].contents()
    staging = path.with_name(f".{path.name}")  # parts are written beside it, then renamed
    writer = gguf.GGUFWriter(staging, arch, split_max_size=max_tensor_bytes)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub)
    for tensor in reader.tensors:
        writer.add_tensor_info(
            tensor.name, tensor.data.shape, tensor.data.dtype, tensor.data.nbytes, tensor.tensor_type
        )
    names = writer.format_shard_names(staging)
    if names == [staging]:
        raise BackendError(f"cannot split {path.name}: one tensor is larger than a part ({max_tensor_bytes} B)")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for tensor in reader.tensors:
        writer.write_tensor_data(tensor.data, tensor_endianess=reader.endianess)
    writer.close()
    del reader
    path.unlink()
    parts = [name.with_name(name.name[1:]) for name in names]
    for name, part in zip(names, parts, strict=True):
        os.replace(name, part)
    return parts


def merge_parts(parts: list[Path], target: Path) -> Path:
    """One GGUF holding every part's tensors (and the first part's metadata, less `split.*`), so
    the gguf backend can read the tensor types of a split payload."""
    import gguf

    readers = [gguf.GGUFReader(p) for p in parts]
    arch = readers[0].fields[gguf.Keys.General.ARCHITECTURE].contents()
    writer = gguf.GGUFWriter(target, arch)
    for field in readers[0].fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith(("GGUF.", "split.")):
            continue
        sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), field.types[0], sub_type=sub)
    tensors = [t for r in readers for t in r.tensors]
    for t in tensors:
        writer.add_tensor_info(t.name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in tensors:
        writer.write_tensor_data(t.data, tensor_endianess=readers[0].endianess)
    writer.close()
    return target
