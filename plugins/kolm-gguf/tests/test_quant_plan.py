"""quant_plan against real llama.cpp quantizations (llama-cpp-python 0.3.36).

Each case writes an F16 GGUF, quantizes it with ``llama_cpp.llama_model_quantize`` to every kolm
tier, and checks the predicted per-tensor types (read back with ``gguf.GGUFReader``) and the
predicted file size, byte for byte.
"""

from __future__ import annotations

import collections
import ctypes
from pathlib import Path

import pytest
from kolm_gguf import quant_plan as qp
from kolm_gguf.gguf_file import read_header
from kolm_gguf.plugin import ftypes


def read_gguf(path):
    """(metadata as (key, value, type)), (tensors as (name, shape, type)) of a GGUF file."""
    header = read_header(path)
    return [(e.key, e.value, e.vtype) for e in header.entries], header.tensors


def smollm2_inventory() -> list[tuple[str, tuple[int, ...]]]:
    """SmolLM2-135M (hidden 576, 30 layers, 9/3 heads, ffn 1536, tied), GGUF order."""
    h, ff, kv, vocab = 576, 1536, 192, 49152
    out = [("token_embd.weight", (h, vocab)), ("output_norm.weight", (h,))]
    for i in range(30):
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", (h,)),
            (b + "ffn_norm.weight", (h,)),
            (b + "attn_q.weight", (h, h)),
            (b + "attn_k.weight", (h, kv)),
            (b + "attn_v.weight", (h, kv)),
            (b + "attn_output.weight", (h, h)),
            (b + "ffn_gate.weight", (h, ff)),
            (b + "ffn_up.weight", (h, ff)),
            (b + "ffn_down.weight", (ff, h)),
        ]
    return out


# ---------------------------------------------------------------------------------------------
# pure rules: no llama_cpp needed


def test_smollm2_type_counts_match_known_quantizations():
    inv = smollm2_inventory()
    counts = {tier: collections.Counter(qp.plan_types(inv, ft).values()) for tier, ft in ftypes().items()}
    assert counts["int4"] == {"Q5_0": 166, "Q4_K": 16, "Q6_K": 14, "Q8_0": 15, "F32": 61}
    assert counts["int3"] == {"Q4_0": 180, "Q3_K": 30, "Q8_0": 1, "F32": 61}
    assert counts["int8"] == {"Q8_0": 211, "F32": 61}
    assert counts["fp16"] == {"F16": 211, "F32": 61}


def test_rules_for_divisible_shapes():
    # 8 layers: use_more_bits picks layers 0, 3, 6, 7
    h, ff = 256, 512
    inv = [("token_embd.weight", (h, 1000)), ("output.weight", (h, 1000)), ("output_norm.weight", (h,))]
    for i in range(8):
        inv += [
            (f"blk.{i}.attn_v.weight", (h, 128)),
            (f"blk.{i}.ffn_down.weight", (ff, h)),
            (f"blk.{i}.attn_q.weight", (h, h)),
            (f"blk.{i}.ffn_gate_inp.weight", (h, 4)),
        ]
    t = qp.plan_types(inv, "Q4_K_M")
    assert [t[f"blk.{i}.attn_v.weight"] for i in range(8)] == [
        "Q6_K",
        "Q4_K",
        "Q4_K",
        "Q6_K",
        "Q4_K",
        "Q4_K",
        "Q6_K",
        "Q6_K",
    ]
    assert [t[f"blk.{i}.ffn_down.weight"] for i in range(8)] == [
        "Q6_K",
        "Q4_K",
        "Q4_K",
        "Q6_K",
        "Q4_K",
        "Q4_K",
        "Q6_K",
        "Q6_K",
    ]
    assert t["output.weight"] == "Q6_K" and t["token_embd.weight"] == "Q4_K"
    assert t["blk.0.ffn_gate_inp.weight"] == "F32"  # routers are never quantized
    t3 = qp.plan_types(inv, "Q3_K_S")
    assert t3["output.weight"] == "Q6_K" and t3["token_embd.weight"] == "Q3_K"
    assert set(t3[f"blk.{i}.attn_v.weight"] for i in range(8)) == {"Q3_K"}


def test_fallbacks_and_70b_rule():
    inv = [("blk.0.ffn_down.weight", (1000, 64)), ("blk.0.attn_q.weight", (96, 64)), ("token_embd.weight", (96, 10))]
    assert qp.plan_types(inv, "Q8_0")["blk.0.ffn_down.weight"] == "F16"  # 1000 % 32 != 0
    assert qp.plan_types(inv, "Q4_K_M")["blk.0.attn_q.weight"] == "Q5_0"  # 96 % 256 != 0
    assert qp.plan_types(inv, "Q3_K_S")["token_embd.weight"] == "Q8_0"  # tied: output rule
    # Llama-70B shape (80 layers, GQA): attn_v Q3_K -> Q5_K in Q3_K_S
    big = []
    for i in range(80):
        big += [
            (f"blk.{i}.attn_q.weight", (8192, 8192)),
            (f"blk.{i}.attn_k.weight", (8192, 1024)),
            (f"blk.{i}.attn_v.weight", (8192, 1024)),
        ]
    assert qp.plan_types(big, "Q3_K_S")["blk.5.attn_v.weight"] == "Q5_K"
    assert qp.plan_types(big[:-3], "Q3_K_S")["blk.5.attn_v.weight"] == "Q3_K"  # 79 layers


def test_metadata_bytes_and_layout():
    meta = [
        ("general.architecture", "llama"),
        ("llama.block_count", 2, "UINT32"),
        ("tokenizer.ggml.tokens", ["a", "bc"]),
        ("tokenizer.ggml.scores", [0.0, 1.5]),
        ("split.count", 2, "UINT16"),
    ]
    nbytes, n_kv = qp.kv_section_bytes(meta)
    assert n_kv == 6  # split.count dropped; file_type and quantization_version added
    assert nbytes == (
        (8 + 20 + 4 + 8 + 5)
        + (8 + 17 + 4 + 4)
        + (8 + 21 + 4 + 4 + 8 + 9 + 10)
        + (8 + 21 + 4 + 4 + 8 + 8)
        + (8 + 28 + 4 + 4)
        + (8 + 17 + 4 + 4)
    )
    inv = [("a.weight", (32, 3)), ("b", (5,))]
    expected_meta = 24 + nbytes + (8 + 8 + 4 + 16 + 4 + 8) + (8 + 1 + 4 + 8 + 4 + 8)
    size = qp.gguf_file_size(inv, "F16", meta)
    assert size == -(-expected_meta // 32) * 32 + 192 + 32


def test_hf_names_agree_with_gguf_py():
    import gguf
    from kolm_gguf.names import gguf_name

    n_blocks = 2
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_blocks)
    hf = [
        "model.embed_tokens.weight",
        "lm_head.weight",
        "model.norm.weight",
        *(
            f"model.layers.1.{m}.weight"
            for m in (
                "input_layernorm",
                "self_attn.q_proj",
                "self_attn.k_proj",
                "self_attn.v_proj",
                "self_attn.o_proj",
                "post_attention_layernorm",
                "mlp.gate_proj",
                "mlp.up_proj",
                "mlp.down_proj",
            )
        ),
        "model.layers.0.self_attn.q_proj.bias",
    ]
    for name in hf:
        assert gguf_name(name) == name_map.get_name(name, try_suffixes=(".weight", ".bias")), name
    assert gguf_name("model.layers.0.mlp.gate_up_proj.weight") == "blk.0.ffn_up.weight"  # phi3 fused
    assert gguf_name("model.vision_tower.weight") is None


def test_block_sizes_match_gguf_py():
    from gguf.constants import GGML_QUANT_SIZES

    known = {t.name: v for t, v in GGML_QUANT_SIZES.items()}
    assert {name: known[name] for name in qp.QUANT_SIZES} == qp.QUANT_SIZES


# ---------------------------------------------------------------------------------------------
# real quantizations


def _quantize(src: Path, dst: Path, ftype: str) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}")
    params.allow_requantize = True
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    assert rc == 0, f"llama_model_quantize({src.name} -> {ftype}) failed"


def _reader_types(path: Path) -> dict[str, str]:
    """Per-tensor types as gguf.GGUFReader reports them (slow on files with a big vocabulary)."""
    import gguf

    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(str(path)).tensors}


def _check_all_tiers(src: Path, tmp: Path, arch: str, reader_tiers: tuple[str, ...] = ()) -> dict[str, tuple[int, int]]:
    """Quantize ``src`` to every tier; assert types and size. Returns {tier: (predicted, actual)}.

    The inventory passed to the predictor is names and shapes only, as kolm has them.
    """
    meta, src_tensors = read_gguf(str(src))
    inv = [(name, shape) for name, shape, _ in src_tensors]
    sizes = {}
    for tier, ftype in ftypes().items():
        dst = tmp / f"{src.stem}.{ftype}.gguf"
        _quantize(src, dst, ftype)
        actual_types = {name: t for name, _, t in read_gguf(str(dst))[1]}
        if tier in reader_tiers:
            assert _reader_types(dst) == actual_types
        assert qp.plan_types(inv, ftype, arch) == actual_types, tier
        predicted, actual = qp.gguf_file_size(inv, ftype, meta, arch), dst.stat().st_size
        assert predicted == actual, (tier, predicted, actual)
        sizes[tier] = (predicted, actual)
        dst.unlink()
    return sizes


def _tokenizer_meta(smol: Path | None) -> list[tuple[str, object, str]]:
    """SmolLM2's tokenizer metadata (a real 49k vocabulary), or a small made-up one."""
    if smol is not None:
        return [e for e in read_gguf(str(smol))[0] if e[0].startswith("tokenizer.")]
    # the quantizer never loads the vocabulary; a small gpt2-style one is enough
    toks = [f"t{i}" for i in range(1000)]
    return [
        ("tokenizer.ggml.model", "gpt2", "STRING"),
        ("tokenizer.ggml.tokens", toks, "STRING"),
        ("tokenizer.ggml.token_type", [1] * len(toks), "INT32"),
    ]


def _write_random_llama(
    path: Path,
    *,
    arch: str,
    hidden: int,
    n_layer: int,
    n_head: int,
    n_kv: int,
    ff: int,
    tied: bool,
    file_type_keys: bool,
    seed: int,
    smollm2_tokenizer: Path | None,
) -> None:
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    tok = _tokenizer_meta(smollm2_tokenizer)
    vocab = len(next(v for k, v, _ in tok if k == "tokenizer.ggml.tokens"))
    w = gguf.GGUFWriter(str(path), arch)
    w.add_name(f"random-{arch}-{hidden}")
    w.add_context_length(2048)
    w.add_embedding_length(hidden)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(hidden // n_head)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    if file_type_keys:
        w.add_file_type(1)
        w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, value, vtype in tok:
        vt = gguf.GGUFValueType[vtype]
        if isinstance(value, list):
            w.add_key_value(key, value, gguf.GGUFValueType.ARRAY, sub_type=vt)
        else:
            w.add_key_value(key, value, vt)

    def mat(rows: int, cols: int):  # numpy (rows, cols) == GGUF ne (cols, rows)
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    def vec(n: int):
        return np.ones(n, dtype=np.float32)

    head = hidden // n_head
    w.add_tensor("token_embd.weight", mat(vocab, hidden))
    w.add_tensor("output_norm.weight", vec(hidden))
    if not tied:
        w.add_tensor("output.weight", mat(vocab, hidden))
    for i in range(n_layer):
        b = f"blk.{i}."
        w.add_tensor(b + "attn_norm.weight", vec(hidden))
        w.add_tensor(b + "attn_q.weight", mat(n_head * head, hidden))
        w.add_tensor(b + "attn_k.weight", mat(n_kv * head, hidden))
        w.add_tensor(b + "attn_v.weight", mat(n_kv * head, hidden))
        if arch == "qwen2":
            w.add_tensor(b + "attn_q.bias", vec(n_head * head))
            w.add_tensor(b + "attn_k.bias", vec(n_kv * head))
            w.add_tensor(b + "attn_v.bias", vec(n_kv * head))
        w.add_tensor(b + "attn_output.weight", mat(hidden, n_head * head))
        w.add_tensor(b + "ffn_norm.weight", vec(hidden))
        w.add_tensor(b + "ffn_gate.weight", mat(ff, hidden))
        w.add_tensor(b + "ffn_up.weight", mat(ff, hidden))
        w.add_tensor(b + "ffn_down.weight", mat(hidden, ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


RANDOM_MODELS = {
    # tied output, GQA 4/2, everything divisible by 256, no file_type keys in the source
    "tied_gqa": dict(
        arch="llama",
        hidden=256,
        n_layer=4,
        n_head=4,
        n_kv=2,
        ff=768,
        tied=True,
        file_type_keys=False,
        seed=1,
        smollm2_tokenizer=True,
    ),
    # untied output, GQA 8/2, ffn 1376 = 43*32: ffn_down falls back from K-quants
    "untied_ff1376": dict(
        arch="llama",
        hidden=512,
        n_layer=3,
        n_head=8,
        n_kv=2,
        ff=1376,
        tied=False,
        file_type_keys=True,
        seed=2,
        smollm2_tokenizer=False,
    ),
    # qwen2 with q/k/v biases, MHA, 8 layers, ffn 1000 (not a multiple of 32: ffn_down -> F16)
    "qwen2_ff1000": dict(
        arch="qwen2",
        hidden=256,
        n_layer=8,
        n_head=4,
        n_kv=4,
        ff=1000,
        tied=False,
        file_type_keys=True,
        seed=3,
        smollm2_tokenizer=False,
    ),
}


@pytest.mark.parametrize("case", sorted(RANDOM_MODELS))
def test_random_llama_models_quantize_as_predicted(case, tmp_path, request):
    import llama_cpp  # noqa: F401 - the toolchain this test needs

    cfg = RANDOM_MODELS[case]
    src = tmp_path / f"{case}.F16.gguf"
    tokenizer = request.getfixturevalue("smol_gguf") if cfg["smollm2_tokenizer"] else None
    _write_random_llama(src, **{**cfg, "smollm2_tokenizer": tokenizer})
    # GGUFReader takes seconds on a 49k vocabulary: use it only on the small-vocabulary cases
    reader_tiers = () if cfg["smollm2_tokenizer"] else tuple(ftypes())
    sizes = _check_all_tiers(src, tmp_path, cfg["arch"], reader_tiers)
    print(case, sizes)


@pytest.mark.slow
def test_smollm2_quantizes_as_predicted(smol_gguf, tmp_path):
    smol = smol_gguf
    src = tmp_path / "smollm2-135m.F16.gguf"
    _quantize(smol, src, "F16")
    src_tensors = read_gguf(str(src))[1]
    assert {t for _, _, t in src_tensors} == {"F16", "F32"}  # a plain F16 file
    assert sorted((n, s) for n, s, _ in src_tensors) == sorted(smollm2_inventory())
    sizes = _check_all_tiers(src, tmp_path, "llama", reader_tiers=("int4",))
    print("smollm2", sizes)


def test_metadata_as_byte_count(tmp_path):
    """The int form of ``metadata``: the KV-section length of a source holding file_type keys."""
    import gguf
    import llama_cpp  # noqa: F401 - the toolchain this test needs

    cfg = RANDOM_MODELS["qwen2_ff1000"]
    src, dst = tmp_path / "src.gguf", tmp_path / "dst.gguf"
    _write_random_llama(src, **{**cfg, "smollm2_tokenizer": None})
    fields = gguf.GGUFReader(str(src)).fields
    kv_end = max(
        f.offset + sum(p.nbytes for p in f.parts) for name, f in fields.items() if not name.startswith("GGUF.")
    )
    kv_bytes = kv_end - 24  # magic, version, n_tensors, n_kv
    meta, tensors = read_gguf(str(src))
    assert qp.kv_section_bytes(meta)[0] == kv_bytes
    _quantize(src, dst, "Q4_K_M")
    inv = [(n, s) for n, s, _ in tensors]
    assert qp.gguf_file_size(inv, "Q4_K_M", kv_bytes, "qwen2") == dst.stat().st_size
