"""The size forecast of a kolm-tensorrt export, tensor by tensor, without importing the toolchain
(ModelOpt 0.47's `export_hf_checkpoint`, read back from its output on a tiny Llama and SmolLM2).

Every 2-D `*proj.weight` of a layer is quantized; the embedding, `lm_head` (ModelOpt's default
exclusions), norms and biases stay float16. Per quantized projection (rows = out, cols = in):
W8A16 writes int8 weights and one float32 scale per row; W4A16 AWQ writes two int4 weights per
byte, one float32 scale per row and group, and a float16 `pre_quant_scale` per input column where
it cannot be folded into the norm before it (o_proj and down_proj). A tied `lm_head` is stored once.
The safetensors header is rebuilt as safetensors writes it (names, dtypes, shapes, offsets).
"""

from __future__ import annotations

import json

from kolm.api import Flags, ModelSpec, SizeForecast
from kolm.inventory import Tensor

from kolm_tensorrt.checkpoint import CONFIG, MANIFEST_KEY, SERVE_SCRIPT, SIDE_FILES

QUANT_CONFIG_BYTES = {"W8A16": 275, "W4A16_AWQ": 372}  # hf_quant_config.json as ModelOpt 0.47 writes it
UNFOLDED = ("o_proj.weight", "down_proj.weight")  # AWQ input scales no norm absorbs


def stored(name: str, shape: tuple[int, ...], options: Flags) -> list[Tensor]:
    """What the checkpoint stores for tensor `name` (safetensors dtypes)."""
    if not options or len(shape) != 2 or not name.endswith("proj.weight"):
        return [Tensor(name=name, shape=shape, dtype="F16")]
    rows, cols = shape
    stem = name.removesuffix(".weight")
    if options["quant_algo"] == "W8A16":
        return [
            Tensor(name=name, shape=shape, dtype="I8"),
            Tensor(name=f"{stem}.weight_scale", shape=(rows,), dtype="F32"),
        ]
    group = int(options["group_size"])
    out = [
        Tensor(name=name, shape=(rows // 2, cols), dtype="U8"),
        Tensor(name=f"{stem}.weight_scale", shape=(rows, cols // group), dtype="F32"),
    ]
    return out + (
        [Tensor(name=f"{stem}.pre_quant_scale", shape=(cols,), dtype="F16")] if name.endswith(UNFOLDED) else []
    )


def header_bytes(entries: list[Tensor], total: int) -> int:
    """The safetensors header (8-byte length, JSON padded to 8), offsets counted at full width."""
    header = {"__metadata__": {"format": "pt"}}
    header |= {t.name: {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [total, total]} for t in entries}
    encoded = len(json.dumps(header, separators=(",", ":")))
    return 8 + encoded + (-encoded % 8)


def tensorrt_size(spec: ModelSpec, tier: str, options: Flags) -> SizeForecast:
    """Bytes of the checkpoint kolm-tensorrt writes for `spec` with a tier recipe's options."""
    entries, weights, read = [], 0, 0.0
    for t in spec.inventory.tensors:
        for entry in stored(t.name, t.shape, options):
            entries.append(entry)
            weights += entry.nbytes
            read += entry.nbytes * spec.read_share(t.name)
    config = dict(spec.config)
    if options:
        config["quantization_config"] = {"quant_algo": options["quant_algo"], "quant_method": "modelopt"}
    config[MANIFEST_KEY] = spec.embedded_manifest(tier)
    side = sum(len(raw) for name in SIDE_FILES if (raw := spec.read_model_file(name)) is not None)
    total = weights + header_bytes(entries, weights) + len(json.dumps(config, indent=2, ensure_ascii=False)) + side
    total += len(SERVE_SCRIPT.encode()) + (QUANT_CONFIG_BYTES[options["quant_algo"]] if options else 0)
    kind = {"W8A16": "int8 weights, a float32 scale per row", "W4A16_AWQ": "int4 AWQ, float32 scales per group"}
    return SizeForecast(
        bytes=total,
        read_per_token_bytes=int(read),
        method=f"ModelOpt checkpoint rule ({kind.get(options.get('quant_algo'), 'float16')}; embedding and lm_head "
        f"float16; header, {CONFIG} and side files counted)",
    )
