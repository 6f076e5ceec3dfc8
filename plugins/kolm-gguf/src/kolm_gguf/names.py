"""Hugging Face <-> GGUF tensor names for the Llama family (stdlib only, so forecasts stay light)."""

from __future__ import annotations

import re

# llama.cpp per-block tensor names -> Hugging Face LlamaForCausalLM module names.
BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_qkv": "self_attn.qkv_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GLOBAL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
# Phi-3 fuses gate and up; llama.cpp stores the fused tensor as ffn_up.
_FUSED = {"mlp.gate_up_proj": "ffn_up"}

_HF_BLOCK = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_HF_GLOBAL = {hf: gg for gg, hf in GLOBAL.items()}
_HF_TO_BLOCK = {hf: gg for gg, hf in BLOCK.items()} | _FUSED


def gguf_name(hf_name: str) -> str | None:
    """`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight`; None if unknown."""
    match = _HF_BLOCK.match(hf_name)
    if match:
        layer, module, suffix = match.groups()
        short = _HF_TO_BLOCK.get(module)
        return f"blk.{layer}.{short}.{suffix}" if short else None
    module, _, suffix = hf_name.rpartition(".")
    short = _HF_GLOBAL.get(module)
    return f"{short}.{suffix}" if short else None
