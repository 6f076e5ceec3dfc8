"""Hugging Face <-> GGUF tensor names of the decoder families kolm forecasts (stdlib only, so
forecasts stay light). The names are llama.cpp's (gguf-py `tensor_mapping.py`), per GGUF
architecture where a family departs from Llama's."""

from __future__ import annotations

import re

# llama.cpp per-block tensor names -> Hugging Face LlamaForCausalLM module names.
BLOCK = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GLOBAL = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
# Other families' extra modules (Qwen3 and Gemma 3 norm queries and keys per head; Phi-3 fuses
# q/k/v and gate/up, and llama.cpp stores the fused gate/up as ffn_up; a mixture of experts' router).
_EXTRA = {
    "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm",
    "self_attn.qkv_proj": "attn_qkv",
    "mlp.gate_up_proj": "ffn_up",
    "mlp.gate": "ffn_gate_inp",
}
# A routed expert's projections, which the converter stacks into one tensor per layer (all experts).
_EXPERT = re.compile(r"^model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(gate|up|down)_proj\.weight$")
# Gemma 2 and 3 wrap attention and MLP in norms: there, post_attention_layernorm follows attention.
_SANDWICH = {
    "post_attention_layernorm": "post_attention_norm",
    "pre_feedforward_layernorm": "ffn_norm",
    "post_feedforward_layernorm": "post_ffw_norm",
}
_BY_ARCH = {"gemma2": _SANDWICH, "gemma3": _SANDWICH}

_HF_BLOCK = re.compile(r"^model\.layers\.(\d+)\.(.+)\.(weight|bias)$")
_HF_GLOBAL = {hf: gg for gg, hf in GLOBAL.items()}
_HF_TO_BLOCK = {hf: gg for gg, hf in BLOCK.items()} | _EXTRA


def gguf_name(hf_name: str, arch: str = "llama") -> str | None:
    """`model.layers.3.self_attn.q_proj.weight` -> `blk.3.attn_q.weight` in GGUF architecture `arch`;
    None if unknown."""
    match = _HF_BLOCK.match(hf_name)
    if match:
        layer, module, suffix = match.groups()
        short = _BY_ARCH.get(arch, {}).get(module) or _HF_TO_BLOCK.get(module)
        return f"blk.{layer}.{short}.{suffix}" if short else None
    module, _, suffix = hf_name.rpartition(".")
    short = _HF_GLOBAL.get(module)
    return f"{short}.{suffix}" if short else None


def expert_name(hf_name: str) -> tuple[str, int] | None:
    """`model.layers.3.mlp.experts.7.up_proj.weight` -> (`blk.3.ffn_up_exps.weight`, 7): the stacked
    GGUF tensor a routed expert's weight goes into, and its index there; None for any other name."""
    match = _EXPERT.match(hf_name)
    if not match:
        return None
    layer, expert, proj = match.groups()
    return f"blk.{layer}.ffn_{proj}_exps.weight", int(expert)
