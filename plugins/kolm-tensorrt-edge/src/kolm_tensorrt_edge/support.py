"""Which models kolm-tensorrt-edge exports, decided before anything is converted.

Models: the dense text decoders TensorRT Edge-LLM 0.11.0 lists as supported (its docs'
supported-models page: Llama 3.x, Qwen2 / Qwen2.5, Qwen3; Gemma 3 is not among them). Its exporter
falls back to a generic causal LM for other model types, which NVIDIA does not validate; kolm
does not offer that.

Shapes: ModelOpt 0.45, which Edge-LLM pins, packs int4 AWQ weights in whole groups of 128 only
(on SmolLM2-135M, 576 wide, its exporter fails with an IndexError), and Edge-LLM's int4 GEMM plugin
takes the groups as they come; so every quantized projection's input width must be a multiple of 128.
"""

from __future__ import annotations

from kolm.api import DeviceProfile, ModelSpec, TierRecipe

SUPPORTED = frozenset({"LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"})


def cannot_export(spec: ModelSpec, recipe: TierRecipe, device: DeviceProfile | None) -> str | None:
    """Why kolm-tensorrt-edge will not export `spec` with `recipe`; None when it will."""
    if spec.arch not in SUPPORTED:
        return f"TensorRT Edge-LLM 0.11 does not list {spec.arch} among its supported models"
    group = recipe.options.get("group_size")
    if group and (odd := spec.inventory.widths_off_groups(int(group))):
        return (
            f"Edge-LLM's int4 AWQ packs whole groups of {group}; {spec.name} has projections {odd[0]} wide "
            "(int8 and fp16 take it)"
        )
    return None
