"""Hugging Face decoder -> stateful Core ML program, as Apple's "On Device Llama 3.1 with Core ML"
recipe does it (https://machinelearning.apple.com/research/core-ml-on-device-llama): the model is
traced with its KV cache as two registered buffers that each call updates in place by slice, which
coremltools converts to Core ML state (`ct.StateType`, iOS 18 / macOS 15); the inputs are the new
tokens and a causal mask whose last dimension is the cache length so far plus the new tokens, both
flexible (`ct.RangeDim`), so one model serves prefill and single-token decode. Then coremltools'
own weight compression (`coremltools.optimize.coreml`) with the recipe's options.

Inputs `inputIds` (1 x n int32) and `causalMask` (1 x 1 x n x past+n float16: 0 where a token may
attend, -inf where not); states `keyCache`, `valueCache` (layers x 1 x kv heads x context x head
dim, float16); output `logits` (1 x n x vocab, float16).
"""

from __future__ import annotations

from pathlib import Path

INPUT_IDS, CAUSAL_MASK, LOGITS = "inputIds", "causalMask", "logits"
KEY_CACHE, VALUE_CACHE = "keyCache", "valueCache"
DEFAULT_CONTEXT = 2048  # Apple's recipe exports Llama 3.1 8B with a 2048-token context


def context_length(config: dict, wanted: int = DEFAULT_CONTEXT) -> int:
    """The exported context: `wanted`, at most the model's positions and its sliding window (the
    causal mask this export feeds is full, so no layer may look past its window)."""
    limits = [wanted, config.get("max_position_embeddings") or wanted, config.get("sliding_window") or wanted]
    return min(limits)


def cache_shape(config: dict, context: int) -> tuple[int, ...]:
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    kv_heads = config.get("num_key_value_heads") or config["num_attention_heads"]
    return (config["num_hidden_layers"], 1, kv_heads, context, head_dim)


def stateful(model, shape: tuple[int, ...]):
    """`model` wrapped for tracing: forward(input_ids, causal_mask) -> logits, its KV cache the
    registered buffers keyCache and valueCache, updated in place by slice."""
    import torch
    from transformers.cache_utils import Cache

    class SliceCache(Cache):
        """transformers' Cache interface over the two buffers: layer i's keys are keys[i]."""

        def __init__(self, keys, values, past: int) -> None:
            super().__init__(layers=[])
            self.keys, self.values, self.past = keys, values, past

        def update(self, key_states, value_states, layer_idx, *args, **kwargs):
            end = self.past + key_states.shape[-2]
            self.keys[layer_idx, :, :, self.past : end, :] = key_states
            self.values[layer_idx, :, :, self.past : end, :] = value_states
            return self.keys[layer_idx, :, :, :end, :], self.values[layer_idx, :, :, :end, :]

        def get_seq_length(self, layer_idx: int = 0) -> int:
            return self.past

    class Stateful(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer(KEY_CACHE, torch.zeros(shape, dtype=torch.float16))
            self.register_buffer(VALUE_CACHE, torch.zeros(shape, dtype=torch.float16))

        def forward(self, input_ids, causal_mask):
            past = causal_mask.shape[-1] - input_ids.shape[-1]
            cache = SliceCache(getattr(self, KEY_CACHE), getattr(self, VALUE_CACHE), past)
            return self.model(input_ids, attention_mask=causal_mask, cache=cache, use_cache=True).logits

    return Stateful().eval()


def convert(model_dir: Path, context: int):
    """The float16 stateful Core ML program of the Hugging Face model in `model_dir` (not loaded:
    loading needs macOS)."""
    import json

    import coremltools as ct
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    shape = cache_shape(config, context)
    try:  # SDPA becomes Core ML's scaled_dot_product_attention op (iOS 18)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float16, attn_implementation="sdpa")
    except ValueError:  # a family transformers runs only eagerly (Gemma 2's logit soft-capping)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float16, attn_implementation="eager")
    wrapper = stateful(model.eval(), shape)
    with torch.no_grad():
        traced = torch.jit.trace(
            wrapper, [torch.zeros((1, 2), dtype=torch.int32), torch.zeros((1, 1, 2, 5), dtype=torch.float16)]
        )
    del model, wrapper
    tokens = ct.RangeDim(lower_bound=1, upper_bound=context, default=1)
    seen = ct.RangeDim(lower_bound=1, upper_bound=context, default=1)
    state = ct.TensorType(shape=shape, dtype=np.float16)
    return ct.convert(
        traced,
        inputs=[
            ct.TensorType(shape=(1, tokens), dtype=np.int32, name=INPUT_IDS),
            ct.TensorType(shape=(1, 1, tokens, seen), dtype=np.float16, name=CAUSAL_MASK),
        ],
        outputs=[ct.TensorType(dtype=np.float16, name=LOGITS)],
        states=[ct.StateType(wrapped_type=state, name=KEY_CACHE), ct.StateType(wrapped_type=state, name=VALUE_CACHE)],
        minimum_deployment_target=ct.target.iOS18,
        skip_model_load=True,
    )


def compress(mlmodel, options: dict, workers: int = 1):
    """`mlmodel`'s weights compressed by coremltools with a recipe's options: linear quantization
    (`dtype`: int8 per channel, int4 per block) or k-means palettization (`nbits`); fp16 (no options)
    as is."""
    import coremltools.optimize.coreml as cto

    if "dtype" in options:
        config = cto.OpLinearQuantizerConfig(**options)
        return cto.linear_quantize_weights(mlmodel, cto.OptimizationConfig(global_config=config))
    if "nbits" in options:
        config = cto.OpPalettizerConfig(**options, num_kmeans_workers=workers)
        return cto.palettize_weights(mlmodel, cto.OptimizationConfig(global_config=config))
    return mlmodel
