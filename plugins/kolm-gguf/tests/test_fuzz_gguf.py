"""Fuzzing kolm-gguf's readers of untrusted GGUF bytes with Hypothesis (kolm_testing.fuzz):
`gguf_file.read_header` (`kolm verify`, `kolm run`) and `convert._open_gguf` (`kolm pack --from-gguf`:
`read_header` plus the checks gguf-py's reader made), on a small GGUF written with gguf-py holding
every metadata value type, and on its header damaged every which way.

Property: the header comes back, or one line of `ArtifactError`/`UnsupportedModelError`, and reading
holds at most MEMORY_BOUND (gguf-py's reader, which `kolm pack --from-gguf` once used and which trusts
declared counts, took 24 GB on a damaged array count before the kernel killed it).
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kolm.errors import ArtifactError, KolmError, UnsupportedModelError
from kolm_gguf import tokenizer
from kolm_gguf.convert import _open_gguf
from kolm_gguf.gguf_file import read_header
from kolm_testing.fuzz import FUZZ, mutated, one_line

MEMORY_BOUND = 16 << 20  # the seed is under 1 KiB: a reader needing more has trusted a declared size


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, int]:
    """A small GGUF with a value of every metadata type, string and number arrays, and two tensors;
    and where its tensor data starts (the fuzzer aims at the header before it)."""
    path = tmp_path_factory.mktemp("seed") / "seed.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_uint8("t.u8", 7)
    writer.add_int16("t.i16", -3)
    writer.add_uint32("llama.block_count", 1)
    writer.add_int64("t.i64", -(2**40))
    writer.add_float32("t.f32", 0.5)
    writer.add_float64("t.f64", 1e-5)
    writer.add_bool("t.bool", True)
    writer.add_string("general.name", "fuzz seed")
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "a", "b"])
    writer.add_array("tokenizer.ggml.scores", [0.0, -1.0, -2.0])
    writer.add_tensor("token_embd.weight", np.arange(12, dtype=np.float32).reshape(3, 4))
    writer.add_tensor("output_norm.weight", np.ones(4, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    header = read_header(path)
    assert header.get("tokenizer.ggml.tokens") == ["<s>", "a", "b"] and len(header.tensors) == 2
    return path.read_bytes(), header.data_offset


@FUZZ
@given(data=st.data())
def test_a_damaged_gguf_header_is_read_or_refused_in_one_line(seed, tmp_path, data):
    raw, header_end = seed
    candidate = tmp_path / "candidate.gguf"
    candidate.write_bytes(data.draw(mutated(raw, within=header_end), label="bytes"))
    for reader in (read_header, _open_gguf):
        tracemalloc.start()
        try:
            reader(candidate)
        except KolmError as exc:
            one_line(exc)
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < MEMORY_BOUND, f"{reader.__name__} held {peak} bytes reading {candidate.stat().st_size}"


@pytest.mark.parametrize(
    "patch",
    [
        {"general.alignment": 0},  # a division by zero, were it trusted
        {"general.alignment": "32"},  # the wrong type
        {"general.alignment": 2**31},  # data "after" the end of the file
    ],
)
def test_a_header_with_an_impossible_alignment_is_refused_in_one_line(tmp_path, patch):
    path = tmp_path / "aligned.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    for key, value in patch.items():
        if isinstance(value, str):
            writer.add_string(key, value)
        else:
            writer.add_uint32(key, value)
    writer.add_tensor("output_norm.weight", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(KolmError) as refused:
        read_header(path)
    one_line(refused.value)


def _small_gguf(path: Path, **writer_kw: Any) -> bytearray:
    """Keys kolm.test.a and kolm.test.b, two F32 tensors of 64 values, t0.weight and t1.weight (and
    general.alignment when `alignment=(type, value)` is given): the file's bytes."""
    alignment = writer_kw.pop("alignment", None)
    writer = gguf.GGUFWriter(path, "llama", **writer_kw)
    if alignment is not None:
        getattr(writer, f"add_{alignment[0]}")("general.alignment", alignment[1])
    writer.add_uint32("kolm.test.a", 1)
    writer.add_uint32("kolm.test.b", 2)
    for name in ("t0.weight", "t1.weight"):
        writer.add_tensor(name, np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return bytearray(path.read_bytes())


def _set(raw: bytearray, after: bytes, skip: int, fmt: str, value: Any) -> None:
    """Overwrite with `value` (struct `fmt`) the bytes `skip` past the end of the first `after`; a
    tensor info continues after its name with u32 n_dims, u64 ne0 (at +4), u32 ggml type (at +12)."""
    at = raw.index(after) + len(after) + skip
    raw[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        ({"endianess": gguf.GGUFEndian.BIG}, UnsupportedModelError, "is a big-endian GGUF"),
        ([(b"GGUF", 0, "<I", 4)], ArtifactError, "GGUF version 4"),
        ({"alignment": ("uint32", 24)}, ArtifactError, "general.alignment 24 is not a power of two"),
        ({"alignment": ("uint64", 64)}, ArtifactError, "general.alignment 64 is not a power of two"),
        ([(b"kolm.test.b", -1, "<c", b"a")], ArtifactError, "metadata key kolm.test.a appears twice"),
        ([(b"t1.weight", -8, "<c", b"\xff")], ArtifactError, r"tensor name b't\\xff.weight' is not UTF-8"),
        ([(b"t1.weight", -8, "<c", b"0")], ArtifactError, "tensor t0.weight appears twice"),
        ([(b"t1.weight", 12, "<I", 5)], ArtifactError, "5 is not a valid GGMLQuantizationType"),
        ([(b"t1.weight", 4, "<Q", 48), (b"t1.weight", 12, "<I", 2)], ArtifactError, "rows of 48 values .* Q4_0"),
        ([(b"t1.weight", 4, "<Q", 65)], ArtifactError, "tensor t1.weight needs bytes up to"),
    ],
)
def test_what_gguf_py_refused_open_gguf_refuses_in_one_line(tmp_path, damage, error, message):
    """`_open_gguf` makes the checks gguf-py's GGUFReader made when it read headers for `kolm pack
    --from-gguf`: each damage here is one GGUFReader refuses (or, big-endian, reads as swapped)."""
    path = tmp_path / "damaged.gguf"
    raw = _small_gguf(path, **damage) if isinstance(damage, dict) else _small_gguf(path)
    if isinstance(damage, list):
        for patch in damage:
            _set(raw, *patch)
        path.write_bytes(raw)
    with pytest.raises(error, match=message) as refused:
        _open_gguf(path)
    one_line(refused.value)
    if error is UnsupportedModelError:
        assert gguf.GGUFReader(path).byte_order == "S"
    else:
        with pytest.raises((ValueError, KeyError)):
            gguf.GGUFReader(path)


def test_a_tokenizer_string_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "tok.gguf"
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_string("tokenizer.ggml.model", "gpt2")
    writer.add_string("tokenizer.ggml.pre", "gpt2")
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "a", "\u00e9"])
    writer.add_array("tokenizer.ggml.merges", ["a a"])
    writer.add_tensor("output_norm.weight", np.ones(4, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    header = read_header(path)
    tokenizer.check_gguf_tokenizer(header)
    raw = path.read_bytes()
    path.write_bytes(raw.replace("\u00e9".encode(), b"\xff\xfe"))
    with pytest.raises(ArtifactError, match="tokenizer.ggml.tokens holds a string that is not UTF-8"):
        tokenizer.check_gguf_tokenizer(read_header(path))
