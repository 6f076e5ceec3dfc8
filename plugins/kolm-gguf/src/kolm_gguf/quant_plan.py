"""Forecast llama.cpp's per-tensor quant types and the exact GGUF file size, with no weights.

A port of the type-selection rules of ``src/llama-quant.cpp`` in the llama.cpp vendored by
llama-cpp-python 0.3.36 (``tensor_allows_quantization``, ``llama_tensor_get_type_impl``,
``tensor_type_fallback``), restricted to the four file types kolm exports: F16, Q8_0, Q4_K_M and
Q3_K_S, plus the GGUF layout the quantizer writes (``gguf_write_out``; data alignment 32).

Conventions:
- Tensors are ``(gguf_name, shape)`` or ``(gguf_name, shape, source_type)``; ``shape`` is in GGUF
  (ggml) order, ``ne0`` first, exactly as ``gguf.GGUFReader`` reports it. A Hugging Face weight
  of torch shape ``(out, in)`` therefore has shape ``(in, out)`` here; see ``kolm_gguf.size.gguf_tensors``.
- ``source_type`` only matters for tensors the quantizer copies unchanged (1-D norms, biases,
  MoE routers). It defaults to F32 for those, which is what ``convert_hf_to_gguf.py`` writes.
- Type names are ggml names: ``F32``, ``F16``, ``Q8_0``, ``Q4_K``, ``Q5_0`` ...

Only the stdlib is imported: a forecast must not pay for gguf or numpy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "FTYPE_IDS",
    "plan_types",
    "gguf_file_size",
    "kv_section_bytes",
    "tensor_nbytes",
]

FTYPE_IDS = {"F16": 1, "Q8_0": 7, "Q3_K_S": 11, "Q4_K_M": 15}
"""llama.cpp file type name -> ``llama_ftype`` value (what ``general.file_type`` holds)."""

_DEFAULT_TYPE = {"F16": "F16", "Q8_0": "Q8_0", "Q4_K_M": "Q4_K", "Q3_K_S": "Q3_K"}

ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT; llama_model_quantize always writes with it

Spec = tuple[str, Sequence[int]] | tuple[str, Sequence[int], str]
Meta = tuple[str, Any] | tuple[str, Any, Any]

# ---------------------------------------------------------------------------------------------
# ggml type sizes


# (weights per block, bytes per block) of each ggml type: gguf-py's GGML_QUANT_SIZES, copied so a
# forecast never imports gguf (and numpy); a test checks the copy against gguf.constants.
QUANT_SIZES = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "F64": (1, 8),
    "I8": (1, 1),
    "I16": (1, 2),
    "I32": (1, 4),
    "I64": (1, 8),
    "Q4_0": (32, 18),
    "Q4_1": (32, 20),
    "Q5_0": (32, 22),
    "Q5_1": (32, 24),
    "Q8_0": (32, 34),
    "Q8_1": (32, 40),
    "Q2_K": (256, 84),
    "Q3_K": (256, 110),
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),
    "Q6_K": (256, 210),
    "Q8_K": (256, 292),
    "IQ2_XXS": (256, 66),
    "IQ2_XS": (256, 74),
    "IQ3_XXS": (256, 98),
    "IQ1_S": (256, 50),
    "IQ4_NL": (32, 18),
    "IQ3_S": (256, 110),
    "IQ2_S": (256, 82),
    "IQ4_XS": (256, 136),
    "IQ1_M": (256, 56),
    "TQ1_0": (256, 54),
    "TQ2_0": (256, 66),
    "MXFP4": (32, 17),
}


def _block(type_name: str) -> int:
    return QUANT_SIZES[type_name][0]


def _is_quantized(type_name: str) -> bool:
    # ggml_is_quantized: block size > 1 (F32/F16/BF16/I* are not)
    return _block(type_name) > 1


def tensor_nbytes(shape: Sequence[int], type_name: str) -> int:
    """Bytes of one tensor's data (unpadded) of GGUF-order ``shape`` stored as ``type_name``."""
    block, size = QUANT_SIZES[type_name]
    ne0 = shape[0]
    if ne0 % block:
        raise ValueError(f"ne0={ne0} is not a multiple of the {type_name} block size {block}")
    rows = 1
    for d in shape[1:]:
        rows *= d
    return rows * (ne0 // block) * size


# ---------------------------------------------------------------------------------------------
# type selection (llama-quant.cpp)

_NOT_QUANTIZED = (
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
)

# archs whose loader sets LLM_TYPE_70B (models/*.cpp); "llama" additionally needs GQA
_70B_LAYERS = {"llama": 80, "qwen2": 80, "deci": 80, "olmo": 80, "jais2": 68}

_FALLBACK = {
    "IQ1_S": "IQ4_NL",
    "IQ1_M": "IQ4_NL",
    "IQ2_XXS": "IQ4_NL",
    "IQ2_XS": "IQ4_NL",
    "IQ2_S": "IQ4_NL",
    "IQ3_XXS": "IQ4_NL",
    "IQ3_S": "IQ4_NL",
    "IQ4_XS": "IQ4_NL",
    "Q2_0": "Q4_0",
    "Q2_K": "Q4_0",
    "Q3_K": "Q4_0",
    "TQ1_0": "Q4_0",
    "TQ2_0": "Q4_0",
    "Q4_K": "Q5_0",
    "Q5_K": "Q5_1",
    "Q6_K": "Q8_0",
}

_BLK = re.compile(r"blk\.(\d+)")


def _n_dims(shape: Sequence[int]) -> int:
    """ggml_n_dims: trailing 1s do not count, at least 1."""
    n = len(shape)
    while n > 1 and shape[n - 1] == 1:
        n -= 1
    return max(n, 1)


def _allows_quantization(name: str, shape: Sequence[int]) -> bool:
    if _n_dims(shape) < 2 or not name.endswith("weight"):
        return False
    if name in ("position_embd.weight", "token_types.weight"):
        return False
    return not any(s in name for s in _NOT_QUANTIZED)


def _category(name: str) -> str:
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    # attn_qkv and attn_kv_b are their own categories in llama.cpp, but category_is_attn_v()
    # is tested before any of their own branches, so they behave exactly like attn_v
    for key, cat in (
        ("attn_qkv.weight", "attn_v"),
        ("attn_kv_b.weight", "attn_v"),
        ("attn_v.weight", "attn_v"),
        ("attn_k.weight", "attn_k"),
        ("attn_q.weight", "attn_q"),
        ("attn_output.weight", "attn_output"),
        ("ffn_up", "ffn_up"),
        ("ffn_gate", "ffn_gate"),
        ("ffn_down", "ffn_down"),
    ):
        if key in name:
            return cat
    return "other"


def _layer_of(name: str) -> int:
    m = _BLK.match(name)  # like sscanf(name, "blk.%d."): anchored at the start
    return int(m.group(1)) if m else -1


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or _cmod(i_layer - n_layers // 8, 3) == 2


def _cmod(a: int, b: int) -> int:
    """C's % (truncates toward zero)."""
    r = abs(a) % b
    return -r if a < 0 else r


def _fallback(target: str, ne0: int) -> str:
    block = _block(target)
    if ne0 % block == 0:
        return target
    ret = _FALLBACK.get(target)
    if ret is None:
        if block > 32:
            raise ValueError(f"no tensor type fallback is defined for type {target}")
        ret = target
    return ret if ne0 % _block(ret) == 0 else "F16"


def _ftype_name(ftype: str) -> str:
    ft = ftype.upper()
    if ft not in _DEFAULT_TYPE:
        raise ValueError(f"unsupported file type {ftype!r}; use one of {sorted(_DEFAULT_TYPE)}")
    return ft


def _normalize(tensors: Iterable[Spec]) -> list[tuple[str, tuple[int, ...], str | None]]:
    out = []
    for t in tensors:
        name, shape = t[0], tuple(int(d) for d in t[1])
        src = t[2] if len(t) > 2 else None
        out.append((name, shape, src.upper() if isinstance(src, str) else getattr(src, "name", src)))
    return out


def plan_types(tensors: Iterable[Spec], ftype: str, arch: str = "llama") -> dict[str, str]:
    """ggml type llama.cpp's quantizer gives each tensor for file type ``ftype`` (e.g. "Q4_K_M").

    ``tensors`` are GGUF names with GGUF-order shapes; the block count, tied output, GQA (for the
    70B rule) and expert count are inferred from them. ``arch`` is ``general.architecture``
    (``mistral`` and other Llama-likes convert to ``llama``). Returns ``{name: type_name}``.
    """
    ft = _ftype_name(ftype)
    arch = "llama" if arch == "mistral" else arch
    default = _DEFAULT_TYPE[ft]
    specs = _normalize(tensors)
    shapes = {n: s for n, s, _ in specs}

    n_layer = 1 + max((_layer_of(n) for n in shapes), default=-1)
    n_expert = max((s[2] for n, s in shapes.items() if "_exps" in n and len(s) > 2), default=0)
    tied = "output.weight" not in shapes
    q, k = shapes.get("blk.0.attn_q.weight"), shapes.get("blk.0.attn_k.weight")
    gqa = bool(q and k and len(q) > 1 and len(k) > 1 and q[1] != k[1])
    is_70b = n_expert != 8 and n_layer == _70B_LAYERS.get(arch, -1) and (arch != "llama" or gqa)
    n_attention_wv = sum(_category(n) == "attn_v" for n in shapes)
    i_wv = i_down = 0

    def layer_info(counter: int, name: str) -> tuple[int, int]:
        if n_expert > 1:
            i = _layer_of(name)
            if not 0 <= i < n_layer:
                raise ValueError(f"Failed to determine layer for tensor {name}")
            return i, n_layer
        return counter, n_layer

    result: dict[str, str] = {}
    # llama_model_loader.weights_map order: by block number (non-block tensors first), then name
    for name, shape, src in sorted(specs, key=lambda s: (_layer_of(s[0]), s[0])):
        if not _allows_quantization(name, shape):
            result[name] = src or "F32"
            continue
        new = default
        if not _is_quantized(default):
            result[name] = new
            continue
        cat = _category(name)
        nx = shape[0]
        if cat == "output" or (tied and cat == "token_embd"):
            if arch == "falcon" or nx % _block(new):
                new = "Q8_0"
            elif new != "Q8_0":
                new = "Q6_K"
        elif cat == "token_embd":
            pass  # only IQ*/TQ*/Q2_0 file types change an untied token embedding
        elif cat == "attn_v":  # category_is_attn_v: attn_v, attn_qkv, attn_kv_b
            if ft == "Q4_K_M" and _use_more_bits(i_wv, n_attention_wv):
                new = "Q6_K"
            if is_70b and new in ("Q3_K", "Q4_K"):
                new = "Q5_K"
            if n_expert == 8:
                new = "Q8_0"
            i_wv += 1
        elif cat == "attn_k":
            if n_expert == 8:
                new = "Q8_0"
        elif cat == "ffn_down":
            i_layer, n = layer_info(i_down, name)
            if ft == "Q4_K_M":
                if arch == "falcon":
                    new = "Q6_K" if i_layer < n // 16 else "Q5_K" if _use_more_bits(i_layer, n) else "Q4_K"
                elif _use_more_bits(i_layer, n):
                    new = "Q6_K"
            i_down += 1
        elif cat == "attn_output":
            if arch != "falcon" and n_expert == 8 and ft in ("Q3_K_S", "Q4_K_M"):
                new = "Q5_K"
        # attn_q, ffn_gate, ffn_up: only IQ3_XS/IQ3_XXS change them
        result[name] = _fallback(new, nx)
    return result


# ---------------------------------------------------------------------------------------------
# GGUF layout (ggml/src/gguf.cpp: gguf_write_out)

_SCALAR_BYTES = {
    "UINT8": 1,
    "INT8": 1,
    "BOOL": 1,
    "UINT16": 2,
    "INT16": 2,
    "UINT32": 4,
    "INT32": 4,
    "FLOAT32": 4,
    "UINT64": 8,
    "INT64": 8,
    "FLOAT64": 8,
}
_SPLIT_KEYS = ("split.no", "split.count", "split.tensors.count")


def _infer_vtype(value: Any) -> str:
    if isinstance(value, (str, bytes, bytearray)):
        return "STRING"
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT32" if -(2**31) <= value < 2**32 else "INT64"
    if isinstance(value, float):
        return "FLOAT32"
    dtype = getattr(value, "dtype", None)  # numpy scalar
    if dtype is not None and getattr(value, "ndim", 0) == 0:
        return {1: "UINT8", 2: "UINT16", 4: "UINT32", 8: "UINT64"}[dtype.itemsize]
    raise TypeError(f"cannot infer a GGUF value type for {type(value).__name__}; pass (key, value, type_name)")


def _str_bytes(value: Any) -> int:
    return 8 + len(value.encode() if isinstance(value, str) else value)


def _kv_bytes(entry: Meta) -> int:
    key, value = entry[0], entry[1]
    vtype = entry[2] if len(entry) > 2 else None
    vtype = getattr(vtype, "name", vtype)  # gguf.GGUFValueType or its name
    vtype = vtype.upper() if isinstance(vtype, str) else vtype
    n = 8 + len(key.encode()) + 4  # key string + value type
    is_array = not isinstance(value, (str, bytes, bytearray)) and (
        isinstance(value, (list, tuple)) or getattr(value, "ndim", 0) > 0
    )
    if not is_array:
        vtype = vtype or _infer_vtype(value)
        return n + (_str_bytes(value) if vtype == "STRING" else _SCALAR_BYTES[vtype])
    # array: element type u32 + count u64 + items; a given type names the element type
    items = list(value)
    if vtype in (None, "ARRAY"):
        dtype = getattr(value, "dtype", None)
        if dtype is not None and dtype.kind in "iufb":
            vtype = {1: "UINT8", 2: "UINT16", 4: "UINT32", 8: "UINT64"}[dtype.itemsize]
        elif any(isinstance(v, (str, bytes, bytearray)) for v in items):
            vtype = "STRING"
        elif items and all(isinstance(v, bool) for v in items):
            vtype = "BOOL"
        elif any(isinstance(v, float) for v in items):
            vtype = "FLOAT32"
        else:
            vtype = "INT64" if any(not -(2**31) <= v < 2**32 for v in items) else "INT32"
    n += 4 + 8
    if vtype == "STRING":
        return n + sum(_str_bytes(v) for v in items)
    return n + _SCALAR_BYTES[vtype] * len(items)


def kv_section_bytes(metadata: Iterable[Meta]) -> tuple[int, int]:
    """(bytes, count) of the KV section llama_model_quantize writes for a source with ``metadata``.

    Entries are ``(key, value)`` or ``(key, value, type_name)``; for arrays ``type_name`` is the
    element type. Untyped ints count as 32-bit, floats as FLOAT32, like ``gguf.GGUFWriter``.
    The quantizer (re)sets ``general.quantization_version`` and ``general.file_type`` as UINT32
    and drops ``split.*`` keys; both are accounted for here.
    """
    entries = {e[0]: e for e in metadata if e[0] not in _SPLIT_KEYS}
    entries["general.quantization_version"] = ("general.quantization_version", 2, "UINT32")
    entries["general.file_type"] = ("general.file_type", 0, "UINT32")
    return sum(_kv_bytes(e) for e in entries.values()), len(entries)


def gguf_file_size(tensors: Iterable[Spec], ftype: str, metadata: Iterable[Meta] | int, arch: str = "llama") -> int:
    """Exact size in bytes of the GGUF llama_model_quantize writes for ``ftype``.

    ``metadata`` is the source file's KV list (see ``kv_section_bytes``) or, as an int, the byte
    length of its KV section already holding ``general.file_type`` and
    ``general.quantization_version`` as UINT32 (as ``convert_hf_to_gguf.py`` writes them).
    """
    specs = _normalize(tensors)
    types = plan_types(specs, ftype, arch)
    kv = metadata if isinstance(metadata, int) else kv_section_bytes(metadata)[0]
    meta = 4 + 4 + 8 + 8 + kv  # magic, version, n_tensors, n_kv
    data = 0
    for name, shape, _ in specs:
        meta += 8 + len(name.encode()) + 4 + 8 * _n_dims(shape) + 4 + 8  # name, dims, type, offset
        data += _pad(tensor_nbytes(shape, types[name]))
    return _pad(meta) + data


def _pad(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


# ---------------------------------------------------------------------------------------------
# names and metadata
