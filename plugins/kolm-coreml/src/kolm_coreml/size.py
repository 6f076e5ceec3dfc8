"""The Core ML size forecast: the files the export writes, tensor by tensor, without importing the
toolchain (coremltools 9.0, measured on SmolLM2-135M at every tier: weight.bin exact).

`weights/weight.bin` is a 64-byte header, then one blob per const of 10 elements or more: 64 bytes
of blob metadata and the data, padded to 64 bytes. A weight matrix of WEIGHT_THRESHOLD elements or
more is compressed into two blobs (int8 per channel: int8 data and one fp16 scale a row; int4 per
block: packed int4 data and one fp16 scale a block; palettized: packed n-bit indices and one fp16
look-up table of 2^n entries per group of rows); everything else is fp16. A tied embedding is one
const shared by the gather and the output projection. The traced model also holds fp16 zeros for
each bias-less projection, one const per distinct output width (coremltools shares equal consts),
and the rotary frequencies (head_dim / 2 values).

The spec (`model.mlmodel`: the MIL program, op names, the metadata with the stamped manifest) grows
with the layers: measured 1,097,462 B (fp16) and 1,126,442 B (compressed) for SmolLM2's 30 layers.
"""

from __future__ import annotations

from kolm.api import Flags, ModelSpec, SizeForecast

from kolm_coreml.export import SIDE_FILES
from kolm_coreml.package import WEIGHT_THRESHOLD

HEADER = BLOB_METADATA = ALIGN = 64
INLINE_BELOW = 10  # consts smaller than this live in the spec, not weight.bin
MANIFEST_JSON_BYTES = 617  # the package's Manifest.json (two item entries with generated UUIDs)
SPEC_BYTES_PER_LAYER = {"fp16": 36_582, "compressed": 37_548}  # SmolLM2: 1,097,462 / 30, 1,126,442 / 30


def blob(nbytes: int) -> int:
    return BLOB_METADATA + nbytes + (-nbytes % ALIGN)


def matrix_blobs(rows: int, cols: int, options: Flags) -> int:
    """weight.bin bytes of one weight matrix (out x in) under a recipe's options."""
    if rows * cols < WEIGHT_THRESHOLD or not options:
        return blob(rows * cols * 2)
    if "nbits" in options:
        groups = -(-rows // int(options["group_size"]))
        return blob(-(-rows * cols * int(options["nbits"]) // 8)) + blob(groups * 2 ** int(options["nbits"]) * 2)
    bits = 8 if options["dtype"].endswith("8") else 4
    scales = rows if options["granularity"] == "per_channel" else rows * -(-cols // int(options["block_size"]))
    return blob(-(-rows * cols * bits // 8)) + blob(scales * 2)


def weight_bin_bytes(spec: ModelSpec, options: Flags) -> int:
    config = spec.config
    total = HEADER
    names = {t.name for t in spec.inventory.tensors}
    widths = set()
    for t in spec.inventory.tensors:
        if t.name.endswith("rotary_emb.inv_freq") or t.numel < INLINE_BELOW:
            continue
        if len(t.shape) == 2:
            total += matrix_blobs(t.shape[0], t.shape[1], options)
            if t.name.endswith("proj.weight") and t.name.removesuffix(".weight") + ".bias" not in names:
                widths.add(t.shape[0])
        else:
            total += blob(t.numel * 2)
    widths.add(config["vocab_size"])  # the output projection has no bias
    total += sum(blob(width * 2) for width in widths)
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    if head_dim // 2 >= INLINE_BELOW:
        total += blob(head_dim // 2 * 2)
    return total


def side_bytes(spec: ModelSpec) -> int:
    return sum(len(raw) for name in SIDE_FILES if (raw := spec.read_model_file(name)) is not None)


def coreml_size(spec: ModelSpec, tier: str, options: Flags) -> SizeForecast:
    """Bytes of the payload the export writes for `spec` with a tier recipe's options."""
    weights = weight_bin_bytes(spec, options)
    per_layer = SPEC_BYTES_PER_LAYER["compressed" if options else "fp16"]
    spec_bytes = per_layer * spec.config["num_hidden_layers"] + len(spec.embedded_manifest(tier).encode())
    total = weights + spec_bytes + MANIFEST_JSON_BYTES + side_bytes(spec)
    embedding = next((t for t in spec.inventory.tensors if t.name.endswith("embed_tokens.weight")), None)
    gathered = matrix_blobs(*embedding.shape, options) if embedding is not None and not spec.tied_embeddings else 0
    if "nbits" in options:
        kind = f"{options['nbits']}-bit k-means palettization, a look-up table per {options['group_size']} rows"
    elif options:
        where = "per channel" if options["granularity"] == "per_channel" else f"per block of {options['block_size']}"
        kind = f"{options['dtype']} linear {where}, fp16 scales"
    else:
        kind = "fp16"
    return SizeForecast(
        bytes=total,
        read_per_token_bytes=weights - gathered,
        method=f"coremltools weight.bin rule ({kind}; spec per layer as measured on SmolLM2; side files counted)",
    )
