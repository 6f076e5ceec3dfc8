"""Tensor inventories: every weight tensor of a model with its shape and stored dtype.

Forecasts need no weights, only this list. It comes from a `.kolm`'s safetensors headers, or is
derived from a Hugging Face `config.json` for the decoder families in FAMILIES (Llama, Mistral,
Qwen2/3, Qwen3-MoE, Phi-3, Gemma 2/3), so a base name alone is enough to forecast.
"""

from __future__ import annotations

import math

from pydantic import ConfigDict

from kolm.datamodel import KolmModel
from kolm.errors import UnsupportedModelError

DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


class Tensor(KolmModel):
    """One weight tensor under its Hugging Face name."""

    model_config = ConfigDict(frozen=True)

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_BYTES[self.dtype]


class Inventory(KolmModel):
    """All weight tensors of a model, in file order."""

    tensors: list[Tensor]

    @property
    def params(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)

    def dtype_bytes(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for t in self.tensors:
            totals[t.dtype] = totals.get(t.dtype, 0) + t.nbytes
        return totals

    def widths_off_groups(self, group: int) -> list[int]:
        """The input widths of the layers' projections (2-D `*proj.weight`) that are not a whole
        number of `group`-wide groups, smallest first: what group-wise quantizers cannot pack."""
        widths = {t.shape[1] for t in self.tensors if len(t.shape) == 2 and t.name.endswith("proj.weight")}
        return sorted(w for w in widths if w % group)


class Family(KolmModel):
    """How a decoder family's checkpoint departs from Llama's tensor set (Hugging Face names)."""

    model_config = ConfigDict(frozen=True)

    qkv_bias: bool = False  # q/k/v projections carry biases (Qwen2)
    qk_norm: bool = False  # per-head RMSNorm on queries and keys (Qwen3, Gemma 3)
    sandwich_norms: bool = False  # norms before and after the MLP besides the two Llama ones (Gemma 2/3)
    fused: bool = False  # one qkv_proj and one gate_up_proj (Phi-3)
    tied_by_default: bool = False  # the config's tie_word_embeddings default (transformers)
    routed_experts: bool = False  # sparse layers route each token to num_experts_per_tok of num_experts MLPs


# Checked against transformers 5.24's `from_config` state dicts for each architecture, as
# `save_pretrained` writes them (test_the_config_inventory_is_what_transformers_builds in kolm-gguf's suite).
FAMILIES = {
    "LlamaForCausalLM": Family(),
    "MistralForCausalLM": Family(),
    "Qwen2ForCausalLM": Family(qkv_bias=True),
    "Qwen3ForCausalLM": Family(qk_norm=True),
    "Qwen3MoeForCausalLM": Family(qk_norm=True, routed_experts=True),
    "Phi3ForCausalLM": Family(fused=True),
    "Gemma2ForCausalLM": Family(sandwich_norms=True, tied_by_default=True),
    "Gemma3ForCausalLM": Family(qk_norm=True, sandwich_norms=True, tied_by_default=True),
}


def family_of(config: dict) -> Family:
    """The tensor-set family of a Hugging Face config; refuses architectures kolm cannot derive."""
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in FAMILIES:
        raise UnsupportedModelError(
            f"cannot derive tensors for architecture {arch}; supported: {', '.join(sorted(FAMILIES))}"
        )
    return FAMILIES[arch]


def tied(config: dict) -> bool:
    """Whether the output layer reuses the input embedding (the family's default when unset)."""
    arch = (config.get("architectures") or ["?"])[0]
    default = FAMILIES[arch].tied_by_default if arch in FAMILIES else False
    return bool(config.get("tie_word_embeddings", default))


EXPERT_MARK = ".mlp.experts."  # in the name of every routed expert's weight (checkpoint names)


def routed_share(config: dict) -> float:
    """The share of a routed expert's weights one token reads: experts per token over experts (1 for a
    dense model)."""
    experts = config.get("num_experts") or 0
    return (config.get("num_experts_per_tok") or experts) / experts if experts else 1.0


def _sparse_layer(config: dict, family: Family, i: int) -> bool:
    """Whether layer `i` routes to experts (transformers' Qwen3MoeDecoderLayer rule)."""
    return (
        family.routed_experts
        and (config.get("num_experts") or 0) > 0
        and i not in (config.get("mlp_only_layers") or [])
        and (i + 1) % (config.get("decoder_sparse_step") or 1) == 0
    )


def config_inventory(config: dict, dtype: str = "BF16") -> Inventory:
    """The tensors a checkpoint of one of the FAMILIES with this config holds (Hugging Face names)."""
    family = family_of(config)
    hidden = config["hidden_size"]
    n_heads = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads") or n_heads
    head_dim = config.get("head_dim") or hidden // n_heads
    ffn = config["intermediate_size"]
    vocab = config["vocab_size"]
    bias = family.qkv_bias or config.get("attention_bias", False)

    def tensor(name: str, *shape: int) -> Tensor:
        return Tensor(name=name, shape=shape, dtype=dtype)

    tensors = [tensor("model.embed_tokens.weight", vocab, hidden)]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        if family.fused:
            tensors.append(tensor(p + "self_attn.qkv_proj.weight", (n_heads + 2 * n_kv) * head_dim, hidden))
        else:
            for proj, rows in (("q", n_heads * head_dim), ("k", n_kv * head_dim), ("v", n_kv * head_dim)):
                tensors.append(tensor(p + f"self_attn.{proj}_proj.weight", rows, hidden))
                if bias:
                    tensors.append(tensor(p + f"self_attn.{proj}_proj.bias", rows))
        tensors.append(tensor(p + "self_attn.o_proj.weight", hidden, n_heads * head_dim))
        if family.qk_norm:
            tensors += [
                tensor(p + "self_attn.q_norm.weight", head_dim),
                tensor(p + "self_attn.k_norm.weight", head_dim),
            ]
        if _sparse_layer(config, family, i):
            moe_ffn = config["moe_intermediate_size"]
            tensors.append(tensor(p + "mlp.gate.weight", config["num_experts"], hidden))
            for e in range(config["num_experts"]):
                q = f"{p}mlp.experts.{e}."
                tensors += [
                    tensor(q + "gate_proj.weight", moe_ffn, hidden),
                    tensor(q + "up_proj.weight", moe_ffn, hidden),
                    tensor(q + "down_proj.weight", hidden, moe_ffn),
                ]
        elif family.fused:
            tensors += [
                tensor(p + "mlp.gate_up_proj.weight", 2 * ffn, hidden),
                tensor(p + "mlp.down_proj.weight", hidden, ffn),
            ]
        else:
            tensors += [
                tensor(p + "mlp.gate_proj.weight", ffn, hidden),
                tensor(p + "mlp.up_proj.weight", ffn, hidden),
                tensor(p + "mlp.down_proj.weight", hidden, ffn),
            ]
        tensors += [
            tensor(p + "input_layernorm.weight", hidden),
            tensor(p + "post_attention_layernorm.weight", hidden),
        ]
        if family.sandwich_norms:
            tensors += [
                tensor(p + "pre_feedforward_layernorm.weight", hidden),
                tensor(p + "post_feedforward_layernorm.weight", hidden),
            ]
    tensors.append(tensor("model.norm.weight", hidden))
    if not tied(config):
        tensors.append(tensor("lm_head.weight", vocab, hidden))
    return Inventory(tensors=tensors)
