"""Which models kolm-coreml converts: the decoder families whose tiny random-weight models convert,
compress and score in tests/test_families.py (coremltools 9.0, transformers 5.24). The stateful
export needs every attention layer to write its keys and values through transformers' `Cache.update`
and to take a prepared 4D mask; a mixture of experts' routing does not trace to a static program."""

from __future__ import annotations

from kolm.api import ModelSpec

CONVERTED = frozenset(
    {
        "LlamaForCausalLM",
        "MistralForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen3ForCausalLM",
        "Phi3ForCausalLM",
        "Gemma2ForCausalLM",
        "Gemma3ForCausalLM",
    }
)


def cannot_convert(spec: ModelSpec) -> str | None:
    """Why `spec` will not convert to a stateful Core ML program; None when it will."""
    if spec.active_params < spec.inventory.params:
        return "kolm-coreml does not convert a mixture of experts (its routing does not trace to a static program)"
    if spec.arch not in CONVERTED:
        return f"kolm-coreml converts {', '.join(sorted(CONVERTED))}; not {spec.arch}"
    return None
