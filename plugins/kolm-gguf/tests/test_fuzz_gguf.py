"""Fuzzing kolm-gguf's readers of untrusted GGUF bytes with Hypothesis (kolm_testing.fuzz):
`gguf_file.read_header` (`kolm verify`, `kolm run`, `kolm pack --from-gguf`'s first look) and the
gguf-py reader behind `kolm pack --from-gguf` (`convert._open_gguf`), on a small GGUF written with
gguf-py holding every metadata value type, and on its header damaged every which way.

Property: the header (or the reader) comes back, or one line of `ArtifactError`/`UnsupportedModelError`,
and reading holds at most MEMORY_BOUND (gguf-py's reader, trusting a damaged array count, once took
24 GB before the kernel killed it; `_open_gguf` now checks the header with `read_header` first).
"""

from __future__ import annotations

import tracemalloc

import gguf
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kolm.errors import KolmError
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
