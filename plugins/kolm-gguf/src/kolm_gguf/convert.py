"""`kolm pack --from-gguf`: a Llama-family GGUF back to a Hugging Face folder (float16 safetensors).

Streams one tensor at a time (plain file reads, no mmap of the whole model), so peak memory is
about one tensor in float32 plus the interpreter, never two copies of the model. Needs only numpy,
gguf and safetensors' file format (written here directly). The other direction, Hugging Face ->
GGUF, is llama.cpp's own converter (`kolm_gguf.upstream`).
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import gguf
import numpy as np
from gguf.gguf_reader import READER_SUPPORTED_VERSIONS
from kolm.atomic import atomic_file
from kolm.errors import ArtifactError, UnsupportedModelError

from kolm_gguf import tokenizer as tok
from kolm_gguf.gguf_file import Header, TensorInfo, read_header
from kolm_gguf.names import BLOCK, GLOBAL

Progress = Callable[[int, int], None]
"""Called as progress(done_bytes, total_bytes) after each tensor is written."""

SUPPORTED_GGUF_ARCHS = ("llama",)

_ST_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "BF16": np.uint16}


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """GGUF -> HF q/k row order (inverse of _permute)."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _report(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


def _read_exact(f: BinaryIO, offset: int, nbytes: int, what: str) -> np.ndarray:
    buf = np.empty(nbytes, dtype=np.uint8)
    f.seek(offset)
    if f.readinto(memoryview(buf)) != nbytes:
        raise ArtifactError(f"{what}: file ends early (truncated); re-download or re-export it")
    return buf


# ----------------------------------------------------------------------------------------------
# GGUF -> HF


def _corrupt(path: Path, why: object) -> ArtifactError:
    return ArtifactError(f"{path} is a truncated or corrupt GGUF file ({why}); re-download or re-export it")


def _repeated(items: list[Any]) -> Any:
    """The first item seen twice, else None."""
    seen: set[Any] = set()
    for x in items:
        if x in seen:
            return x
        seen.add(x)
    return None


def _n_bytes(t: TensorInfo) -> int:
    """Bytes of t's data: its values / values per block * bytes per block (gguf-py's GGML_QUANT_SIZES).
    ValueError for a type id gguf-py does not know, or rows that are not whole blocks."""
    qtype = gguf.GGMLQuantizationType(t.type_id)
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    row = t.shape[0] if t.shape else 1
    if row % block:
        raise ValueError(f"tensor {t.name}: rows of {row} values are not whole {qtype.name} blocks of {block}")
    return math.prod(t.shape) // block * type_size


def _open_gguf(path: Path) -> Header:
    """The GGUF's header, read once by kolm's bounded reader (`read_header`), then checked as gguf-py's
    reader checks it: version and byte order, alignment, unique keys and tensor names, known tensor
    types in whole blocks, and every tensor's data inside the file."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such GGUF file")
    with open(path, "rb") as f:
        start = f.read(8)
    if start[:4] != b"GGUF":
        raise ArtifactError(f"{path} is not a GGUF file (starts with {start[:4]!r}, expected b'GGUF')")
    if len(start) == 8:  # shorter: read_header says truncated
        version = int.from_bytes(start[4:], "little")
        if version & 0xFFFF == 0:  # gguf-py's rule: a version written big-endian
            version = int.from_bytes(start[4:], "big")
            if version in READER_SUPPORTED_VERSIONS:
                raise UnsupportedModelError(f"{path} is a big-endian GGUF; only little-endian files convert")
        if version not in READER_SUPPORTED_VERSIONS:
            raise _corrupt(path, f"GGUF version {version}")
    header = read_header(path)
    alignment = next((e for e in header.entries if e.key == "general.alignment"), None)
    if alignment is not None and (alignment.vtype != "UINT32" or alignment.value & (alignment.value - 1)):
        raise _corrupt(path, f"general.alignment {alignment.value!r} is not a power of two in a UINT32")
    keys = [e.key for e in header.entries]
    names = [t.name for t in header.tensor_infos]
    for what, items in (("metadata key", keys), ("tensor name", names)):
        if (bad := next((x for x in items if isinstance(x, bytes)), None)) is not None:
            raise _corrupt(path, f"{what} {bad!r} is not UTF-8")
    if (key := _repeated(keys)) is not None:
        raise _corrupt(path, f"metadata key {key} appears twice")
    if (name := _repeated(names)) is not None:
        raise _corrupt(path, f"tensor {name} appears twice")
    size = path.stat().st_size
    for t in header.tensor_infos:
        try:
            end = header.data_offset + t.offset + _n_bytes(t)
        except ValueError as e:
            raise _corrupt(path, e) from e
        if end > size:
            raise _corrupt(path, f"tensor {t.name} needs bytes up to {end}, the file has {size}")
    return header


def _kv(header: Header, key: str, default: Any = ...) -> Any:
    if default is ... and header.get(key) is None:
        raise ArtifactError(f"GGUF metadata key {key} is missing; the file is not a complete llama model")
    return tok.metadata(header, key, default)


def _f32(x: float) -> float:
    """A float32 value as the shortest decimal that round-trips (9.99999974e-06 -> 1e-05)."""
    return float(str(np.float32(x)))


@dataclass
class _GgufTensor:
    hf_name: str
    name: str  # GGUF name
    qtype: gguf.GGMLQuantizationType
    offset: int  # absolute file offset of the data
    nbytes: int
    shape: tuple[int, ...]  # numpy order
    n_head: int | None  # un-permute with this many heads (q/k), else None


def _plan_gguf(header: Header, n_head: int, n_kv: int) -> list[_GgufTensor]:
    """HF name, type, absolute data offset and size of each tensor of a header `_open_gguf` checked."""
    plan = []
    for t in header.tensor_infos:
        parts = t.name.split(".")
        shape = tuple(reversed(t.shape))
        head = None
        if parts[0] == "blk" and len(parts) == 4 and parts[2] in BLOCK:
            hf = f"model.layers.{parts[1]}.{BLOCK[parts[2]]}.{parts[3]}"
            head = {"attn_q": n_head, "attn_k": n_kv}.get(parts[2])
        elif len(parts) == 2 and parts[0] in GLOBAL:
            hf = f"{GLOBAL[parts[0]]}.{parts[1]}"
        elif t.name == "rope_freqs.weight":
            raise UnsupportedModelError(
                "this GGUF carries rope_freqs (Llama 3.1-style rope scaling), which has no exact HF "
                "config equivalent here; convert from the original HF checkpoint instead"
            )
        else:
            raise UnsupportedModelError(f"GGUF tensor {t.name!r} is not part of a plain llama model")
        qtype = gguf.GGMLQuantizationType(t.type_id)
        plan.append(_GgufTensor(hf, t.name, qtype, header.data_offset + t.offset, _n_bytes(t), shape, head))
    return plan


_CHUNK_ELEMS = 1 << 22  # dequantize/cast in row chunks of about this many values (16 MiB of float32)


def _to_f16(rows: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    """One chunk of rows (raw bytes, last axis = bytes per row) as float16."""
    if qtype == gguf.GGMLQuantizationType.F16:
        return rows.view(np.float16)
    if qtype == gguf.GGMLQuantizationType.F32:
        arr = rows.view(np.float32)
    elif qtype == gguf.GGMLQuantizationType.BF16:
        arr = (rows.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        arr = gguf.quants.dequantize(rows, qtype)
    with np.errstate(over="ignore"):
        out = arr.astype(np.float16)
    if not np.isfinite(out).all() and np.isfinite(arr).all():
        raise UnsupportedModelError("values outside the float16 range")
    return out


def _gguf_tensor_f16(f: BinaryIO, item: _GgufTensor) -> np.ndarray:
    t, qtype = item, item.qtype
    raw = _read_exact(f, t.offset, t.nbytes, f"tensor {t.name}")
    raw = raw.reshape(*item.shape[:-1], -1)  # rows of raw bytes, whatever the type
    out = np.empty(item.shape, dtype=np.float16)
    flat_raw, flat_out = raw.reshape(-1, raw.shape[-1]), out.reshape(-1, item.shape[-1])
    step = max(1, _CHUNK_ELEMS // item.shape[-1])
    try:
        for r in range(0, flat_out.shape[0], step):
            flat_out[r : r + step] = _to_f16(flat_raw[r : r + step], qtype)
    except UnsupportedModelError as e:
        raise UnsupportedModelError(f"tensor {t.name}: {e}") from e
    except NotImplementedError as e:
        raise UnsupportedModelError(f"tensor {t.name} uses {qtype.name}, which gguf cannot dequantize ({e})") from e
    return _unpermute(out, item.n_head) if item.n_head is not None else out


def _write_safetensors(
    path: Path, entries: list[tuple[str, tuple[int, ...]]], produce: Iterator[np.ndarray], progress: Progress | None
) -> None:
    """Write an F16 safetensors file tensor by tensor: u64 header length, JSON header, raw data."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in entries:
        n = math.prod(shape) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)
    with atomic_file(path) as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        done = 0
        for (name, shape), arr in zip(entries, produce, strict=True):
            if arr.shape != shape or arr.dtype != np.float16:
                raise ArtifactError(f"tensor {name}: produced {arr.dtype}{arr.shape}, expected float16{shape}")
            f.write(np.ascontiguousarray(arr, dtype="<f2").data)
            done += arr.nbytes
            _report(progress, done, offset)


def gguf_to_hf(gguf_path: Path, out_dir: Path, progress: Progress | None = None) -> None:
    """Convert a llama GGUF (any dequantizable type) to an HF dir: config, float16 safetensors, tokenizer."""
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    header = _open_gguf(gguf_path)
    arch = _kv(header, "general.architecture", None)
    if arch not in SUPPORTED_GGUF_ARCHS:
        raise UnsupportedModelError(
            f"GGUF architecture {arch!r} is not supported; "
            f"only llama-family models ({', '.join(SUPPORTED_GGUF_ARCHS)}) convert"
        )
    if _kv(header, "llama.expert_count", 0) > 0:
        raise UnsupportedModelError("mixture-of-experts llama GGUFs (Mixtral) are not supported")
    tok.check_gguf_tokenizer(header)
    scaling = _kv(header, "llama.rope.scaling.type", None)
    if scaling not in (None, "none", "linear"):
        raise UnsupportedModelError(f"rope scaling {scaling!r} is not supported; only none or linear convert")

    n_embd = int(_kv(header, "llama.embedding_length"))
    n_head = int(_kv(header, "llama.attention.head_count"))
    n_kv = int(_kv(header, "llama.attention.head_count_kv", n_head))
    n_ctx = int(_kv(header, "llama.context_length"))
    plan = _plan_gguf(header, n_head, n_kv)
    names = {p.hf_name for p in plan}
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": n_embd,
        "intermediate_size": int(_kv(header, "llama.feed_forward_length")),
        "num_hidden_layers": int(_kv(header, "llama.block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": int(_kv(header, "llama.attention.key_length", n_embd // n_head)),
        "hidden_act": "silu",
        "rms_norm_eps": _f32(_kv(header, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": _f32(_kv(header, "llama.rope.freq_base", 10000.0)),
        "rope_scaling": None,
        "max_position_embeddings": n_ctx,
        "vocab_size": int(_kv(header, "llama.vocab_size", len(_kv(header, "tokenizer.ggml.tokens")))),
        "tie_word_embeddings": "lm_head.weight" not in names,
        "attention_bias": "model.layers.0.self_attn.q_proj.bias" in names,
        "mlp_bias": "model.layers.0.mlp.up_proj.bias" in names,
        "bos_token_id": None,
        "eos_token_id": None,
        "pad_token_id": None,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "pretraining_tp": 1,
        "use_cache": True,
        "torch_dtype": "float16",
    }
    if scaling == "linear":
        config["rope_scaling"] = {"rope_type": "linear", "factor": _f32(_kv(header, "llama.rope.scaling.factor"))}

    out_dir.mkdir(parents=True, exist_ok=True)
    ids = tok.write_hf_tokenizer(header, out_dir, model_max_length=n_ctx)
    gen = {f"{k}_token_id": ids[k] for k in ("bos", "eos", "pad") if k in ids}
    tok.dump_json(out_dir / "config.json", {**config, **gen})
    tok.dump_json(out_dir / "generation_config.json", {**gen, "_from_model_config": True})

    with open(gguf_path, "rb") as f:
        _write_safetensors(
            out_dir / "model.safetensors",
            [(p.hf_name, p.shape) for p in plan],
            (_gguf_tensor_f16(f, p) for p in plan),
            progress,
        )
