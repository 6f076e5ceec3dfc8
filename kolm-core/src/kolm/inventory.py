"""Tensor inventories: every weight tensor of a model with its shape and stored dtype.

Forecasts need no weights, only this list. It comes from a `.kolm`'s safetensors headers, or is
derived from a Hugging Face `config.json` for the Llama family (Llama, Mistral, Qwen2, SmolLM2,
Phi-3 after its fused projections), so a base name alone is enough to forecast.
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


LLAMA_FAMILY = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Phi3ForCausalLM"}


def llama_inventory(config: dict, dtype: str = "BF16") -> Inventory:
    """The tensors a Llama-family checkpoint with this config holds (Hugging Face names)."""
    arch = (config.get("architectures") or ["?"])[0]
    if arch not in LLAMA_FAMILY:
        raise UnsupportedModelError(
            f"cannot derive tensors for architecture {arch}; supported: {', '.join(sorted(LLAMA_FAMILY))}"
        )
    hidden = config["hidden_size"]
    n_heads = config["num_attention_heads"]
    n_kv = config.get("num_key_value_heads", n_heads)
    head_dim = config.get("head_dim") or hidden // n_heads
    ffn = config["intermediate_size"]
    vocab = config["vocab_size"]
    bias = arch == "Qwen2ForCausalLM" or config.get("attention_bias", False)
    tensors = [Tensor(name="model.embed_tokens.weight", shape=(vocab, hidden), dtype=dtype)]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        layer = [Tensor(name=p + "input_layernorm.weight", shape=(hidden,), dtype=dtype)]
        if arch == "Phi3ForCausalLM":
            layer += [
                Tensor(
                    name=p + "self_attn.qkv_proj.weight", shape=((n_heads + 2 * n_kv) * head_dim, hidden), dtype=dtype
                ),
                Tensor(name=p + "self_attn.o_proj.weight", shape=(hidden, n_heads * head_dim), dtype=dtype),
                Tensor(name=p + "mlp.gate_up_proj.weight", shape=(2 * ffn, hidden), dtype=dtype),
            ]
        else:
            for proj, rows in (("q", n_heads * head_dim), ("k", n_kv * head_dim), ("v", n_kv * head_dim)):
                layer.append(Tensor(name=p + f"self_attn.{proj}_proj.weight", shape=(rows, hidden), dtype=dtype))
                if bias:
                    layer.append(Tensor(name=p + f"self_attn.{proj}_proj.bias", shape=(rows,), dtype=dtype))
            layer += [
                Tensor(name=p + "self_attn.o_proj.weight", shape=(hidden, n_heads * head_dim), dtype=dtype),
                Tensor(name=p + "mlp.gate_proj.weight", shape=(ffn, hidden), dtype=dtype),
                Tensor(name=p + "mlp.up_proj.weight", shape=(ffn, hidden), dtype=dtype),
            ]
        layer += [
            Tensor(name=p + "mlp.down_proj.weight", shape=(hidden, ffn), dtype=dtype),
            Tensor(name=p + "post_attention_layernorm.weight", shape=(hidden,), dtype=dtype),
        ]
        tensors += layer
    tensors.append(Tensor(name="model.norm.weight", shape=(hidden,), dtype=dtype))
    if not config.get("tie_word_embeddings", False):
        tensors.append(Tensor(name="lm_head.weight", shape=(vocab, hidden), dtype=dtype))
    return Inventory(tensors=tensors)
