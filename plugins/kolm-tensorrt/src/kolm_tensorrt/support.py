"""Which models and targets kolm-tensorrt exports for, decided before anything is converted.

Models: the decoder architectures TensorRT-LLM's PyTorch backend registers
(`tensorrt_llm/_torch/models/_arch_index.py`, MODEL_ARCH_TO_MODULE, NVIDIA/TensorRT-LLM commit
065ff9e, 2026), restricted to causal language models. Gemma 2 is not among them.

Shapes: ModelOpt 0.47's exporter packs int4 AWQ weights in whole groups only ("partial blocks are
not supported"), so every quantized projection's input width must be a multiple of the group size
(SmolLM2-135M's 576 is not a multiple of 128).

Targets: TensorRT-LLM's main branch runs on discrete GPUs and servers; it does not support Jetson.
Jetson Orin takes TensorRT Edge-LLM (ONNX exported on an x86 host, engine built on the device) or
the TensorRT-LLM v0.12.0-jetson branch, neither of which kolm-tensorrt makes yet.
"""

from __future__ import annotations

from kolm.api import DeviceProfile, ModelSpec, TierRecipe

PYTORCH_BACKEND = frozenset(
    {
        "Cohere2ForCausalLM",
        "Exaone4ForCausalLM",
        "Gemma3ForCausalLM",
        "Gemma4ForCausalLM",
        "GptOssForCausalLM",
        "LlamaForCausalLM",
        "MistralForCausalLM",
        "MixtralForCausalLM",
        "NemotronForCausalLM",
        "Phi3ForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen2MoeForCausalLM",
        "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM",
        "Starcoder2ForCausalLM",
    }
)
JETSON = (
    "TensorRT-LLM's current releases do not run on Jetson; its route there (TensorRT Edge-LLM: ONNX "
    "from an x86 host, engine built on the device) is not in kolm-tensorrt yet"
)


def quantized_widths(spec: ModelSpec) -> set[int]:
    """Input widths of the projections ModelOpt quantizes (every 2-D `*proj.weight` of a layer)."""
    return {t.shape[1] for t in spec.inventory.tensors if len(t.shape) == 2 and t.name.endswith("proj.weight")}


def cannot_export(spec: ModelSpec, recipe: TierRecipe, device: DeviceProfile | None) -> str | None:
    """Why kolm-tensorrt will not export `spec` with `recipe` for `device`; None when it will."""
    if device is not None and device.kind == "edge-gpu":
        return JETSON
    if spec.arch not in PYTORCH_BACKEND:
        return f"TensorRT-LLM's PyTorch backend does not run {spec.arch}"
    group = recipe.options.get("group_size")
    if group and (odd := sorted(w for w in quantized_widths(spec) if w % int(group))):
        return f"ModelOpt packs int4 in whole groups of {group}; {spec.name} has projections {odd[0]} wide"
    return None
