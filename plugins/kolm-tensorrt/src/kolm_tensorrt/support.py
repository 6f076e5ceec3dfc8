"""Which models and targets kolm-tensorrt exports for, decided before anything is converted.

Models: the decoder architectures TensorRT-LLM's PyTorch backend registers
(`tensorrt_llm/_torch/models/_arch_index.py`, MODEL_ARCH_TO_MODULE, NVIDIA/TensorRT-LLM commit
065ff9e, 2026), restricted to causal language models. Gemma 2 is not among them.

Shapes: ModelOpt 0.47's exporter packs int4 AWQ weights in whole groups only ("partial blocks are
not supported"), and TensorRT-LLM's W4A16 AWQ linear requires `in_features % group_size == 0`
(tensorrt_llm/_torch/modules/linear.py), so every quantized projection's input width must be a
multiple of the group size. SmolLM2-135M's 576 is not a multiple of 128, so its int4 recipe is the
alternative in groups of 64 (`BackendPlugin.recipe_for`), which TensorRT-LLM's fine-grained
mixed-dtype GEMM also runs ("Only group size 64 and 128 supported", fpA_intB_gemm_template.h).

Targets: TensorRT-LLM's main branch runs on discrete GPUs and servers, not on Jetson; the backend
declares the RTX rows it runs on (`runs_on`), and a user's own row naming it for a Jetson is refused
here. Jetson Orin takes TensorRT Edge-LLM, kolm-tensorrt-edge's backend.
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
    "TensorRT-LLM's current releases do not run on Jetson; NVIDIA's route there is TensorRT Edge-LLM "
    "(pip install 'kolm-tensorrt-edge[toolchain]'; --backend tensorrt-edge)"
)


def cannot_export(spec: ModelSpec, recipe: TierRecipe, device: DeviceProfile | None) -> str | None:
    """Why kolm-tensorrt will not export `spec` with `recipe` for `device`; None when it will."""
    if device is not None and device.kind == "edge-gpu":
        return JETSON
    if spec.arch not in PYTORCH_BACKEND:
        return f"TensorRT-LLM's PyTorch backend does not run {spec.arch}"
    group = recipe.options.get("group_size")
    if group and (odd := spec.inventory.widths_off_groups(int(group))):
        return f"ModelOpt packs int4 in whole groups of {group}; {spec.name} has projections {odd[0]} wide"
    return None
