"""The ONNX size forecast: what onnxruntime-genai's model builder writes for a decoder (Llama, Mistral,
Qwen 2/3, Phi-3, Gemma 2), tensor by tensor, without importing the toolchain.

The builder's choices (measured on SmolLM2-135M and tiny models of each family, builder 0.18.0, `-e cpu`):
- each projection (q, k and v fused into one) and `lm_head` is a MatMul: float32 weights for `fp32`,
  MatMulNBits for `int4`/`int8`: the bits `quant_plan.matmul_bits` gives it, packed in blocks of
  `block_size` along the input dimension, one float32 scale per block, symmetric (no zero points);
- the input embedding stays a float32 Gather, except that a tied embedding is shared with `lm_head`
  (float32 at `fp32`, a GatherBlockQuantized over the int4 `lm_head` at `int4`); at `int8` a tied
  embedding is written twice (float32 Gather and int8 `lm_head`);
- norms (Q/K norms too) and biases are float32; rotary cos/sin caches are float32, context length x head_dim/2 each.
The tokenizer files are the artifact's own (copied byte for byte). `genai_config.json`, the graph
structure (nodes, names, the stamped manifest) and the ORT-format copy's graph are counted from
sizes measured on SmolLM2-135M (30 layers) and tiny random models of each family (2 layers), where
the fixed part dominates. Phones and laptops get the same files.
"""

from __future__ import annotations

from kolm.api import Flags, ModelSpec, SizeForecast

from kolm_onnx.quant_plan import matmul_bits, upgrades

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
    "chat_template.jinja",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)
GENAI_CONFIG_BYTES = 1_500  # genai_config.json: 1,455 B for SmolLM2-135M, 1,726 B with Gemma 2's sliding window
# model.onnx (the graph without its weights) = fixed + per decoder layer, float MatMul or MatMulNBits:
# measured 15.7 / 19.6 KB at 2 Llama layers, 172 / 227 KB at 30 (SmolLM2). Not modelled, as within
# 0.5 % of even the tiny models' payloads: Q/K norms (Qwen 3) add 3.6 KB a layer, Gemma 2's norms 1.5 KB.
FLOAT_GRAPH_BYTES, NBITS_GRAPH_BYTES = (4_600, 5_600), (4_850, 7_400)


def matmul_bytes(name: str, shape: tuple[int, ...], layers: int, options: Flags) -> int:
    """Bytes of the projection weight `name` (out x in, Hugging Face layout) for a recipe's options:
    float32 without `bits`, else MatMulNBits blocks of `block_size` with one fp32 scale each."""
    rows, cols = shape
    if "bits" not in options:
        return rows * cols * 4
    block = int(options["block_size"])
    return rows * -(-cols // block) * (block * matmul_bits(name, layers, options) // 8 + 4)


def weight_bytes(spec: ModelSpec, options: Flags) -> tuple[int, int]:
    """(bytes of every initializer, bytes of a float32 input embedding that decoding only gathers)."""
    gathered = 0
    total = 0
    tied = spec.tied_embeddings
    has_head = any(t.name == "lm_head.weight" for t in spec.inventory.tensors)
    layers = spec.config["num_hidden_layers"]
    for t in spec.inventory.tensors:
        if t.name.endswith("rotary_emb.inv_freq"):
            continue
        if len(t.shape) == 1:
            total += t.numel * 4
        elif t.name.endswith("embed_tokens.weight"):
            if tied and not has_head:
                total += matmul_bytes("lm_head", t.shape, layers, options)  # shared with the embedding but at int8
            if not tied or options.get("bits") == 8:
                total += t.numel * 4
                gathered = t.numel * 4
        else:
            total += matmul_bytes(t.name, t.shape, layers, options)
    config = spec.config
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    total += 2 * config.get("max_position_embeddings", 2048) * (head_dim // 2) * 4
    return total, gathered


def tokenizer_bytes(spec: ModelSpec) -> int:
    return sum(len(raw) for name in TOKENIZER_FILES if (raw := spec.read_model_file(name)) is not None)


def onnx_size(spec: ModelSpec, options: Flags) -> SizeForecast:
    """Bytes of the payload the export writes for `spec` with a tier recipe's options."""
    weights, gathered = weight_bytes(spec, options)
    fixed, per_layer = NBITS_GRAPH_BYTES if "bits" in options else FLOAT_GRAPH_BYTES
    graph = fixed + per_layer * spec.config["num_hidden_layers"]
    total = weights + graph + tokenizer_bytes(spec) + GENAI_CONFIG_BYTES
    kind = (
        f"MatMulNBits {options['bits']}-bit block {options['block_size']}, fp32 scales"
        + "".join(f", {selector} {bits}-bit" for selector, bits in upgrades(options).items())
        if "bits" in options
        else "float32 MatMul"
    )
    return SizeForecast(
        bytes=total,
        read_per_token_bytes=weights - gathered,
        method=f"onnxruntime-genai builder rule ({kind}; tokenizer files counted)",
    )
