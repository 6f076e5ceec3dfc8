"""onnxruntime-genai's weight quantization rule (model builder 0.18.0, `-e cpu`): the bits, block size
and accuracy level each MatMul gets for a recipe's options. Used both to forecast an export and to
read a payload's recipe back from its graph.

A recipe's options (backend.json) are `bits` (the precision, `-p int4`/`-p int8`) and the builder's
own `--extra_options`: `block_size`, `accuracy_level` (the precision of the activations a MatMulNBits
computes with: 4 is int8, 1 is float32) and `matmul_mixed_precision` (`last_matmul:int8` for
`lm_head`, `mixed_layers:int8` for the layers llama.cpp's Q4_K_M also gives more bits), with
`algo_config=rtn` (round to nearest, symmetric: no zero points)."""

from __future__ import annotations

import re

from kolm.api import Flags

CPU_ACCURACY_LEVEL = 4  # the builder's default for the CPU EP (its --extra_options help: "Default is 4 for the CPU EP")
MIXED_PROJECTIONS = ("qkv_proj", "down_proj")  # what `mixed_layers` upgrades (make_matmul_mixed_precision)
_LAYER = re.compile(r"layers\.(\d+)\.")


def upgrades(options: Flags) -> dict[str, int]:
    """`matmul_mixed_precision`'s selectors and their bits (`last_matmul:int8` -> {"last_matmul": 8})."""
    text = str(options.get("matmul_mixed_precision", ""))
    pairs = (part.split(":", 1) for part in text.split(",") if part)
    return {selector: int(kind.removeprefix("int")) for selector, kind in pairs}


def mixed_layers(layers: int) -> set[int]:
    """The layers `mixed_layers` upgrades: the builder's copy of llama.cpp's rule (first and last
    eighth, and every third layer between)."""
    return {i for i in range(layers) if i < layers / 8 or i >= 7 * layers / 8 or (i - round(layers / 8)) % 3 == 2}


def layer_of(name: str) -> int | None:
    """The decoder layer a weight (Hugging Face `model.layers.3.`) or node (`/model/layers.3/`) is in."""
    match = _LAYER.search(name.replace("/", "."))
    return int(match[1]) if match else None


def matmul_bits(name: str, layers: int, options: Flags) -> int:
    """The bits of the weight `name` (a Hugging Face tensor name or an ONNX node name) in a model of
    `layers` decoder layers; q, k and v are one packed `qkv_proj` MatMul."""
    more = upgrades(options)
    if "lm_head" in name or "embed_tokens" in name:
        return more.get("last_matmul", int(options["bits"]))
    layer = layer_of(name)
    parts = name.replace("/", ".").split(".")  # ...proj.weight, /...proj/MatMul; any other name has no projection
    projection = re.sub(r"^[qkv]_proj$", "qkv_proj", parts[-2] if len(parts) > 1 else "")
    if layer is not None and projection in MIXED_PROJECTIONS and layer in mixed_layers(layers):
        return more.get("mixed_layers", int(options["bits"]))
    return int(options["bits"])


def accuracy_level(options: Flags) -> int:
    return int(options.get("accuracy_level", CPU_ACCURACY_LEVEL))
