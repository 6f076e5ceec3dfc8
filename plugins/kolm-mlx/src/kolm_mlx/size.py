"""The MLX size forecast: the files `mlx_lm.convert` writes, counted from the tensor inventory and
the model's own config and tokenizer files (mlx-lm 0.32 with transformers 5), plus the manifest
`embed_manifest` adds. Exact except the digits of safetensors offsets and tokenizer_config.json."""

from __future__ import annotations

import json
from functools import lru_cache

from kolm.api import ModelSpec, SizeForecast, TierRecipe

from kolm_mlx.quant_plan import Stored, nbytes, quantization, stored_tensors

SHARD_BYTES = 5 << 30  # mlx_lm.utils.MAX_FILE_SIZE_GB
README_BYTES = 81  # the model card mlx-lm writes for a local source (no hub repo)
TOKENIZER_CONFIG_BYTES = 340  # what transformers 5 saves for a fast tokenizer (SmolLM2: 340)
BYTES_PER_VOCAB_ENTRY = 72  # tokenizer.json without the file: SmolLM2's 3,522,761 B / 49,152 tokens


def shards(tensors: list[Stored]) -> list[list[Stored]]:
    """mlx_lm.utils.make_shards: a new shard when the next tensor would pass 5 GiB."""
    out: list[list[Stored]] = []
    size = 0
    for t in tensors:
        if not out or size + nbytes(t) > SHARD_BYTES:
            out.append([])
            size = 0
        out[-1].append(t)
        size += nbytes(t)
    return out


def header_bytes(tensors: list[Stored], metadata: dict[str, str]) -> int:
    """8-byte length plus mlx's compact, key-sorted JSON header (padded to 8 once rewritten)."""
    entries, offset = {}, 0
    for name, dtype, shape in tensors:
        entries[name] = {
            "data_offsets": [offset, offset + nbytes((name, dtype, shape))],
            "dtype": dtype,
            "shape": list(shape),
        }
        offset += nbytes((name, dtype, shape))
    header = json.dumps({"__metadata__": metadata, **dict(sorted(entries.items()))}, separators=(",", ":"))
    padded = len(header.encode()) + (-len(header.encode()) % 8 if len(metadata) > 1 else 0)
    return 8 + padded


def tokenizer_bytes(spec: ModelSpec) -> tuple[int, int, bool]:
    """(tokenizer.json, chat_template.jinja, exact?): transformers 5 re-saves tokenizer.json
    pretty-printed with BPE merges as pairs, and the chat template as a file of its own."""
    raw = spec.read_model_file("tokenizer.json")
    if raw is None:
        return spec.config["vocab_size"] * BYTES_PER_VOCAB_ENTRY, 0, False
    return (*resaved_bytes(raw, spec.read_model_file("tokenizer_config.json") or b"{}"), True)


@lru_cache(maxsize=4)  # the picker asks once per device and tier for the same model
def resaved_bytes(raw: bytes, raw_config: bytes) -> tuple[int, int]:
    """(tokenizer.json as transformers 5 re-saves it, the chat template) in bytes."""
    tokenizer = json.loads(raw)
    merges = tokenizer.get("model", {}).get("merges")
    if merges:
        tokenizer["model"]["merges"] = [m.split(" ", 1) if isinstance(m, str) else m for m in merges]
    template = json.loads(raw_config).get("chat_template")
    template_bytes = len(template.encode()) if isinstance(template, str) else 0
    return len(json.dumps(tokenizer, indent=2, ensure_ascii=False).encode()), template_bytes


def config_bytes(spec: ModelSpec, quant: dict | None) -> int:
    """mlx_lm.utils.save_config: sorted keys, indent 4, the quantization recorded twice."""
    config = {k: v for k, v in spec.config.items() if k not in ("_name_or_path", "vision_config")}
    if quant:
        config["quantization"] = config["quantization_config"] = quant
    return len(json.dumps(dict(sorted(config.items())), indent=4).encode())


def mlx_size(spec: ModelSpec, tier: str, recipe: TierRecipe) -> SizeForecast:
    """Every file of the export folder, the weights counted tensor by tensor."""
    tensors, paths = stored_tensors(spec, recipe.options)
    quant = quantization(recipe.options, paths)
    parts = shards(tensors)
    names = (
        ["model.safetensors"]
        if len(parts) == 1
        else [f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors" for i in range(len(parts))]
    )
    manifest = {"format": "mlx", "kolm.manifest": spec.embedded_manifest(tier)}
    data = sum(nbytes(t) for t in tensors)
    headers = sum(header_bytes(part, manifest if i == 0 else {"format": "mlx"}) for i, part in enumerate(parts))
    params = sum(
        t.numel
        for t in spec.inventory.tensors
        if not (t.name == "lm_head.weight" and spec.tied_embeddings) and "rotary_emb" not in t.name
    )
    index = {
        "metadata": {"total_size": data, "total_parameters": params},
        "weight_map": {name: names[i] for i, part in enumerate(parts) for name, _, _ in part},
    }
    index["weight_map"] = dict(sorted(index["weight_map"].items()))
    tokenizer, template, exact = tokenizer_bytes(spec)
    generation = spec.read_model_file("generation_config.json")
    files = (
        len(json.dumps(index, indent=4).encode())
        + config_bytes(spec, quant)
        + tokenizer
        + template
        + TOKENIZER_CONFIG_BYTES
        + README_BYTES
        + (len(generation) if generation else 0)
    )
    quantized = sum(1 for t in tensors if t[1] == "U32")
    how = f"{quantized} tensors at {recipe.spelling}, the rest float16" if quant else "float16"
    return SizeForecast(
        bytes=data + headers + files,
        read_per_token_bytes=round(sum(nbytes(t) * spec.read_share(t[0]) for t in tensors)),
        method=f"mlx-lm per-tensor rule ({how}); tokenizer {'counted' if exact else 'estimated from vocab size'}",
        tensor_types={"U32": quantized, "F16": len(tensors) - quantized},
    )
